"""Reading, checking, splitting and balancing training data, on tiny audio files made here."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vocalstream.errors import DataError
from vocalstream.train.data import (
    Example,
    check_readable,
    class_weights,
    counts,
    read_manifest,
    read_seed_folder,
    split,
    upsample,
)

RATE = 22050


def write_audio(path: Path) -> Path:
    """Half a second of a quiet sine, in the format the extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * np.arange(RATE // 2) / RATE), RATE)
    return path


def seed_folder(folder: Path, labels: str, extensions: list[str]) -> Path:
    """A seed-style folder: 0.<ext>, 1.<ext>, ... and train_label.txt holding `labels`."""
    folder.mkdir(exist_ok=True)
    for index, extension in enumerate(extensions):
        write_audio(folder / f"{index}.{extension}")
    (folder / "train_label.txt").write_text(labels)
    return folder


def examples(labels: list[int], group_size: int = 1) -> list[Example]:
    """Examples on paths that need not exist: `split` and friends never open them."""
    return [
        Example(Path(f"/data/{index}.mp3"), label, f"song{index // group_size}")
        for index, label in enumerate(labels)
    ]


def test_example_defaults_its_group_to_the_stem_and_is_frozen():
    example = Example("/data/clips/17.mp3", 2)
    assert example.path == Path("/data/clips/17.mp3") and example.group == "17"
    assert Example(Path("a.wav"), 0, "singer").group == "singer"
    with pytest.raises(dataclasses.FrozenInstanceError):
        example.label = 3


def test_seed_folder_round_trip(tmp_path):
    folder = seed_folder(tmp_path / "train", "0\n1\n2\n3\n0\n\n\n", ["mp3"] * 5)
    (folder / "notes.txt").write_text("not audio")
    write_audio(folder / "extra.wav")  # not numbered: ignored
    read = read_seed_folder(folder)
    assert [example.label for example in read] == [0, 1, 2, 3, 0]
    assert [example.path for example in read] == [folder / f"{i}.mp3" for i in range(5)]
    assert [example.group for example in read] == ["0", "1", "2", "3", "4"]
    kept, skipped = check_readable(read)
    assert kept == read and skipped == []


def test_seed_folder_takes_any_audio_extension_and_a_labels_file_elsewhere(tmp_path):
    folder = seed_folder(tmp_path / "train", "", ["wav", "flac", "ogg", "mp3"])
    labels = tmp_path / "labels.txt"
    labels.write_text("3\r\n2\r\n1\r\n0\r\n")
    read = read_seed_folder(folder, labels)
    assert [example.path.name for example in read] == ["0.wav", "1.flac", "2.ogg", "3.mp3"]
    assert [example.label for example in read] == [3, 2, 1, 0]


def test_seed_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        read_seed_folder(tmp_path / "absent")

    folder = seed_folder(tmp_path / "train", "0\n1\n", ["mp3"] * 2)
    (folder / "train_label.txt").unlink()
    with pytest.raises(DataError, match=r"train_label\.txt: labels file not found"):
        read_seed_folder(folder)

    cases = {
        "0\n1\nabc\n": "line 3: label 'abc' is not an integer",
        "0\n1.0\n": "line 2: label '1.0' is not an integer",
        "0\n1\n2\n5\n": "line 4: label 5 is outside 0..4",
        "-1\n": "line 1: label -1 is outside 0..4",
        "0\n\n1\n": "line 2: blank line before the last label",
        "\n\n": "holds no labels",
    }
    for text, message in cases.items():
        (folder / "train_label.txt").write_text(text)
        with pytest.raises(DataError, match=re.escape(message)):
            read_seed_folder(folder)


def test_seed_folder_count_mismatch_names_both_counts_and_the_gaps(tmp_path):
    folder = seed_folder(tmp_path / "train", "0\n" * 12, ["wav"] * 3)
    with pytest.raises(DataError) as error:
        read_seed_folder(folder)
    message = str(error.value)
    assert "has 12 labels but" in message and "has 3 numbered audio files" in message
    assert "no audio file for indices 3, 4, 5, 6, 7 and 4 more" in message

    (folder / "train_label.txt").write_text("0\n1\n")
    write_audio(folder / "5.wav")
    with pytest.raises(DataError, match="2 labels but .* 4 numbered .* no label for indices 2, 5"):
        read_seed_folder(folder)


def test_seed_folder_rejects_one_index_in_two_formats(tmp_path):
    folder = seed_folder(tmp_path / "train", "0\n1\n", ["mp3"] * 2)
    write_audio(folder / "1.wav")
    with pytest.raises(DataError, match=r"index 1 has more than one audio file: 1\.mp3, 1\.wav"):
        read_seed_folder(folder)


def test_manifest_resolves_relative_paths_and_reads_groups(tmp_path):
    root = tmp_path / "data"
    write_audio(root / "songs" / "a.wav")
    write_audio(root / "songs" / "b.mp3")
    elsewhere = write_audio(tmp_path / "elsewhere" / "c.flac")
    manifest = root / "train.csv"
    manifest.write_text(
        f"path,label,group\nsongs/a.wav,1,alice\n\nsongs/b.mp3, 2 ,\n{elsewhere},3,duet\n"
    )
    assert read_manifest(manifest) == [
        Example(root / "songs" / "a.wav", 1, "alice"),
        Example(root / "songs" / "b.mp3", 2, "b"),
        Example(elsewhere, 3, "duet"),
    ]
    manifest.write_text("path,label\nsongs/a.wav,0\n")
    assert read_manifest(manifest) == [Example(root / "songs" / "a.wav", 0, "a")]
    # Columns beyond path,label,group describe the example (the corpus builder writes them).
    manifest.write_text("path,label,source,group\nsongs/a.wav,0,asterisk,duet\n")
    assert read_manifest(manifest) == [Example(root / "songs" / "a.wav", 0, "duet")]


def test_manifest_errors(tmp_path):
    write_audio(tmp_path / "a.wav")
    manifest = tmp_path / "train.csv"
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(manifest)
    cases = {
        "": "empty; expected the header path,label[,group]",
        "file,label\na.wav,0\n": "header 'file,label' lacks path and label columns",
        "path,label,path\na.wav,0,b.wav\n": "header 'path,label,path' lacks path and label",
        "path,label\n": "lists no examples",
        "path,label\na.wav,0\na.wav,x\n": "line 3: label 'x' is not an integer",
        "path,label\na.wav,7\n": "line 2: label 7 is outside 0..4",
        "path,label\na.wav,0,extra\n": "line 2: 3 fields where the header has 2",
        "path,label\n,0\n": "line 2: empty path",
    }
    for text, message in cases.items():
        manifest.write_text(text)
        with pytest.raises(DataError, match=re.escape(message)):
            read_manifest(manifest)

    manifest.write_text("path,label\na.wav,0\ngone.wav,1\nsub/lost.mp3,2\n")
    with pytest.raises(DataError) as error:
        read_manifest(manifest)
    message = str(error.value)
    assert "2 listed files do not exist" in message
    assert f"line 3: {tmp_path / 'gone.wav'}" in message
    assert f"line 4: {tmp_path / 'sub' / 'lost.mp3'}" in message


def test_check_readable_fails_or_skips_a_corrupt_file(tmp_path):
    good = Example(write_audio(tmp_path / "good.mp3"), 1)
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    bad = Example(corrupt, 0)

    with pytest.raises(DataError, match=re.escape(f"{corrupt}: not a readable audio file")):
        check_readable([good, bad])
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'gone.wav'}: no such file")):
        check_readable([Example(tmp_path / "gone.wav", 0)], on_error="fail")

    kept, skipped = check_readable([good, bad, good], on_error="skip")
    assert kept == [good, good]
    assert len(skipped) == 1 and skipped[0][0] == bad
    assert "not a readable audio file" in skipped[0][1]

    with pytest.raises(ValueError, match="on_error"):
        check_readable([good], on_error="ignore")


