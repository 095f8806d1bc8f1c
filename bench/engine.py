"""The engine's speed on this machine, in one run, beside official spleeter's separation alone.

    python bench/engine.py [--model BUNDLE] [--minutes 5] [--listen-seconds 60]
        [--spleeter-python ../spleeter-venv/bin/python]

- file: `vocalstream file SONG` at its default settings, as a user runs it (a new process, model
  load included), on a real song tiled to --minutes and written as mp3. Caches are warm (the
  first run ever also builds the separator graph, about 20 s, once).
- listen: `vocalstream listen -` fed raw PCM in real time in 0.1-s blocks, as a microphone
  delivers it, at hop 0.5 s and at hop 1 s. Latency is measured twice: by the daemon (from the
  block holding a window's last sample to its JSON line), and here, from writing that block to
  reading the line. CPU is the daemon's user + system time over the streaming part, as a share
  of all cores.
- official spleeter: its separation alone of the same audio, in its own virtual environment
  (tools/spleeter_official.py); left out when that environment is absent.
Peak RSS is each process's maximum resident set (getrusage of the finished child).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from vocalstream import audio

REPO = Path(__file__).resolve().parents[1]
SONG = REPO.parent / "shared/data/librosa-data/Karissa_Hobbs_-_Lets_Go_Fishin.ogg"
VOCALSTREAM = Path(sys.prefix) / "bin" / "vocalstream"
BLOCK_SECONDS = 0.1


def finished(process: subprocess.Popen) -> dict:
    """Wait for a child; its exit status and peak RSS in MB."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": process.returncode, "peak_rss_mb": usage.ru_maxrss / 1024}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def file_mode(song: Path, model: list[str]) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(
        [VOCALSTREAM, "file", song, *model], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout = process.stdout.read()
    stderr = process.stderr.read()
    result = finished(process)
    elapsed = time.perf_counter() - started
    if result["rc"]:
        sys.exit(f"vocalstream file failed: {stderr.decode()}")
    segments = json.loads(stdout)["files"][0]["segments"]
    return {**result, "wall_s": elapsed, "segments": len(segments)}


def listen_mode(signal: np.ndarray, seconds: float, hop: float, model: list[str]) -> dict:
    """Feed `seconds` of audio in real time; collect every JSON line as it arrives."""
    process = subprocess.Popen(
        [VOCALSTREAM, "listen", "-", "--hop", str(hop), "-v", *model],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    block = int(BLOCK_SECONDS * audio.SEPARATION_RATE)
    total = int(seconds * audio.SEPARATION_RATE)
    signal = np.tile(signal, (1, -(-total // signal.shape[1])))[:, :total]
    written: dict[int, float] = {}  # samples written after a block -> when
    loaded, started = threading.Event(), threading.Event()
    lines: list[tuple[float, dict]] = []
    messages: list[str] = []
    cpu: dict[str, float] = {}

    def read_lines() -> None:
        for line in process.stdout:
            lines.append((time.monotonic(), json.loads(line)))
            if not started.is_set():
                cpu["start"], cpu["at"] = cpu_seconds(process.pid), time.monotonic()
                started.set()

    def read_messages() -> None:
        for line in process.stderr:
            messages.append(line.decode())
            if "listening" in messages[-1]:
                loaded.set()

    readers = [threading.Thread(target=read_lines), threading.Thread(target=read_messages)]
    for reader in readers:
        reader.start()
    if not loaded.wait(timeout=120):
        sys.exit("vocalstream listen did not load its model: " + "".join(messages))
    start = time.monotonic()
    for offset in range(0, total, block):
        time.sleep(max(0.0, start + offset / audio.SEPARATION_RATE - time.monotonic()))
        process.stdin.write(signal[:, offset : offset + block].T.astype("<f4").tobytes())
        process.stdin.flush()
        written[min(offset + block, total)] = time.monotonic()
    time.sleep(1.0)
    cpu["end"], cpu["until"] = cpu_seconds(process.pid), time.monotonic()
    process.stdin.close()
    for reader in readers:
        reader.join()
    result = finished(process)
    stderr = "".join(messages)
    if result["rc"]:
        sys.exit(f"vocalstream listen failed: {stderr}")
    health = json.loads(stderr.strip().splitlines()[-1])["health"]
    daemon = np.array([event["latency_ms"] for _, event in lines if not event["padded"]])
    outside = []
    for arrived, event in lines:
        end = round(event["t1"] * audio.SEPARATION_RATE)
        holding = min((n for n in written if n >= end), default=None)
        if holding is not None and not event["padded"]:
            outside.append(1e3 * (arrived - written[holding]))
    streamed = cpu["until"] - cpu["at"]
    return {
        **result,
        "hop": hop,
        "windows": health["windows"],
        "dropped": health["dropped"],
        "provider": health["provider"],
        "daemon_p50_ms": float(np.percentile(daemon, 50)),
        "daemon_p99_ms": float(np.percentile(daemon, 99)),
        "end_to_end_p50_ms": float(np.percentile(outside, 50)),
        "end_to_end_p99_ms": float(np.percentile(outside, 99)),
        "cpu_share": (cpu["end"] - cpu["start"]) / streamed / os.cpu_count(),
    }


def official_spleeter(python: Path, song: Path, seconds: float) -> dict | None:
    if not python.exists():
        print(f"no spleeter venv at {python}: the official row is left out", file=sys.stderr)
        return None
    command = [
        str(python),
        str(REPO / "tools/spleeter_official.py"),
        "time",
        "--input",
        str(song),
        "--seconds",
        str(seconds),
        "--repeats",
        "1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stdout = process.stdout.read()
    result = finished(process)
    if result["rc"]:
        sys.exit("official spleeter failed")
    return {**json.loads(stdout.strip().splitlines()[-1]), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a bundle (default: the bundled model)")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--listen-seconds", type=float, default=60.0)
    parser.add_argument(
        "--spleeter-python", type=Path, default=REPO.parent / "spleeter-venv" / "bin" / "python"
    )
    args = parser.parse_args()
    model = ["--model", str(args.model)] if args.model else []
    seconds = args.minutes * 60

    with tempfile.TemporaryDirectory() as scratch:
        song = Path(scratch) / "song.mp3"
        signal = audio.load(SONG, audio.SEPARATION_RATE, 2)
        total = int(seconds * audio.SEPARATION_RATE)
        sf.write(
            song,
            np.tile(signal, (1, -(-total // signal.shape[1])))[:, :total].T,
            audio.SEPARATION_RATE,
        )
        file_mode(song, model)  # caches warm: separator graph, mel filters
        runs = sorted((file_mode(song, model) for _ in range(3)), key=lambda r: r["wall_s"])
        files = runs[1]  # the median of three
        official = official_spleeter(args.spleeter_python, song, seconds)
        listens = [listen_mode(signal, args.listen_seconds, hop, model) for hop in (0.5, 1.0)]

    cores = os.cpu_count()
    print(f"{cores} cores; a real song tiled to {seconds:.0f} s (mp3); caches warm\n")
    print("| what | wall s | x real time | peak RSS MB |\n|---|---|---|---|")
    walls = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
    print(
        f"| vocalstream file (defaults, model load included; median of {walls} s) | "
        f"{files['wall_s']:.2f} | {seconds / files['wall_s']:.1f} | {files['peak_rss_mb']:.0f} |"
    )
    if official:
        for kind in ("cold", "warm"):
            value = official[f"{kind}_s" if kind == "cold" else "warm_s_median"]
            print(
                f"| official spleeter separation alone ({kind}, TF {official['tf_version']}) | "
                f"{value:.1f} | {seconds / value:.1f} | {official['peak_rss_mb']:.0f} |"
            )
    print(
        f"\nlisten: {args.listen_seconds:g} s of raw PCM paced in real time in "
        f"{BLOCK_SECONDS:g}-s blocks\n"
    )
    print(
        "| hop s | windows | dropped | daemon p50 / p99 ms | end-to-end p50 / p99 ms | "
        "CPU share of the machine | peak RSS MB | provider |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in listens:
        print(
            f"| {row['hop']:g} | {row['windows']} | {row['dropped']} | "
            f"{row['daemon_p50_ms']:.0f} / {row['daemon_p99_ms']:.0f} | "
            f"{row['end_to_end_p50_ms']:.0f} / {row['end_to_end_p99_ms']:.0f} | "
            f"{row['cpu_share']:.2f} | {row['peak_rss_mb']:.0f} | {row['provider']} |"
        )


if __name__ == "__main__":
    main()
