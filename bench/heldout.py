"""Accuracy of a model bundle on a corpus split, broken down by source: the model card's figures.

    python bench/heldout.py CORPUS/test [--model BUNDLE] [--confusion docs/model-card/confusion.png]
        [--json results.json] [--probe ../shared/data] [--compare OTHER_BUNDLE]

Runs the bundle exactly as `vocalstream file` does (onnxruntime, fused vocal front-end) on the
first 3 s of every snippet listed in the split's manifest.csv. --probe adds real singing that the
corpus lacks: ChoirSet's soprano and bass tracks alone and summed, and vocadito's solo singer.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from vocalstream import audio
from vocalstream.inference.model import VoiceModel
from vocalstream.models.labels import LABELS, decide
from vocalstream.train.engine import classification_report


def snippet_probabilities(classifier: VoiceModel, paths: list[Path], batch: int = 32) -> np.ndarray:
    """The model's probabilities for the first window of each file, as training sees it, in
    batches (a window with the branches' inputs holds about 2 MB)."""
    parts = [
        classifier.window_probabilities(
            [classifier.snippet_window(audio.load(p, 44100, 2)) for p in paths[i : i + batch]]
        )
        for i in range(0, len(paths), batch)
    ]
    return np.concatenate(parts)


def vmr_bin(value: str) -> str:
    if not value:
        return "none"
    low = 5 * np.floor(float(value) / 5) + 0.0  # + 0.0: no "-0"
    return f"{low:+.0f}..{low + 5:+.0f} dB"


def breakdown(rows: list[dict], predicted: np.ndarray, key) -> dict[str, dict]:
    groups: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        groups[key(row)].append(index)
    table = {}
    for name, indices in sorted(groups.items()):
        labels = np.array([int(rows[i]["label"]) for i in indices])
        table[name] = {
            "snippets": len(indices),
            "accuracy": float((predicted[indices] == labels).mean()),
        }
    return table


def probe(classifier: VoiceModel, shared: Path) -> dict[str, dict]:
    """Real sung vocals without music, 3-s windows every 3 s, against the label they should get."""

    def load(name: str) -> np.ndarray:
        return audio.load(shared / name, audio.SEPARATION_RATE, audio.SEPARATION_CHANNELS)

    # The handheld (DYN) microphones: the larynx (LRX) ones hear the throat, not the air.
    soprano = load("choirset/DCS_SE_FullChoir_ScaleUpDown02_S1_DYN.wav")
    bass = load("choirset/DCS_SE_FullChoir_ScaleUpDown02_B2_DYN.wav")
    length = min(soprano.shape[1], bass.shape[1])

    cases = {
        "choirset soprano alone (female)": (soprano, 2),
        "choirset bass alone (male)": (bass, 1),
        "choirset soprano + bass (several)": (soprano[:, :length] + bass[:, :length], 3),
        # Gender not labelled (average pitch MIDI 50, likely male): no accuracy, counts only.
        "vocadito solo singer": (load("vocadito/vocadito_1.wav"), None),
        # A real song, female lead over a band, with instrumental passages: counts only.
        "Karissa Hobbs song": (load("librosa-data/Karissa_Hobbs_-_Lets_Go_Fishin.ogg"), None),
    }
    results = {}
    for name, (waveform, label) in cases.items():
        step = audio.WINDOW_SECONDS * audio.SEPARATION_RATE
        windows = [waveform[:, s : s + step] for s in range(0, waveform.shape[1] - step + 1, step)]
        predicted = decide(classifier.classify_snippets(np.stack(windows)))
        counts = {LABELS[c]: int((predicted == c).sum()) for c in range(len(LABELS))}
        accuracy = None if label is None else float((predicted == label).mean())
        results[name] = {"windows": len(windows), "accuracy": accuracy, "predicted": counts}
    return results


def markdown(title: str, table: dict[str, dict]) -> str:
    lines = [f"| {title} | snippets | accuracy |", "|---|---|---|"]
    lines += [f"| {k} | {v['snippets']} | {v['accuracy']:.3f} |" for k, v in table.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", type=Path, help="a corpus split folder with manifest.csv")
    parser.add_argument("--model", type=Path, help="bundle (default: the bundled model)")
    parser.add_argument("--confusion", type=Path, help="write the confusion matrix PNG here")
    parser.add_argument("--json", type=Path, help="write all figures as JSON here")
    parser.add_argument("--probe", type=Path, help="../shared/data: add the real-singing probe")
    parser.add_argument("--compare", type=Path, help="another bundle: how far it differs")
    arguments = parser.parse_args()

    classifier = VoiceModel(arguments.model, device="cpu")
    with (arguments.split / "manifest.csv").open() as file:
        rows = list(csv.DictReader(file))
    labels = np.array([int(row["label"]) for row in rows])
    probabilities = snippet_probabilities(classifier, [arguments.split / r["path"] for r in rows])
    predicted = decide(probabilities)
    report = classification_report(labels, predicted)
    results = {
        "split": str(arguments.split),
        "provider": classifier.provider,
        "report": report,
        "by_voice_source": breakdown(rows, predicted, lambda r: r["voice_sources"] or "none"),
        "by_music_source": breakdown(rows, predicted, lambda r: r["music_source"] or "none"),
        "by_synthetic": breakdown(
            rows,
            predicted,
            lambda r: (
                "no voice"
                if not r["speakers"]
                else "with a synthetic voice"
                if int(r["synthetic"])
                else "real voices only"
            ),
        ),
        "by_voice_to_music": breakdown(
            rows,
            predicted,
            lambda r: vmr_bin(r["voice_to_music_db"]) if r["music"] else "voice only",
        ),
    }
    if arguments.probe:
        results["real_singing_probe"] = probe(classifier, arguments.probe)
    if arguments.compare:
        other = VoiceModel(arguments.compare, device="cpu")
        theirs = snippet_probabilities(other, [arguments.split / r["path"] for r in rows])
        results["compare"] = {
            "bundle": str(arguments.compare),
            "max_abs_probability_difference": float(np.abs(theirs - probabilities).max()),
            "argmax_agreement": float((theirs.argmax(1) == predicted).mean()),
            "their_accuracy": float((theirs.argmax(1) == labels).mean()),
        }

    print(f"accuracy {report['accuracy']:.4f} on {len(rows)} snippets ({classifier.provider})\n")
    print("| class | precision | recall | F1 | support |\n|---|---|---|---|---|")
    for name, row in report["per_class"].items():
        print(
            f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | "
            f"{row['support']} |"
        )
    print("\nconfusion (rows true, columns predicted):", " ".join(LABELS))
    for name, row in zip(LABELS, report["confusion"], strict=True):
        print(f"{name:<10}", " ".join(f"{count:>5d}" for count in row))
    titles = {
        "by_voice_source": "voice sources",
        "by_music_source": "music source",
        "by_synthetic": "voices",
        "by_voice_to_music": "voice to music",
    }
    for key, title in titles.items():
        print("\n" + markdown(title, results[key]))
    for name, row in results.get("real_singing_probe", {}).items():
        accuracy = "" if row["accuracy"] is None else f"accuracy {row['accuracy']:.3f}, "
        print(f"\nprobe {name}: {accuracy}{row['windows']} windows, predicted {row['predicted']}")

    if "compare" in results:
        print(f"\ncompared with {arguments.compare}: {json.dumps(results['compare'])}")
    if arguments.confusion:
        import matplotlib

        matplotlib.use("Agg")
        from sklearn.metrics import ConfusionMatrixDisplay

        display = ConfusionMatrixDisplay(np.array(report["confusion"]), display_labels=LABELS)
        display.plot(cmap="Blues", colorbar=False)
        display.ax_.set_title(f"held-out test, accuracy {report['accuracy']:.3f}")
        arguments.confusion.parent.mkdir(parents=True, exist_ok=True)
        display.figure_.savefig(arguments.confusion, dpi=100, bbox_inches="tight")
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
