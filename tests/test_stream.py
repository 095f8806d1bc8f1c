"""`vocalstream file` and `vocalstream listen` end to end: real audio, a real model bundle, a
real (virtual) microphone, real processes."""

import csv
import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import ORCHESTRA, REPO, SPEECH, shared

from vocalstream import audio

SAMPLE = REPO / "samples" / "example.mp3"  # 10.9 s


def run(*args, env, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [f"{sys.prefix}/bin/vocalstream", *map(str, args)],
        input=stdin,
        capture_output=True,
        env=env,
    )


def test_file_json_timeline_of_the_sample(trained_bundle, cache_env):
    done = run("file", SAMPLE, "--model", trained_bundle, "--windows", env=cache_env)
    assert done.returncode == 0, done.stderr.decode()
    (result,) = json.loads(done.stdout)["files"]
    assert result["duration"] == pytest.approx(10.88, abs=0.05)
    # The default hop is 1 s: windows start every second, the last one runs past the end.
    assert [w["t0"] for w in result["windows"]] == [float(t) for t in range(9)]
    assert [w["padded"] for w in result["windows"]] == [False] * 8 + [True]
    segments = result["segments"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == result["duration"]
    assert all(a["end"] == b["start"] for a, b in zip(segments, segments[1:], strict=False))
    for window in result["windows"]:
        assert sum(window["probs"].values()) == pytest.approx(1.0, abs=1e-3)


def test_stdout_carries_only_the_output_on_a_fresh_cache(trained_bundle, tmp_path):
    """The first run builds the separator; its messages go to standard error, so every line of
    standard output still parses. -v adds the provider and timings there, -q silences it."""
    fresh = {**os.environ, "VOCALSTREAM_CACHE": str(tmp_path / "fresh")}
    done = run("file", SAMPLE, "--model", trained_bundle, "-f", "json", "-v", env=fresh)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["files"][0]["segments"]
    stderr = done.stderr.decode()
    assert "building the ONNX separator" in stderr
    assert "CPUExecutionProvider" in stderr and "real time" in stderr
    pcm = audio.load(SAMPLE, 44100, 2).T.astype("<f4").tobytes()
    fresh["VOCALSTREAM_CACHE"] = str(tmp_path / "fresh-listen")
    listened = run("listen", "-", "--model", trained_bundle, "-q", env=fresh, stdin=pcm)
    assert listened.returncode == 0, listened.stderr.decode()
    lines = listened.stdout.decode().splitlines()
    assert lines and all(json.loads(line)["label"] for line in lines)
    assert "CUDA" not in listened.stderr.decode()  # no warning about CUDA on every run
    quiet = run("file", SAMPLE, "--model", trained_bundle, "-q", env=fresh)
    assert quiet.returncode == 0 and quiet.stderr == b""


@pytest.mark.parametrize("output_format", ["jsonl", "csv", "rttm", "textgrid"])
def test_file_formats(trained_bundle, cache_env, tmp_path, output_format):
    output = tmp_path / f"out.{output_format}"
    done = run(
        "file", SAMPLE, "--model", trained_bundle, "-f", output_format, "-o", output, env=cache_env
    )
    assert done.returncode == 0 and done.stdout == b"", done.stderr.decode()
    text = output.read_text()
    if output_format == "jsonl":
        assert all(json.loads(line)["file"] == str(SAMPLE) for line in text.splitlines())
    elif output_format == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows and float(rows[-1]["end"]) == pytest.approx(10.88, abs=0.05)
    elif output_format == "rttm":
        assert all(line.startswith("SPEAKER example 1 ") for line in text.splitlines())
    else:
        assert text.startswith('File type = "ooTextFile"') and 'name = "voices"' in text


def test_many_files_one_model_and_raw_pcm(trained_bundle, cache_env, tmp_path):
    speech = tmp_path / "speech.flac"
    sf.write(speech, audio.load(shared(SPEECH), 16000, 1)[0], 16000)
    done = run("file", SAMPLE, speech, "--model", trained_bundle, "--hop", "1.5", env=cache_env)
    assert done.returncode == 0, done.stderr.decode()
    paths = [f["path"] for f in json.loads(done.stdout)["files"]]
    assert paths == [str(SAMPLE), str(speech)]
    # The same song as raw 16-bit PCM on standard input gives the same timeline.
    pcm = (audio.load(SAMPLE, 44100, 2).T * 32767).astype("<i2").tobytes()
    piped = run(
        "file",
        "-",
        "--model",
        trained_bundle,
        "--input-format",
        "s16le",
        "-f",
        "csv",
        env=cache_env,
        stdin=pcm,
    )
    direct = run("file", SAMPLE, "--model", trained_bundle, "-f", "csv", env=cache_env)
    assert piped.returncode == 0, piped.stderr.decode()
    assert (
        piped.stdout.decode().split("\n")[1].split(",")[1:4]
        == (direct.stdout.decode().split("\n")[1].split(",")[1:4])
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["file", "{tmp}/absent.mp3"], "no such file"),
        (["file", "{tmp}/noise.mp3"], "not a readable audio file"),
        (["file", str(SAMPLE), "--model", "{tmp}"], "not a model bundle"),
        (["file", str(SAMPLE), "-f", "rttm", "--windows"], "segments only"),
        (["file", str(SAMPLE), "--hop", "0"], "--hop"),
        (["listen", "--hop", "5"], "--hop"),
        (["listen", str(SAMPLE)], "for files use vocalstream file"),
        (["file", "-"], "standard input: no audio"),
        (["listen", "-"], "standard input: no audio"),
    ],
)
def test_bad_input_is_one_clear_line(trained_bundle, cache_env, tmp_path, arguments, message):
    (tmp_path / "noise.mp3").write_bytes(np.random.default_rng(0).bytes(4000))
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    if "--model" not in arguments:
        arguments += ["--model", str(trained_bundle)]
    done = run(*arguments, env=cache_env)
    errors = [line for line in done.stderr.decode().splitlines() if line.startswith("Error:")]
    assert done.returncode == 1 and len(errors) == 1 and message in errors[0], done.stderr
    assert b"Traceback" not in done.stderr and done.stdout == b""


