"""Training data: reading labelled snippets, checking them, splitting, and balancing the classes.

Two layouts are read. The seeds' folder holds `N.mp3` snippets beside `train_label.txt`, whose line
N (counted from 0) labels `N.mp3`. A manifest is a CSV with the header `path,label[,group]`; any
further columns (the corpus builder's sources, say) describe the example and are not read here.
Either way the result is a list of `Example`s; `split`, `upsample` and `class_weights` work on such
lists and never touch the audio itself.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from vocalstream import audio
from vocalstream.errors import AudioError, DataError
from vocalstream.models.labels import NUM_CLASSES, ONE_VOICE, TRAINING_LABELS

LABELS_FILE = "train_label.txt"
MANIFEST_COLUMNS = ("path", "label", "group")  # the columns read; others are allowed

# How many offending items an error message lists before it summarises the rest.
SHOWN = 5

_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Example:
    """One labelled snippet. `group` names its speaker or song so that `split` can keep every
    snippet of it on one side; left empty, it becomes the file's stem (each file its own group)."""

    path: Path
    label: int
    group: str = ""

    def __post_init__(self):
        # Frozen: the normalised values are set through object.__setattr__.
        object.__setattr__(self, "path", Path(self.path))
        if not self.group:
            object.__setattr__(self, "group", self.path.stem)


def _listing(items: Sequence[object]) -> str:
    """`a, b, c` or `a, b, c, d, e and 7 more`."""
    shown = ", ".join(str(item) for item in items[:SHOWN])
    rest = len(items) - SHOWN
    return f"{shown} and {rest} more" if rest > 0 else shown


def _parse_label(text: str, where: str) -> int:
    text = text.strip()
    # int() alone would also take "1_0" as 10.
    if not _INTEGER.fullmatch(text):
        raise DataError(f"{where}: label {text!r} is not an integer")
    label = int(text)
    if not 0 <= label < len(TRAINING_LABELS):
        meanings = ", ".join(f"{index} {name}" for index, name in enumerate(TRAINING_LABELS))
        raise DataError(
            f"{where}: label {label} is outside 0..{len(TRAINING_LABELS) - 1} ({meanings})"
        )
    return label


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: labels file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a labels file") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not a UTF-8 text file ({error.reason})") from error


def _read_labels(path: Path) -> list[int]:
    """One integer label per line; blank lines at the end are ignored, blank lines before the last
    label are an error because they would shift every later label onto the wrong file."""
    lines = _read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{path}: holds no labels")
    labels = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(f"{path} line {number}: blank line before the last label")
        labels.append(_parse_label(line, f"{path} line {number}"))
    return labels


def _index(path: Path) -> int | None:
    """N for a file named `N.<audio extension>`, else None."""
    stem = path.stem
    if stem.isascii() and stem.isdigit() and path.suffix.lower() in audio.READABLE_EXTENSIONS:
        return int(stem)
    return None


def _numbered_audio(folder: Path) -> dict[int, Path]:
    """The folder's `N.<audio extension>` files by index N; other files are ignored."""
    found: dict[int, list[Path]] = {}
    for path in folder.iterdir():
        index = _index(path)
        if index is not None and path.is_file():
            found.setdefault(index, []).append(path)
    clashes = sorted(index for index, paths in found.items() if len(paths) > 1)
    if clashes:
        names = ", ".join(sorted(path.name for path in found[clashes[0]]))
        others = f" (and {len(clashes) - 1} more indices)" if len(clashes) > 1 else ""
        raise DataError(
            f"{folder}: index {clashes[0]} has more than one audio file: {names}{others}; "
            "keep one file per index"
        )
    return {index: paths[0] for index, paths in found.items()}


