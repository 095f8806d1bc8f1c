"""`vocalstream serve` with real parts: the PulseAudio virtual microphone (or raw PCM on standard
input), a real uvicorn server on loopback, real HTTP, SSE and WebSocket clients, Prometheus's own
parser, and headless Chromium for the live page."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
from conftest import ORCHESTRA, SPEECH, shared, start_pulseaudio
from prometheus_client.parser import text_string_to_metric_families

from vocalstream import audio
from vocalstream.service.hub import Hub

# --- the hub alone, on a real event loop ---------------------------------------------------


def test_a_client_that_stops_reading_is_dropped_and_the_others_get_everything():
    async def scenario():
        hub = Hub(asyncio.get_running_loop(), backlog=4)
        reader, stalled = hub.subscribe("sse"), hub.subscribe("ws")
        received = []

        async def read():
            async for event in reader.events():
                received.append(event.id)

        task = asyncio.create_task(read())
        for number in range(20):
            hub.publish(json.dumps({"n": number}))
            await asyncio.sleep(0)
        hub.close()
        await asyncio.wait_for(task, 5)
        return hub, stalled, received

    hub, stalled, received = asyncio.run(scenario())
    assert received == list(range(1, 21))
    assert stalled.evicted.is_set() and hub.evicted == 1 and hub.count("ws") == 0


def test_a_late_client_gets_what_it_missed_since_an_id():
    async def scenario():
        hub = Hub(asyncio.get_running_loop(), backlog=2, history=5)
        for number in range(8):
            hub.publish(str(number))
        late = hub.subscribe("sse", since=5)
        fresh = hub.subscribe("sse")
        hub.publish("8")
        hub.close()
        return [e.data async for e in late.events()], [e.data async for e in fresh.events()]

    late, fresh = asyncio.run(scenario())
    assert late == ["5", "6", "7", "8"] and fresh == ["8"]


# --- the service, end to end ----------------------------------------------------------------


class Served:
    """A running `vocalstream serve` and its URL; stderr is collected as it comes."""

    def __init__(self, arguments, env, stdin=None):
        self.process = subprocess.Popen(
            [f"{sys.prefix}/bin/vocalstream", "serve", "--port", "0", *map(str, arguments)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.stderr: list[str] = []
        self.url = None
        for line in self.process.stderr:
            self.stderr.append(line)
            if found := re.search(r"serving on (\S+/) ", line):
                self.url = found.group(1)
                break
        assert self.url, "".join(self.stderr)
        self._drain = threading.Thread(
            target=lambda: self.stderr.extend(self.process.stderr), daemon=True
        )
        self._drain.start()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def health(self) -> dict:
        return self.get("healthz").json()

    def wait_for(self, condition, timeout=30.0, what="a condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}: {self.health()}")

    def stop(self, number=signal.SIGTERM) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(number)
        code = self.process.wait(timeout=60)
        self._drain.join(timeout=10)
        return code, "".join(self.stderr)


def stalled_client(url: str, websocket: bool = False) -> socket.socket:
    """A client that asks for events (SSE, or a WebSocket) and never reads them, with a small
    receive buffer."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, port))
    upgrade = (
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dm9jYWxzdHJlYW0gdGVzdA==\r\n"
    )
    path = b"/ws" if websocket else b"/events"
    stalled.sendall(
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + (upgrade if websocket else b"") + b"\r\n"
    )
    return stalled


def write_all(descriptor: int, data: bytes) -> None:
    with os.fdopen(descriptor, "wb") as pipe:
        pipe.write(data)


def sse_events(lines) -> list[tuple[int, str]]:
    """(id, data) of each event in an SSE body's lines."""
    events, event_id = [], None
    for line in lines:
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            events.append((event_id, line[6:]))
    return events


