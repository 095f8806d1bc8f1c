"""Soak: `vocalstream serve` on a real (virtual) microphone for a long time, with an SSE client.

A PulseAudio null sink is the microphone (../shared/notes/virtual-mic.md); a playlist of real
recordings from ../shared/data (songs, speech, orchestra) plays into it in a loop. One SSE client
reads every event. Every --sample seconds the serve process's RSS and its /metrics are read.
The report gives dropped windows (the pipeline's), events the client missed, capture overruns,
RSS over time (its drift after the first minute) and latency p50/p99 per slice of the run.

    python bench/soak.py --minutes 60 --report soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import soundfile
from httpx_sse import connect_sse

from vocalstream import audio

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "librosa-data"
PLAYLIST = (
    "Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
    "198-209-0000.ogg",
    "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
    "3436-172162-0000.ogg",
    "Kevin_MacLeod_-_Vibe_Ace.ogg",
    "5703-47212-0000.ogg",
)
RATE = 44100


def start_pulseaudio(runtime: Path) -> dict:
    """A PulseAudio server whose default source is the monitor of the null sink vmic."""
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    subprocess.run(
        [
            "pulseaudio", "-D", "-n", "--exit-idle-time=-1", "--disallow-exit",
            f"--log-target=file:{runtime}/pulse.log",
            "--load=module-native-protocol-unix auth-anonymous=1",
            "--load=module-null-sink sink_name=vmic rate=44100 channels=2 format=float32le "
            "norewinds=1",
        ],
        env=env,
        check=True,
    )  # fmt: skip
    for _ in range(100):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-sink", "vmic"], env=env, check=True)
    subprocess.run(["pactl", "set-default-source", "vmic.monitor"], env=env, check=True)
    return env


def write_playlist(path: Path) -> float:
    pieces = [audio.load(SHARED / name, RATE, 2) for name in PLAYLIST]
    gap = np.zeros((2, RATE), np.float32)
    joined = np.concatenate([part for piece in pieces for part in (piece, gap)], axis=1)
    soundfile.write(path, joined.T, RATE, subtype="FLOAT")
    return joined.shape[1] / RATE


def play_forever(playlist: Path, env: dict, stop: threading.Event) -> None:
    while not stop.is_set():
        player = subprocess.Popen(["paplay", "--device=vmic", str(playlist)], env=env)
        while player.poll() is None:
            if stop.wait(0.5):
                player.terminate()
        player.wait()


def read_events(url: str, events: list, stop: threading.Event) -> None:
    client = httpx.Client(timeout=httpx.Timeout(10, read=None))
    with client, connect_sse(client, "GET", url + "events") as source:
        for message in source.iter_sse():
            if not message.data:  # the stream's opening `retry:` field
                continue
            events.append((time.monotonic(), int(message.id), json.loads(message.data)))
            if stop.is_set():
                return


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--slices", type=int, default=6, help="latency slices in the report")
    parser.add_argument("--model", help="a model bundle (default: the bundled model)")
    parser.add_argument("--report", type=Path, help="write the report here as JSON")
    args = parser.parse_args()
    if shutil.which("pulseaudio") is None:
        sys.exit("pulseaudio is not installed (see the README's test command)")

    scratch = Path(tempfile.mkdtemp(prefix="vocalstream-soak-"))
    env = start_pulseaudio(scratch / "pulse")
    playlist = scratch / "playlist.wav"
    seconds = write_playlist(playlist)
    command = [
        f"{sys.prefix}/bin/vocalstream", "serve", "--input-device", "pulse", "--port", "0",
        *(["--model", args.model] if args.model else []),
    ]  # fmt: skip
    serve = subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    log_lines: list[str] = []
    url = None
    for line in serve.stderr:
        log_lines.append(line)
        if found := re.search(r"serving on (\S+/) ", line):
            url = found.group(1)
            break
    if url is None:
        sys.exit("serve did not start:\n" + "".join(log_lines))
    threading.Thread(target=lambda: log_lines.extend(serve.stderr), daemon=True).start()

    stop = threading.Event()
    events: list = []
    player = threading.Thread(target=play_forever, args=(playlist, env, stop), daemon=True)
    reader = threading.Thread(target=read_events, args=(url, events, stop), daemon=True)
    player.start()
    reader.start()
    process = psutil.Process(serve.pid)
    samples = []
    started = time.monotonic()
    end = started + 60 * args.minutes
    print(f"soak: {args.minutes:g} min, playlist {seconds:.0f} s, {url}", file=sys.stderr)
    while (now := time.monotonic()) < end:
        time.sleep(min(args.sample, end - now))
        text = httpx.get(url + "metrics", timeout=10).text
        samples.append(
            {
                "t_s": round(time.monotonic() - started, 1),
                "rss_mb": round(process.memory_info().rss / 2**20, 1),
                "windows": metric(text, "vocalstream_windows_total"),
                "dropped": metric(text, "vocalstream_dropped_windows_total"),
                "overruns": metric(text, "vocalstream_capture_overruns_total"),
            }
        )
        print(json.dumps(samples[-1]), file=sys.stderr)

    serve.send_signal(signal.SIGTERM)
    code = serve.wait(timeout=60)
    stop.set()
    reader.join(timeout=10)
    subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True)
    shutil.rmtree(scratch, ignore_errors=True)

    ids = [event_id for _, event_id, _ in events]
    latency = np.array([event["latency_ms"] for _, _, event in events])
    slices = np.array_split(np.arange(len(events)), args.slices) if events else []
    settled = [s for s in samples if s["t_s"] >= 60] or samples
    rss = [s["rss_mb"] for s in settled]
    report = {
        "minutes": args.minutes,
        "exit_code": code,
        "windows": ids[-1] if ids else 0,
        "events_received": len(events),
        "dropped": int(events[-1][2]["dropped"]) if events else None,
        "overruns": int(samples[-1]["overruns"]) if samples else None,
        "missed_by_client": (ids[-1] - ids[0] + 1 - len(ids)) if ids else None,
        "rss_mb_first": rss[0] if rss else None,
        "rss_mb_last": rss[-1] if rss else None,
        "rss_drift": round(max(abs(r / rss[0] - 1) for r in rss), 4) if rss else None,
        "latency_ms": {
            "p50": round(float(np.percentile(latency, 50)), 1) if len(latency) else None,
            "p99": round(float(np.percentile(latency, 99)), 1) if len(latency) else None,
            "slices": [
                {
                    "from_window": int(part[0]),
                    "p50": round(float(np.percentile(latency[part], 50)), 1),
                    "p99": round(float(np.percentile(latency[part], 99)), 1),
                }
                for part in slices
                if len(part)
            ],
        },
        "samples": samples,
    }
    text = json.dumps(report, indent=1)
    if args.report:
        args.report.write_text(text + "\n")
    print(text)
    return 0 if code == 0 and events else 1


if __name__ == "__main__":
    sys.exit(main())
