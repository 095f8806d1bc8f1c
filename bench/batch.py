"""`vocalstream batch` throughput on this machine: one process, two worker processes, and two
Ray actors on a local cluster, over the same library of real recordings.

    python bench/batch.py SCRATCH [--files 100] [--runs jobs1,jobs2,ray2]

The library: --files mp3 files of 30 s to 5 min (lengths drawn log-uniformly, seed 0), cut
one after another from real recordings and written once into SCRATCH/library (a rerun reuses
them; SCRATCH/library/sources.csv says where each comes from):
- instrumental game music that `vocalstream corpus build` unpacks from Debian packages into
  ~/.cache/vocalstream/corpus/debian: hyperrogue-music (GPL-2+), singularity-music,
  warzone2100-music and planetblupi-music-ogg (each package's usr/share/doc/*/copyright);
- from ../shared/data: Karissa Hobbs' song with a female lead, the Brahms, Tchaikovsky and
  Kevin MacLeod instrumentals, the humpback recording and vocadito's solo singing (licences in
  ../shared/data/README.md).
Its first --files files are used, so `--files 6` is a quick check of the script itself.

Each run is `vocalstream batch LIBRARY.lst -o results.jsonl -q` from a fresh results file,
timed from its start to its exit, the model loads (once per worker) and process or actor starts
included; the Ray cluster's own start is timed apart. Files per minute and x real time (seconds
of audio / seconds of wall time) come from that wall time. Peak memory per worker is the
largest `peak_rss_mb` that any worker's records report (its getrusage maximum); the driver's
own peak (its VmHWM, read while it runs) is reported beside it: with --jobs 1 the driver is
the worker. Caches are warm: the first run ever also builds the separator.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from vocalstream.files import cache_dir

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEBIAN = ("hyperrogue-music", "singularity-music", "warzone2100-music", "planetblupi-music-ogg")
SHARED_MUSIC = (
    "librosa-data/Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
    "librosa-data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
    "librosa-data/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
    "librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "librosa-data/glacier-bay-humpback.ogg",
    "vocadito/vocadito_1.wav",
)
SHORTEST, LONGEST = 30.0, 300.0
BIN = Path(sys.prefix) / "bin"
RUNS = {
    "jobs1": ["--jobs", "1"],
    "jobs2": ["--jobs", "2"],
    "ray2": ["--jobs", "2"],  # and --ray ADDRESS
}


def recordings() -> list[Path]:
    """Every real recording of at least SHORTEST seconds, in a fixed order."""
    found = [SHARED / name for name in SHARED_MUSIC]
    for package in DEBIAN:
        root = cache_dir() / "corpus" / "debian" / package / "usr" / "share"
        found += sorted(p for p in root.rglob("*") if p.suffix in (".ogg", ".opus"))
    return [path for path in found if sf.info(path).duration >= SHORTEST]


def build_library(folder: Path, count: int) -> tuple[Path, float]:
    """The first `count` files of the library (written if missing), listed in a .lst file; and
    their total seconds of audio."""
    lengths = np.exp(np.random.default_rng(0).uniform(np.log(SHORTEST), np.log(LONGEST), 100))
    if count > len(lengths):
        raise SystemExit(f"--files is at most {len(lengths)}")
    folder.mkdir(parents=True, exist_ok=True)
    sources = recordings()
    left = {path: sf.info(path).duration for path in sources}
    used = dict.fromkeys(sources, 0.0)
    rows, turn = [], 0
    for number, length in enumerate(np.round(lengths, 1)):
        # Round-robin over the recordings that still hold `length` seconds not yet cut.
        for step in range(len(sources)):
            source = sources[(turn + step) % len(sources)]
            if left[source] - used[source] >= length:
                break
        else:
            raise SystemExit("the recordings are too short for this library")
        turn = (turn + step + 1) % len(sources)
        rows.append((f"{number:03d}.mp3", source, used[source], float(length)))
        used[source] += length
    with open(folder / "sources.csv", "w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(["file", "source", "start_s", "length_s"])
        writer.writerows(
            (name, source, f"{start:.1f}", length) for name, source, start, length in rows
        )
    for name, source, start, length in rows[:count]:
        if (folder / name).exists():
            continue
        with sf.SoundFile(source) as recording:
            recording.seek(int(start * recording.samplerate))
            frames = recording.read(int(length * recording.samplerate), dtype="float32")
            rate = recording.samplerate
        scratch = folder / f".{name}"
        sf.write(scratch, frames, rate, format="MP3")
        os.replace(scratch, folder / name)
    listing = folder.parent / f"library-{count}.lst"
    listing.write_text("".join(f"{folder / name}\n" for name, *_ in rows[:count]))
    return listing, sum(length for *_, length in rows[:count])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_ray(env: dict, sessions: Path) -> tuple[subprocess.Popen, str, float]:
    """A 2-CPU Ray head on 127.0.0.1 (see tests/test_catalog.py); its process, address, and
    seconds to start."""
    port = free_port()
    log = sessions / "start.log"
    started = time.perf_counter()
    with open(log, "w") as output:
        head = subprocess.Popen(
            [
                BIN / "ray",
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
    while "Ray runtime started" not in log.read_text():
        if head.poll() is not None:
            raise SystemExit(f"ray start failed:\n{log.read_text()}")
        time.sleep(0.2)
    return head, f"127.0.0.1:{port}", time.perf_counter() - started


def timed_batch(listing: Path, results: Path, options: list[str], env: dict) -> dict:
    results.unlink(missing_ok=True)
    command = [BIN / "vocalstream", "batch", listing, "-o", results, "-q", *options]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    driver_peak_kb = 0
    while True:
        # The driver's own peak (VmHWM): wait4's figure would include its worker processes.
        status_lines = Path(f"/proc/{process.pid}/status").read_text().splitlines()
        peak = next((line for line in status_lines if line.startswith("VmHWM:")), None)
        driver_peak_kb = int(peak.split()[1]) if peak else driver_peak_kb
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.1)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed")
    records = [json.loads(line) for line in results.read_text().splitlines()]
    workers: dict[int, float] = {}
    for record in records:
        pid = record["run"]["pid"]
        workers[pid] = max(workers.get(pid, 0.0), record["run"]["peak_rss_mb"])
    return {
        "wall": wall,
        "files": len(records),
        "workers": len(workers),
        "worker_peak_mb": max(workers.values()),
        "driver_peak_mb": driver_peak_kb / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scratch", type=Path, help="where the library and results are kept")
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"of {', '.join(RUNS)}")
    args = parser.parse_args()
    runs = args.runs.split(",")
    if not set(runs) <= set(RUNS):
        parser.error(f"--runs takes {', '.join(RUNS)}")
    listing, audio_seconds = build_library(args.scratch / "library", args.files)
    print(f"library: {args.files} files, {audio_seconds / 60:.1f} min of audio ({listing})")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    rows = []
    for run in runs:
        options = list(RUNS[run])
        head = None
        if run.startswith("ray"):
            sessions = Path(tempfile.mkdtemp(prefix="vs-ray-"))
            head, address, ray_start = start_ray(env, sessions)
            print(f"Ray head started in {ray_start:.1f} s")
            options += ["--ray", address]
        try:
            measured = timed_batch(listing, args.scratch / f"results-{run}.jsonl", options, env)
        finally:
            if head is not None:
                head.terminate()  # --block: the head stops the Ray processes it started
                head.wait()
                shutil.rmtree(sessions, ignore_errors=True)
        rows.append((run, measured))
    cores = len(os.sched_getaffinity(0))
    print(f"\n{cores} cores; wall time includes model loads and worker starts\n")
    print(
        "| run | workers | files | wall s | files/min | x real time | peak MB/worker | driver MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for run, m in rows:
        print(
            f"| {run} | {m['workers']} | {m['files']} | {m['wall']:.1f} | "
            f"{60 * m['files'] / m['wall']:.1f} | {audio_seconds / m['wall']:.1f} | "
            f"{m['worker_peak_mb']:.0f} | {m['driver_peak_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