def test_hundred_sse_clients_and_one_that_never_reads_leave_the_pipeline_alone(
    trained_bundle, cache_env, virtual_microphone
):
    served = Served(
        ["--model", trained_bundle, "--input-device", "pulse", "--hop", "1"],
        {**cache_env, **virtual_microphone},
    )
    try:
        stalled = stalled_client(served.url)

        async def client(http: httpx.AsyncClient, until: int) -> list[tuple[int, str]]:
            lines = []
            async with http.stream("GET", served.url + "events?since=0") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line.startswith("data: ") and lines[-2] == f"id: {until}":
                        break
            return sse_events(lines)

        async def hundred(until: int):
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(timeout=60, limits=limits) as http:
                return await asyncio.gather(*(client(http, until) for _ in range(100)))

        served.wait_for(lambda: served.health()["windows"] >= 2, what="two windows")
        until = served.health()["windows"] + 6
        results = asyncio.run(hundred(until))
        health = served.health()
    finally:
        code, stderr = served.stop()
    expected = [event_id for event_id, _ in results[0]]
    assert expected == list(range(1, until + 1)), expected
    assert all(result == results[0] for result in results)  # same events, same bytes, in order
    events = [json.loads(data) for _, data in results[0]]
    assert [e["t0"] for e in events] == [float(n) for n in range(until)]
    assert all(e["dropped"] == 0 for e in events) and health["dropped"] == 0
    assert max(e["latency_ms"] for e in events) < 1500, [e["latency_ms"] for e in events]
    assert health["status"] == "ok" and health["clients"] >= 1  # the stalled one is still on
    assert code == 0, stderr
    final = json.loads(stderr.strip().splitlines()[-1])["health"]
    assert final["windows"] >= until and final["dropped"] == 0
    stalled.close()


def test_websocket_health_and_metrics(trained_bundle, cache_env, virtual_microphone):
    import websockets.sync.client

    served = Served(
        ["--model", trained_bundle, "--input-device", "pulse"], {**cache_env, **virtual_microphone}
    )
    try:
        served.wait_for(lambda: served.health()["windows"] >= 3, what="three windows")
        with websockets.sync.client.connect(served.url.replace("http", "ws") + "ws?since=0") as ws:
            pushed = [ws.recv(timeout=10) for _ in range(3)]
        with httpx.stream("GET", served.url + "events?since=0", timeout=10) as response:
            lines = []
            for line in response.iter_lines():
                lines.append(line)
                if line.startswith("data: ") and len(sse_events(lines)) == 3:
                    break
        assert [data for _, data in sse_events(lines)] == pushed
        health = served.get("healthz")
        metrics = served.get("metrics")
        page = served.get("")
    finally:
        code, stderr = served.stop(signal.SIGINT)
    assert code == 0, stderr
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["device"] and health.json()["provider"] == "CPUExecutionProvider"
    families = {family.name: family for family in text_string_to_metric_families(metrics.text)}
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    assert samples[("vocalstream_windows_total", ())] >= 3
    assert samples[("vocalstream_dropped_windows_total", ())] == 0
    assert samples[("vocalstream_latency_seconds_count", ())] >= 3
    (info,) = [s for f in families.values() for s in f.samples if s.name == "vocalstream_info"]
    assert info.labels["provider"] == "CPUExecutionProvider" and info.value == 1
    device_up = [v for (name, _), v in samples.items() if name == "vocalstream_device_up"]
    assert device_up == [1.0]
    assert page.status_code == 200 and 'EventSource("events?since=0")' in page.text


