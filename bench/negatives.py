"""How often models hear a voice in music that has none but sings: class 0's hard negatives.

    python bench/negatives.py [--model BUNDLE]... [--pieces 12] [--data ../shared/data]

Runs each bundle as `vocalstream file` does (windows every 3 s) on
- the corpus's held-out lead renders (its test split's lead source: Palestrina and Monteverdi,
  the top part on an instrument that sings, over the other parts or alone), as the corpus holds
  them, with vibrato, and the same pieces rendered without it;
- real recordings without a voice in ../shared/data: humpback whale song, a solo trumpet, a
  string orchestra.
and prints, per source, the share of windows called no_voice and the median vocal level (the
vocal stem against the mix), as JSON. The renders come from the corpus cache
(`vocalstream corpus build` fills it; otherwise this renders them, a minute or two).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

import vocalstream
from vocalstream.errors import VocalstreamError
from vocalstream.files import cache_dir
from vocalstream.inference.model import VoiceModel
from vocalstream.train import corpus

REPO = Path(__file__).resolve().parents[1]
RECORDINGS = {
    "humpback whale song": "librosa-data/glacier-bay-humpback.ogg",
    "solo trumpet": "librosa-data/sorohanro_-_solo-trumpet-06.ogg",
    "string orchestra": (
        "librosa-data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"
    ),
}
HOP_SECONDS = 3.0


def lead_pieces(pieces: int, scratch: Path) -> dict[str, list[Path]]:
    """The test split's first `pieces` lead renders with vibrato (the corpus's own files) and
    the same scores rendered without it (into `scratch`)."""
    (source,) = [
        m for m in corpus.MUSIC if isinstance(m, corpus.Renders) and m.lead and m.split == "test"
    ]
    material = corpus.Material(cache_dir() / "corpus")
    with_vibrato = material.tracks(source)[:pieces]
    names = {path.stem for path in with_vibrato}
    without = []
    for score_path in corpus.score_order(source):
        if corpus.score_name(score_path) in names:
            path = scratch / f"{corpus.score_name(score_path)}.flac"
            waveform = corpus.render_score(
                score_path, material.soundfont(source), lead=True, vibrato=False
            )
            sf.write(path, waveform, corpus.RATE)
            without.append(path)
    return {
        f"{source.id}, with vibrato": with_vibrato,
        f"{source.id}, without vibrato": without,
    }


def score(model_path: str | None, sources: dict[str, list[Path]]) -> dict:
    model = vocalstream.Model(VoiceModel(model_path, "cpu"))
    report = {"model": model_path or "bundled default", "sources": {}}
    for name, paths in sources.items():
        windows = [
            window
            for path in paths
            for window in model.analyse(path, hop=HOP_SECONDS).windows
            if not window.padded
        ]
        report["sources"][name] = {
            "files": len(paths),
            "windows": len(windows),
            "no_voice": float(np.mean([w.label == "no_voice" for w in windows])),
            "median_vocal_level_db": float(np.median([w.vocal_level for w in windows])),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=None, help="bundle (repeatable)")
    parser.add_argument("--pieces", type=_positive, default=12, help="lead renders to play")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    recordings = {name: arguments.data / path for name, path in RECORDINGS.items()}
    missing = [str(path) for path in recordings.values() if not path.is_file()]
    if missing:
        parser.error(f"no such recording: {', '.join(missing)} (--data: ../shared/data)")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            sources = lead_pieces(arguments.pieces, Path(scratch))
            sources.update({name: [path] for name, path in recordings.items()})
            for model_path in arguments.model or [None]:
                print(json.dumps(score(model_path, sources), indent=1))
    except VocalstreamError as error:
        parser.exit(1, f"error: {error}\n")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a count of 1 or more")
    return value


if __name__ == "__main__":
    main()
