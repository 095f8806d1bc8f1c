"""The soak benchmark, short: bench/soak.py runs `vocalstream serve` on the virtual microphone
for 2 minutes of real audio with an SSE client attached (the 60-minute run is in the docs)."""

import json
import subprocess
import sys

from conftest import REPO


def test_two_minutes_of_serve_drop_nothing_and_hold_memory_flat(cache_env, tmp_path):
    report_path = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "soak.py"),
            "--minutes", "2",
            "--sample", "10",
            "--slices", "2",
            "--report", str(report_path),
        ],
        capture_output=True,
        text=True,
        env=cache_env,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert report["exit_code"] == 0
    assert report["dropped"] == 0 and report["missed_by_client"] == 0 and report["overruns"] == 0
    assert 110 <= report["events_received"] <= 125, report["events_received"]  # a window a second
    assert report["rss_drift"] < 0.05, report["samples"]
    assert all(part["p99"] < 1500 for part in report["latency_ms"]["slices"]), report["latency_ms"]