def read_seed_folder(
    folder: str | os.PathLike, labels_file: str | os.PathLike | None = None
) -> list[Example]:
    """The seeds' layout: `folder/N.mp3` (or .wav, .flac, .ogg) labelled by line N, counted from
    0, of `labels_file` (default `folder/train_label.txt`). Each example is its own group.

    Every label must have exactly one audio file and every numbered audio file a label; anything
    else raises DataError, since a gap would silently pair files with the wrong labels.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    labels_path = folder / LABELS_FILE if labels_file is None else Path(labels_file)
    labels = _read_labels(labels_path)
    files = _numbered_audio(folder)
    missing = [index for index in range(len(labels)) if index not in files]
    unlabelled = sorted(index for index in files if index >= len(labels))
    if missing or unlabelled:
        problems = []
        if missing:
            problems.append(f"no audio file for indices {_listing(missing)}")
        if unlabelled:
            problems.append(f"no label for indices {_listing(unlabelled)}")
        raise DataError(
            f"{labels_path} has {len(labels)} labels but {folder} has {len(files)} numbered "
            f"audio files (0.mp3, 1.mp3, ...): {'; '.join(problems)}"
        )
    return [Example(files[index], label) for index, label in enumerate(labels)]


def _manifest_columns(header: list[str], csv_path: Path) -> list[str]:
    columns = [name.strip() for name in header]
    duplicated = [name for name, count in Counter(columns).items() if count > 1]
    if "path" not in columns or "label" not in columns or duplicated:
        raise DataError(
            f"{csv_path}: header {','.join(columns)!r} lacks path and label columns or repeats "
            "one; expected path,label[,group]"
        )
    return columns


def read_manifest(csv_path: str | os.PathLike) -> list[Example]:
    """Examples listed in a CSV file with the header `path,label` or `path,label,group`.

    Relative paths are taken from the CSV's folder. A missing or empty group becomes the file's
    stem. Errors name the line; files that do not exist are all listed in one error.
    """
    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as file:
            rows = list(_manifest_rows(csv_path, file))
    except FileNotFoundError:
        raise DataError(f"{csv_path}: manifest not found") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{csv_path}: not a UTF-8 text file ({error.reason})") from error
    if not rows:
        raise DataError(f"{csv_path}: lists no examples")
    missing = [
        f"line {line}: {example.path}" for line, example in rows if not example.path.is_file()
    ]
    if missing:
        raise DataError(
            f"{csv_path}: {len(missing)} listed files do not exist: {_listing(missing)}"
        )
    return [example for _, example in rows]


def _manifest_rows(csv_path: Path, file: TextIO) -> Iterator[tuple[int, Example]]:
    """(line number, example) for each non-blank row after the header."""
    reader = csv.reader(file)
    header = next(reader, None)
    if header is None:
        raise DataError(f"{csv_path}: empty; expected the header path,label[,group]")
    columns = _manifest_columns(header, csv_path)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        where = f"{csv_path} line {line}"
        if len(row) != len(columns):
            raise DataError(f"{where}: {len(row)} fields where the header has {len(columns)}")
        cells = dict(zip(columns, (cell.strip() for cell in row), strict=True))
        cells = {name: cells[name] for name in MANIFEST_COLUMNS if name in cells}
        if not cells["path"]:
            raise DataError(f"{where}: empty path")
        label = _parse_label(cells["label"], where)
        # An absolute path stays as it is under the / operator.
        yield line, Example(csv_path.parent / cells["path"], label, cells.get("group", ""))


def check_readable(
    examples: Iterable[Example], on_error: str = "fail"
) -> tuple[list[Example], list[tuple[Example, str]]]:
    """Open each file's header, so a broken file is found before training rather than mid-epoch.

    on_error="fail" raises DataError at the first unreadable file; "skip" drops it and returns it
    with the reason. Returns (kept, skipped). Only headers are read: a file corrupt past its header
    still passes here and fails when it is decoded.
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    kept, skipped = [], []
    for example in examples:
        try:
            audio.duration(example.path)
        except AudioError as error:
            if on_error == "fail":
                message = f"{error}; remove it from the data or skip unreadable files"
                raise DataError(message) from error
            skipped.append((example, str(error)))
        else:
            kept.append(example)
    return kept, skipped


def split(
    examples: Sequence[Example],
    validation_fraction: float = 0.2,
    seed: int = 42,
    by_group: bool = True,
) -> tuple[list[Example], list[Example]]:
    """(training, validation), the same for the same examples in the same order and seed.

    by_group keeps every group on one side: the sorted groups are shuffled with the seed and
    validation takes whole groups until it holds at least the fraction of the examples, so with
    large groups it can hold more. The last group always goes to training. Without by_group the
    examples themselves are shuffled and validation takes ceil(fraction * n) of them; this is the
    draw of scikit-learn's train_test_split(test_size=fraction, random_state=seed), as in the seeds.

    Raises DataError when either side would be empty: fewer than two examples, or, by group, only
    one group. Split before `upsample`, or copies of one snippet land on both sides.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    if len(examples) < 2:
        raise DataError(f"cannot split {len(examples)} example(s) into training and validation")
    # Legacy RandomState: numpy guarantees its stream stays the same across versions.
    rng = np.random.RandomState(seed)
    if not by_group:
        order = rng.permutation(len(examples))
        size = min(max(math.ceil(validation_fraction * len(examples)), 1), len(examples) - 1)
        return [examples[i] for i in order[size:]], [examples[i] for i in order[:size]]
    groups = sorted({example.group for example in examples})
    if len(groups) < 2:
        raise DataError(
            f"all {len(examples)} examples share the group {groups[0]!r}, so no split keeps "
            "groups apart; give the examples distinct groups or split without groups"
        )
    sizes = Counter(example.group for example in examples)
    target = validation_fraction * len(examples)
    validation_groups, size = set(), 0
    for index in rng.permutation(len(groups))[:-1]:
        if size >= target:
            break
        validation_groups.add(groups[index])
        size += sizes[groups[index]]
    training = [example for example in examples if example.group not in validation_groups]
    validation = [example for example in examples if example.group in validation_groups]
    return training, validation


def upsample(examples: Iterable[Example], label: int = 0, copies: int = 3) -> list[Example]:
    """The examples followed by `copies` extra copies of each one labelled `label`, as seed 002
    does for label 0. Apply it to the training side only, after `split`."""
    if copies < 0:
        raise ValueError(f"copies must be 0 or more, got {copies}")
    examples = list(examples)
    chosen = [example for example in examples if example.label == label]
    return examples + chosen * copies


def counts(examples: Iterable[Example]) -> dict[int, int]:
    """Examples per label, in label order; labels with no examples are absent."""
    return dict(sorted(Counter(example.label for example in examples).items()))


def class_weights(examples: Iterable[Example], num_classes: int = NUM_CLASSES) -> list[float]:
    """Per-class weights for the loss: 1 / count, normalised to sum to 1, so a class with half
    the examples weighs twice as much. A class with no examples gets weight 0 (it never appears in
    the loss anyway), and the others share the whole sum. An example of ONE_VOICE (gender not
    stated) counts half as male and half as female."""
    per_label: Counter[int] = Counter(counts(examples))
    if not per_label:
        raise DataError("cannot weight classes: there are no examples")
    outside = [label for label in per_label if not 0 <= label < len(TRAINING_LABELS)]
    if outside:
        raise ValueError(f"labels {outside} are outside 0..{len(TRAINING_LABELS) - 1}")
    unstated = per_label.pop(ONE_VOICE, 0)
    per_label.update({1: unstated / 2, 2: unstated / 2} if unstated else {})
    inverse = [1.0 / per_label[label] if per_label[label] else 0.0 for label in range(num_classes)]
    total = sum(inverse)
    return [weight / total for weight in inverse]