def test_a_lost_device_degrades_health_and_serving_resumes_when_it_returns(
    trained_bundle, cache_env, tmp_path
):
    runtime = tmp_path / "pulse"
    microphone = start_pulseaudio(runtime)
    served = Served(
        ["--model", trained_bundle, "--input-device", "pulse"], {**cache_env, **microphone}
    )
    try:
        served.wait_for(lambda: served.health()["windows"] >= 2, what="two windows")
        subprocess.run(["pulseaudio", "--kill"], env=microphone, check=True)
        served.wait_for(lambda: served.health()["status"] == "degraded", what="degraded")
        lost = served.get("healthz")
        before = served.health()["windows"]
        start_pulseaudio(runtime)
        served.wait_for(lambda: served.health()["windows"] >= before + 2, what="windows again")
        back = served.health()
        with httpx.stream("GET", served.url + "events?since=0", timeout=10) as response:
            lines = []
            for line in response.iter_lines():
                lines.append(line)
                if len(sse_events(lines)) == before + 2:
                    break
    finally:
        code, stderr = served.stop()
        subprocess.run(["pulseaudio", "--kill"], env=microphone, capture_output=True)
    assert lost.status_code == 503 and "stopped delivering audio" in lost.json()["reason"]
    assert back["status"] == "ok" and back["reopened"] == 1
    starts = [json.loads(data)["t0"] for _, data in sse_events(lines)]
    assert starts == sorted(starts) and starts[before] > starts[before - 1] + 1  # the gap shows
    assert code == 0 and "Traceback" not in stderr, stderr


def test_on_device_loss_exit_is_one_error_line(trained_bundle, cache_env, virtual_microphone):
    served = Served(
        ["--model", trained_bundle, "--input-device", "pulse", "--on-device-loss", "exit"],
        {**cache_env, **virtual_microphone},
    )
    served.wait_for(lambda: served.health()["windows"] >= 1, what="a window")
    subprocess.run(["pulseaudio", "--kill"], env=virtual_microphone, check=True)
    code, stderr = served.stop()
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert code == 1 and len(errors) == 1 and "stopped delivering audio" in errors[0], stderr
    assert "Traceback" not in stderr


def test_sighup_reopens_the_output_and_sigterm_delivers_the_last_windows(
    trained_bundle, cache_env, virtual_microphone, tmp_path
):
    log = tmp_path / "events.jsonl"
    served = Served(
        ["--model", trained_bundle, "--input-device", "pulse", "--output", log],
        {**cache_env, **virtual_microphone},
    )
    lines = []

    def read_to_the_end():
        with httpx.stream("GET", served.url + "events?since=0", timeout=60) as response:
            lines.extend(response.iter_lines())

    reader = threading.Thread(target=read_to_the_end)
    reader.start()
    try:
        served.wait_for(lambda: served.health()["windows"] >= 2, what="two windows")
        log.rename(tmp_path / "events.jsonl.1")
        served.process.send_signal(signal.SIGHUP)
        served.wait_for(lambda: log.exists() and log.read_text().count("\n") >= 2, what="a new log")
    finally:
        code, stderr = served.stop()
        reader.join(timeout=30)
    assert code == 0, stderr
    old = [json.loads(line) for line in (tmp_path / "events.jsonl.1").read_text().splitlines()]
    new = [json.loads(line) for line in log.read_text().splitlines()]
    starts = [event["t0"] for event in old + new]
    assert starts == [float(n) for n in range(len(starts))]  # nothing lost, nothing twice
    # The stream ended by itself, after the last window the service classified.
    final = json.loads(stderr.strip().splitlines()[-1])["health"]
    assert not reader.is_alive()
    assert [event_id for event_id, _ in sse_events(lines)] == list(range(1, final["windows"] + 1))
    assert final["windows"] == len(starts)


