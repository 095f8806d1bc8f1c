"""`vocalstream batch` end to end on a small library of real recordings: records, summaries,
resuming after a real kill, worker processes, a real local Ray cluster, and the timeline
pictures."""

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ORCHESTRA, REPO, SONG, SPEECH, shared
from matplotlib.image import imread

from vocalstream.catalog.execute import run_batch
from vocalstream.catalog.inputs import audio_files
from vocalstream.catalog.plot import COLOURS
from vocalstream.catalog.summary import TAGS, vocal_tag
from vocalstream.catalog.worker import Settings, plot_path
from vocalstream.errors import VocalstreamError
from vocalstream.models.labels import LABELS

SAMPLE = REPO / "samples" / "example.mp3"
# Cuts of real recordings: (source under ../shared/data, start s, length s, where in the library)
CUTS = [
    (SONG, 20, 5, "songs/fishin-20.wav"),
    (SONG, 45, 5, "songs/fishin-45.flac"),
    (SONG, 70, 6, "songs/fishin-70.ogg"),
    (SONG, 100, 4, "songs/fishin-100.wav"),
    (SPEECH, 2, 5, "speech/heather.flac"),
    ("librosa-data/3436-172162-0000.ogg", 1, 5, "speech/anders.ogg"),
    ("librosa-data/5703-47212-0000.ogg", 3, 4, "speech/garth.wav"),
    (ORCHESTRA, 10, 5, "instrumental/brahms-10.flac"),
    (ORCHESTRA, 30, 4, "instrumental/brahms-30.ogg"),
    ("librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg", 30, 5, "instrumental/vibe-ace.wav"),
    ("librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg", 50, 3, "instrumental/vibe-ace-50.mp3"),
    (
        "librosa-data/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
        15,
        5,
        "instrumental/sugar-plum.ogg",
    ),
    ("librosa-data/sorohanro_-_solo-trumpet-06.ogg", 0, 4, "instrumental/trumpet.flac"),
    ("choirset/DCS_SE_FullChoir_ScaleUpDown02_S1_LRX.wav", 2, 5, "choir/soprano.wav"),
    ("choirset/DCS_SE_FullChoir_ScaleUpDown02_B1_LRX.wav", 2, 5, "choir/bass.flac"),
    ("choirset/DCS_SE_FullChoir_ScaleUpDownPiano04_B2_LRX.wav", 1, 6, "choir/bass-piano.ogg"),
    ("vocadito/vocadito_1.wav", 5, 6, "vocadito.wav"),
    ("librosa-data/glacier-bay-humpback.ogg", 5, 4, "nature/humpback.ogg"),
]
CORRUPT = "songs/truncated.flac"