def test_split_by_group_is_seeded_sized_and_keeps_groups_apart():
    # 25 songs of four snippets each.
    data = examples([index % 4 for index in range(100)], group_size=4)
    training, validation = split(data)
    assert (training, validation) == split(data)
    assert split(data, seed=7) != (training, validation)
    assert 20 <= len(validation) < 24  # whole groups until 20 % is reached
    assert sorted(training + validation, key=str) == sorted(data, key=str)
    assert not {e.group for e in training} & {e.group for e in validation}


def test_split_by_group_with_uneven_groups_never_empties_a_side():
    # One song of 9 snippets and one of 1: whichever the seed sends to validation, training keeps
    # the other.
    data = examples([0] * 10, group_size=9)
    for seed in range(10):
        training, validation = split(data, seed=seed)
        assert training and validation
        assert not {e.group for e in training} & {e.group for e in validation}


def test_split_without_groups_is_the_seeds_plain_shuffle():
    data = examples([0] * 5 + [1] * 5, group_size=5)  # two groups, ignored here
    training, validation = split(data, by_group=False)
    order = np.random.RandomState(42).permutation(10)  # sklearn's train_test_split draw
    assert validation == [data[i] for i in order[:2]]
    assert training == [data[i] for i in order[2:]]
    assert split(data, by_group=False) == (training, validation)
    assert split(data, seed=1, by_group=False) != (training, validation)

    training, validation = split(examples([0] * 101), by_group=False)
    assert (len(training), len(validation)) == (80, 21)  # ceil(0.2 * 101)


def test_split_refuses_what_cannot_be_split():
    with pytest.raises(DataError, match="share the group 'song0'"):
        split(examples([0, 1, 2], group_size=3))
    with pytest.raises(DataError, match="cannot split 1 example"):
        split(examples([0]), by_group=False)
    with pytest.raises(ValueError, match="validation_fraction"):
        split(examples([0, 1]), validation_fraction=1.0)


def test_upsample_appends_copies_of_one_label():
    data = examples([0, 1, 0, 2, 3])
    grown = upsample(data)
    assert grown[:5] == data and len(grown) == 5 + 2 * 3
    assert counts(grown) == {0: 8, 1: 1, 2: 1, 3: 1}
    assert counts(upsample(data, label=3, copies=1)) == {0: 2, 1: 1, 2: 1, 3: 2}
    assert upsample(data, copies=0) == data


def test_counts_and_class_weights():
    data = examples([0] * 6 + [1] * 2 + [2, 3])
    assert counts(data) == {0: 6, 1: 2, 2: 1, 3: 1}
    inverse = np.array([1 / 6, 1 / 2, 1, 1])
    assert class_weights(data) == pytest.approx(inverse / inverse.sum())
    assert class_weights(data) == pytest.approx([1 / 16, 3 / 16, 6 / 16, 6 / 16])
    assert class_weights(examples([0, 2, 2])) == pytest.approx([2 / 3, 0, 1 / 3, 0])
    # One voice of unstated gender counts half as male and half as female.
    assert class_weights(examples([0, 0, 3, 3, 4, 4, 4, 4])) == pytest.approx([1 / 4] * 4)
    assert class_weights(examples([0, 1, 4, 4])) == pytest.approx([0.4, 0.2, 0.4, 0])
    with pytest.raises(DataError, match="no examples"):
        class_weights([])