def test_listen_drops_the_oldest_windows_when_input_outruns_inference(trained_bundle, cache_env):
    """Piped PCM arrives far faster than real time: a live listener keeps up by dropping the
    oldest windows, counts every one, and never holds more than a few."""
    pcm = audio.load(SAMPLE, 44100, 2).T.astype("<f4").tobytes()
    done = run("listen", "-", "--model", trained_bundle, "--hop", "1", env=cache_env, stdin=pcm)
    assert done.returncode == 0, done.stderr.decode()
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    health = json.loads(done.stderr.decode().strip().splitlines()[-1])["health"]
    starts = [line["t0"] for line in lines]
    assert starts == sorted(starts) and starts[-1] == 8.0 and lines[-1]["padded"]
    assert health["windows"] == len(lines) and health["windows"] + health["dropped"] == 9
    dropped = [line["dropped"] for line in lines]
    assert dropped == sorted(dropped) and dropped[-1] == health["dropped"]
    assert health["provider"] == "CPUExecutionProvider"


def test_listen_on_a_real_microphone_in_real_time(
    trained_bundle, cache_env, virtual_microphone, tmp_path
):
    """Music, then a voice, played into the virtual microphone while listen runs."""
    probe = tmp_path / "probe.wav"
    music = audio.load(shared(ORCHESTRA), 44100, 2)[:, : 5 * 44100]
    voice = audio.load(shared(SPEECH), 44100, 2)[:, : 5 * 44100]
    sf.write(probe, np.concatenate([music, voice], axis=1).T, 44100, subtype="FLOAT")
    env = {**cache_env, **virtual_microphone}
    listener = subprocess.Popen(
        [
            f"{sys.prefix}/bin/vocalstream",
            "listen",
            "--model",
            str(trained_bundle),
            "--hop",
            "1",
            "--duration",
            "9",
            "--device",
            "pulse",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    player = subprocess.Popen(["paplay", "--device=vmic", str(probe)], env=env)
    arrivals = []
    for line in listener.stdout:
        arrivals.append((time.monotonic(), json.loads(line)))
    listener.wait(timeout=60)
    player.wait(timeout=60)
    stderr = listener.stderr.read()
    assert listener.returncode == 0, stderr
    events = [event for _, event in arrivals]
    assert [e["t0"] for e in events] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert all(e["dropped"] == 0 for e in events)
    # Lines arrive as the audio does: arrival minus the window's end is the same for every line.
    offsets = [arrived - event["t1"] for arrived, event in arrivals]
    assert max(offsets) - min(offsets) < 0.5, offsets
    health = json.loads(stderr.strip().splitlines()[-1])["health"]
    assert health["dropped"] == 0 and health["windows"] == 7


def start_listening(bundle, env) -> subprocess.Popen:
    return subprocess.Popen(
        [
            f"{sys.prefix}/bin/vocalstream",
            "listen",
            "--model",
            str(bundle),
            "--hop",
            "1",
            "--device",
            "pulse",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_listen_stops_cleanly_on_a_signal(
    trained_bundle, cache_env, virtual_microphone, signal_name
):
    import signal

    listener = start_listening(trained_bundle, {**cache_env, **virtual_microphone})
    first = json.loads(listener.stdout.readline())
    listener.send_signal(getattr(signal, signal_name))
    rest, stderr = listener.communicate(timeout=30)
    assert listener.returncode == 0, stderr
    lines = [first, *(json.loads(line) for line in rest.splitlines())]  # every line is whole
    health = json.loads(stderr.strip().splitlines()[-1])["health"]
    assert health["windows"] == len(lines) and "Traceback" not in stderr


def test_a_microphone_that_disappears_is_a_clear_error(
    trained_bundle, cache_env, virtual_microphone
):
    listener = start_listening(trained_bundle, {**cache_env, **virtual_microphone})
    json.loads(listener.stdout.readline())
    subprocess.run(["pulseaudio", "--kill"], env=virtual_microphone, check=True)
    _, stderr = listener.communicate(timeout=30)
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert listener.returncode == 1 and len(errors) == 1, stderr
    assert "stopped delivering audio" in errors[0] and "Traceback" not in stderr


def test_listen_reopens_its_output_on_sighup(
    trained_bundle, cache_env, virtual_microphone, tmp_path
):
    import signal

    log = tmp_path / "events.jsonl"
    listener = subprocess.Popen(
        [
            f"{sys.prefix}/bin/vocalstream", "listen", "--model", str(trained_bundle),
            "--device", "pulse", "--output", str(log),
        ],
        stderr=subprocess.PIPE,
        env={**cache_env, **virtual_microphone},
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    log.rename(tmp_path / "events.jsonl.1")
    listener.send_signal(signal.SIGHUP)
    while not (log.exists() and log.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    listener.send_signal(signal.SIGTERM)
    _, stderr = listener.communicate(timeout=30)
    assert listener.returncode == 0, stderr
    lines = (tmp_path / "events.jsonl.1").read_text().splitlines() + log.read_text().splitlines()
    starts = [json.loads(line)["t0"] for line in lines]
    assert starts == [float(n) for n in range(len(starts))] and len(starts) >= 4
    assert json.loads(stderr.strip().splitlines()[-1])["health"]["windows"] == len(starts)