def run(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [f"{sys.prefix}/bin/vocalstream", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """20 real recordings (cuts of 3-6 s, and the 10.9-s sample) in wav, flac, ogg and mp3, in
    nested folders, plus a truncated flac and a text file that is not audio."""
    folder = tmp_path_factory.mktemp("library")
    for source, start, length, name in CUTS:
        with sf.SoundFile(shared(source)) as recording:
            recording.seek(start * recording.samplerate)
            frames = recording.read(length * recording.samplerate, dtype="float32")
            rate = recording.samplerate
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(folder / name, frames, rate)
    soprano, bass = (sf.read(folder / f"choir/{name}")[0] for name in ("soprano.wav", "bass.flac"))
    sf.write(folder / "choir/together.wav", soprano + bass, 22050)  # two real singers at once
    shutil.copy(SAMPLE, folder / "songs/example.mp3")
    whole = (folder / "songs/fishin-45.flac").read_bytes()
    (folder / CORRUPT).write_bytes(whole[: len(whole) // 3])
    (folder / "README.txt").write_text("not audio: folders are searched by extension\n")
    return folder


def records(path) -> dict[str, dict]:
    """The last record of each file, without its run details (host, pid, timings)."""
    found = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        record.pop("run")
        found[record["path"]] = record
    return found


@pytest.fixture(scope="module")
def single_run(library, cache_env, tmp_path_factory):
    """One process, one thread: the reference every other way of running must match."""
    out = tmp_path_factory.mktemp("single")
    done = run(
        "batch",
        library,
        "-o",
        out / "results.jsonl",
        "--summary",
        out / "summary.csv",
        "--threads",
        "1",
        env=cache_env,
    )
    return done, out


def test_every_file_gets_one_record_and_the_corrupt_one_an_error(single_run, library):
    done, out = single_run
    assert done.returncode == 1
    assert done.stdout == ""
    assert "1 of 21 files failed" in done.stderr
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 21
    found = records(out / "results.jsonl")
    assert set(found) == set(audio_files([str(library)]))
    corrupt = found[str(library / CORRUPT)]
    assert corrupt["size"] == (library / CORRUPT).stat().st_size
    assert str(library / CORRUPT) in corrupt["error"] and "truncated" in corrupt["error"]
    assert corrupt["error"] in done.stderr
    for path, record in found.items():
        if path == str(library / CORRUPT):
            continue
        assert record["mtime"] == os.stat(path).st_mtime
        summary = record["summary"]
        assert summary["tag"] in TAGS
        assert sum(summary["seconds"].values()) == pytest.approx(record["duration"], abs=1e-3)
        assert sum(summary["share"].values()) == pytest.approx(1.0, abs=1e-3)
        # Each mean is rounded to four decimals.
        assert sum(summary["mean_probs"].values()) == pytest.approx(1.0, abs=1e-3)
        assert record["segments"][-1]["end"] == record["duration"]
        assert "windows" not in record
    assert found[str(library / "songs/example.mp3")]["duration"] == pytest.approx(10.88, abs=0.05)
    # Clear cases for the bundled model: an orchestra and a read voice.
    assert found[str(library / "instrumental/brahms-10.flac")]["summary"]["tag"] == "instrumental"
    assert found[str(library / "speech/heather.flac")]["summary"]["tag"] == "female vocals"


def test_the_summary_csv_has_one_row_per_file(single_run, library):
    _, out = single_run
    with open(out / "summary.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    found = records(out / "results.jsonl")
    assert [row["path"] for row in rows] == sorted(found)
    for row in rows:
        record = found[row["path"]]
        if "error" in record:
            assert row["error"] == record["error"] and row["tag"] == ""
            continue
        assert row["tag"] == record["summary"]["tag"] and row["error"] == ""
        assert float(row["duration"]) == record["duration"]
        for label in LABELS:
            assert float(row[f"seconds_{label}"]) == record["summary"]["seconds"][label]
            assert float(row[f"p_{label}"]) == record["summary"]["mean_probs"][label]


def test_two_worker_processes_give_the_single_process_results(
    single_run, library, cache_env, tmp_path
):
    """--jobs 2 splits the two cores: one thread each, as the reference. Each worker loads
    the model once (-v logs each load)."""
    done = run("batch", library, "-o", tmp_path / "results.jsonl", "-j", "2", "-v", env=cache_env)
    assert done.returncode == 1 and "1 of 21 files failed" in done.stderr
    assert sum(line.startswith("model ") for line in done.stderr.splitlines()) == 2
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    pids = {json.loads(line)["run"]["pid"] for line in lines}
    assert len(pids) == 2
    assert records(tmp_path / "results.jsonl") == records(single_run[1] / "results.jsonl")


def test_a_killed_batch_resumes_where_it_stopped(single_run, library, cache_env, tmp_path):
    results = tmp_path / "results.jsonl"
    command = [f"{sys.prefix}/bin/vocalstream", "batch", library, "-o", results, "--threads", "1"]
    batch = subprocess.Popen(command, env=cache_env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (results.exists() and results.read_text().count("\n") >= 4):
        assert batch.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    batch.send_signal(signal.SIGKILL)
    assert batch.wait() == -signal.SIGKILL
    written = results.read_text().splitlines()
    assert 4 <= len(written) < 21
    for line in written:
        json.loads(line)
    # A kill mid-write would leave a torn line: the resume must cut it off, not choke on it.
    with open(results, "a") as file:
        file.write('{"path": "/torn/by/a/kill", "si')
    done = run("batch", library, "-o", results, "--resume", "--threads", "1", env=cache_env)
    assert done.returncode == 1, done.stderr
    assert "dropping a torn last line" in done.stderr
    successes = sum("error" not in json.loads(line) for line in written)
    assert f"21 files: {successes} analysed before, {21 - successes} to analyse" in done.stderr
    assert records(results) == records(single_run[1] / "results.jsonl")
    assert len(results.read_text().splitlines()) == len(written) + 21 - successes


def test_resume_retries_failures_and_redoes_changed_files(single_run, library, cache_env, tmp_path):
    results = tmp_path / "results.jsonl"
    shutil.copy(single_run[1] / "results.jsonl", results)
    changed = library / "speech/garth.wav"
    before = os.stat(changed)
    os.utime(changed, (before.st_atime, before.st_mtime + 10))
    try:
        done = run("batch", library, "-o", results, "--resume", env=cache_env)
    finally:
        os.utime(changed, (before.st_atime, before.st_mtime))
    assert done.returncode == 1
    assert "21 files: 19 analysed before, 2 to analyse" in done.stderr
    appended = [json.loads(line) for line in results.read_text().splitlines()[21:]]
    assert sorted(record["path"] for record in appended) == [
        str(library / CORRUPT),
        str(changed),
    ]
    assert next(r for r in appended if r["path"] == str(changed))["mtime"] == before.st_mtime + 10


def test_an_existing_results_file_needs_resume(library, cache_env, tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text('{"path": "/x.mp3", "size": 1, "mtime": 1.0, "error": "x"}\n')
    done = run("batch", library, "-o", results, env=cache_env)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"Error: {results} exists: --resume continues it; remove it to start over"
    ]


def test_inputs_are_files_folders_and_lists(library, tmp_path):
    listing = tmp_path / "catalog.txt"
    listing.write_text(
        f"# a list of paths: relative to the list, folders searched too\n\n"
        f"{os.path.relpath(library / 'speech/anders.ogg', tmp_path)}\n"
        f"{library / 'choir'}\n"
        f"{tmp_path / 'gone.mp3'}\n"
    )
    cover = tmp_path / "cover.jpg"
    cover.write_bytes(b"\xff\xd8\xff\xe0 not audio")
    found = audio_files([str(listing), str(library / "choir"), str(cover)])
    assert found == sorted(
        [
            str(library / "speech/anders.ogg"),
            *(str(library / "choir" / name) for name in os.listdir(library / "choir")),
            str(tmp_path / "gone.mp3"),  # a listed path that went away: an error record later
            str(cover),  # named on its own: taken, and fails as non-audio
        ]
    )
    assert str(library / "README.txt") not in audio_files([str(library)])
    with pytest.raises(VocalstreamError, match="no such file or folder"):
        audio_files([str(tmp_path / "typo")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(VocalstreamError, match="no audio files"):
        audio_files([str(tmp_path / "empty")])


def test_the_vocal_tag_rule():
    def tag(no_voice, male, female, several):
        return vocal_tag(dict(zip(LABELS, (no_voice, male, female, several), strict=True)))

    assert tag(100, 0, 0, 0) == "instrumental"
    assert tag(81, 19, 0, 0) == "instrumental"  # voiced under 20% of the file
    assert tag(70, 0, 30, 0) == "female vocals"
    assert tag(10, 60, 20, 10) == "male vocals"  # 60 of the 90 voiced seconds
    assert tag(0, 10, 10, 80) == "several voices"
    assert tag(0, 50, 40, 10) == "mixed"  # no voice class holds 60% of the voiced time
    assert tag(0, 0, 0, 0) == "instrumental"


@pytest.fixture(scope="module")
def ray_cluster(cache_env):
    """A real single-node Ray cluster on 127.0.0.1 with 2 CPUs; yields (address, environment).

    Ray advertises a machine's routable address even when told 127.0.0.1, unless its
    single-machine mode is on (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 on Linux): with it, every
    Ray process listens on the loopback only. The driver needs the same setting."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**cache_env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    sessions = Path(tempfile.mkdtemp(prefix="vs-ray-"))  # short: Ray's unix sockets live under it
    log = sessions / "start.log"
    with open(log, "w") as output:
        head = subprocess.Popen(
            [
                f"{sys.prefix}/bin/ray",
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                "--num-cpus=2",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={sessions}",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the Ray head did not start in 120 s"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", env
    finally:
        head.terminate()  # --block: the head stops every Ray process it started
        head.wait(timeout=60)
        shutil.rmtree(sessions, ignore_errors=True)


def test_a_ray_cluster_gives_the_single_process_results(single_run, library, ray_cluster, tmp_path):
    address, env = ray_cluster
    results = tmp_path / "results.jsonl"
    done = run(
        "batch", library, "-o", results, "--ray", address, "--summary", tmp_path / "s.csv", env=env
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert "1 of 21 files failed" in done.stderr
    assert len(results.read_text().splitlines()) == 21
    workers = {json.loads(line)["run"]["pid"] for line in results.read_text().splitlines()}
    assert len(workers) == 2  # the cluster's 2 CPUs, an actor of one thread on each
    assert records(results) == records(single_run[1] / "results.jsonl")
    assert (tmp_path / "s.csv").read_text() == (single_run[1] / "summary.csv").read_text()


def test_an_unreachable_ray_cluster_is_one_error_line(library, cache_env, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run(
        "batch", library, "-o", tmp_path / "r.jsonl", "--ray", f"127.0.0.1:{port}", env=cache_env
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: cannot join the Ray cluster at 127.0.0.1:{port}")
    )


def _pixels_near(image: np.ndarray, colour: str, alpha: float, tolerance: float = 3 / 255) -> int:
    """How many pixels show `colour` drawn at `alpha` over white."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    blended = alpha * rgb + (1 - alpha)
    return int((np.abs(image[..., :3] - blended) <= tolerance).all(axis=-1).sum())


def test_file_plot_draws_the_timeline(cache_env, tmp_path):
    picture = tmp_path / "timeline.png"
    done = run("file", SAMPLE, "--plot", picture, "-f", "csv", env=cache_env)
    assert done.returncode == 0, done.stderr
    shown = {row.split(",")[3] for row in done.stdout.splitlines()[1:]}
    image = imread(picture)
    assert image.shape[:2] == (600, 1200)
    assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 100
    for label, colour in COLOURS.items():
        assert _pixels_near(image, colour, 1.0, 0.5 / 255) > 0, label  # the legend
        # The strip of segment bands shows exactly the classes of the timeline.
        if label in shown:
            assert _pixels_near(image, colour, 0.9) > 2000, label
        else:
            assert _pixels_near(image, colour, 0.9) < 20, label
    # The vocal level's area (purple over the faint bands): the sample's vocals lie 5-13 dB
    # under the mix, so most of the lowest panel (-60 to 0 dB, about 1130 x 150 pixels).
    red, green, blue = (image[..., channel] for channel in range(3))
    assert ((red - green > 0.12) & (blue - green > 0.12)).sum() > 50_000


def test_plot_needs_one_input_and_a_picture_format(cache_env, tmp_path):
    done = run("file", SAMPLE, SAMPLE, "--plot", tmp_path / "t.png", env=cache_env)
    assert done.returncode == 1 and "--plot draws one INPUT" in done.stderr
    done = run("file", SAMPLE, "--plot", tmp_path / "t.gif", env=cache_env)
    assert done.returncode == 1 and "must be one of .png, .svg, .pdf" in done.stderr
    assert not list(tmp_path.iterdir())


def test_batch_draws_one_picture_per_file(library, cache_env, tmp_path):
    listing = tmp_path / "some.lst"
    listing.write_text(f"{library / 'choir'}\n{library / CORRUPT}\n")
    results = tmp_path / "results.jsonl"
    done = run("batch", listing, "-o", results, "--plots", tmp_path / "plots", env=cache_env)
    assert done.returncode == 1
    found = records(results)
    assert len(found) == 5 and "plot" not in found[str(library / CORRUPT)]
    drawn = {record["plot"] for record in found.values() if "error" not in record}
    assert drawn == {str(path) for path in (tmp_path / "plots").iterdir()}
    for path, record in found.items():
        if "error" not in record:
            assert record["plot"] == plot_path(str(tmp_path / "plots"), path)
            assert imread(record["plot"]).shape[:2] == (600, 1200)


def test_unreadable_inputs_get_error_records_naming_the_reason(library, cache_env, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.touch()
    cover = tmp_path / "cover.mp3"
    cover.write_bytes(b"\xff\xd8\xff\xe0 a JPEG named .mp3")
    listing = tmp_path / "more.txt"
    listing.write_text("gone.flac\n")
    results = tmp_path / "results.jsonl"
    done = run("batch", empty, cover, listing, "-o", results, env=cache_env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: 3 of 3 files failed: see their error records in {results}"
    )
    errors = {path: record["error"] for path, record in records(results).items()}
    assert errors == {
        str(empty): f"{empty}: empty file",
        str(cover): f"{cover}: not a readable audio file (unknown or corrupt format)",
        str(tmp_path / "gone.flac"): f"{tmp_path / 'gone.flac'}: no such file",
    }


def test_windows_and_progress_bars(library, separator_cache, tmp_path, capsys):
    """In-process, with the bars on: one over files, one over seconds of audio."""
    results = tmp_path / "results.jsonl"
    settings = Settings(threads=1, windows=True)
    total, failed = run_batch([str(library / "choir")], results, settings, progress=True)
    assert (total, failed) == (4, 0)
    found = records(results)
    for record in found.values():
        windows = record["windows"]
        assert [window["t0"] for window in windows] == [float(t) for t in range(len(windows))]
        assert all(-80 <= window["vocal_level"] <= 0 for window in windows)
    bars = capsys.readouterr().err
    seconds = sum(record["duration"] for record in found.values())
    assert "files: 100%" in bars and "4/4" in bars
    assert f"audio: {seconds:.1f}s" in bars