def test_a_client_that_falls_behind_is_dropped_and_counted(trained_bundle, cache_env, tmp_path):
    """Raw PCM as fast as it can be read: events come far faster than real time. Clients that
    never read (SSE and WebSocket) are dropped; one that reads gets every event."""
    music = audio.load(shared(ORCHESTRA), 44100, 2)
    pcm = np.tile(music, 16).T.astype("<f4").tobytes()
    reading, writing = os.pipe()
    served = Served(
        ["-", "--model", trained_bundle, "--hop", "0.25", "--client-backlog", "8"],
        cache_env,
        stdin=reading,
    )
    os.close(reading)
    stalled = [stalled_client(served.url), stalled_client(served.url, websocket=True)]
    served.wait_for(lambda: served.health()["clients"] == 2, what="the stalled clients")
    lines = []
    with httpx.stream("GET", served.url + "events", timeout=60) as response:
        writer = threading.Thread(target=write_all, args=(writing, pcm))
        writer.start()
        lines = list(response.iter_lines())  # the stream ends when the input does
    writer.join()
    code, stderr = served.stop()
    for client in stalled:
        client.close()
    assert code == 0, stderr
    ids = [event_id for event_id, _ in sse_events(lines)]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) > 100
    final = json.loads(stderr.strip().splitlines()[-1])["health"]
    assert final["clients_dropped"] == 2 and final["windows"] == len(ids), stderr
    assert "dropped a sse client that fell 8 events behind" in stderr
    assert "dropped a ws client that fell 8 events behind" in stderr


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--port", "{port}"], "cannot listen on 127.0.0.1:{port}"),
        (["--model", "/nonexistent/bundle"], "/nonexistent/bundle"),
        (["song.mp3"], "for files use vocalstream file"),
        (["--hop", "5"], "--hop must lie in"),
    ],
)
def test_bad_arguments_are_one_clear_line(cache_env, arguments, message):
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    arguments = [argument.format(port=port) for argument in arguments]
    done = subprocess.run(
        [f"{sys.prefix}/bin/vocalstream", "serve", *arguments],
        capture_output=True,
        text=True,
        env=cache_env,
        timeout=60,
    )
    taken.close()
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert done.returncode != 0 and len(errors) == 1, done.stderr
    assert message.format(port=port) in errors[0] and done.stdout == ""


def test_the_live_page_in_a_real_browser_follows_music_then_voice(
    cache_env, virtual_microphone, tmp_path
):
    """The shipped model behind the page; orchestra, then a woman reading, into the microphone.
    Headless Chromium must show no_voice, then female, and paint both as bands."""
    from playwright.sync_api import sync_playwright

    probe = tmp_path / "probe.wav"
    music = audio.load(shared(ORCHESTRA), 44100, 2)[:, : 8 * 44100]
    voice = audio.load(shared(SPEECH), 44100, 2)[:, : 10 * 44100]
    sf.write(probe, np.concatenate([music, voice], axis=1).T, 44100, subtype="FLOAT")
    env = {**cache_env, **virtual_microphone}
    served = Served(["--input-device", "pulse"], env)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(served.url)
            page.wait_for_function("Number(document.body.dataset.events) >= 1", timeout=30_000)
            page.evaluate(
                """() => { window.seen = [];
                new MutationObserver(() => window.seen.push(document.body.dataset.label))
                  .observe(document.body, {attributes: true, attributeFilter: ["data-label"]}); }"""
            )
            player = subprocess.Popen(["paplay", "--device=vmic", str(probe)], env=env)
            player.wait(timeout=60)
            page.wait_for_timeout(2000)
            seen = page.evaluate("window.seen")
            colours = page.evaluate(
                """() => { const c = document.getElementById("bands");
                const d = c.getContext("2d").getImageData(0, 0, c.width, 1).data;
                const found = new Set();
                for (let i = 0; i < d.length; i += 4)
                  if (d[i + 3]) found.add(d[i] + "," + d[i + 1] + "," + d[i + 2]);
                return [...found]; }"""
            )  # fmt: skip
            page.screenshot(path=tmp_path / "page.png")
            browser.close()
    finally:
        code, stderr = served.stop()
    assert code == 0, stderr
    assert "no_voice" in seen and "female" in seen, seen
    assert seen.index("female") > seen.index("no_voice"), seen
    assert {"107,114,128", "219,39,119"} <= set(colours), colours  # no_voice grey, female pink
    assert (tmp_path / "page.png").stat().st_size > 10_000


def chromium() -> str:
    import shutil

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: run the README's test command, which installs it")
    return path
