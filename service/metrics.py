"""Prometheus metrics of a running service: counters read from the capture and the hub when
scraped, and a histogram of window latency observed as windows are classified."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from vocalstream.service.capture import Capture
from vocalstream.service.hub import Hub
from vocalstream.stream.pipeline import Result
from vocalstream.version import __version__

# From the last sample a window needs to its result; a window is 3 s, so anything near that
# means the service is falling behind.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
TRANSPORTS = ("sse", "ws")


class ServiceMetrics(Collector):
    def __init__(self, capture: Capture, hub: Callable[[], Hub | None], provider: str):
        self.capture = capture
        self.hub = hub  # the hub exists once the server's loop runs
        self.provider = provider
        self.started = time.monotonic()
        self.last: Result | None = None
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "vocalstream_latency_seconds",
            "From the last sample a window needs to its classification.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(self)

    def observe(self, result: Result) -> None:
        self.latency.observe(result.latency_ms / 1e3)
        self.last = result

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator:
        health = self.capture.health
        hub = self.hub()
        yield InfoMetricFamily(
            "vocalstream", "Version and onnxruntime provider.",
            {"version": __version__, "provider": self.provider},
        )  # fmt: skip
        yield GaugeMetricFamily(
            "vocalstream_uptime_seconds", "Seconds since the service started.",
            time.monotonic() - self.started,
        )  # fmt: skip
        yield CounterMetricFamily("vocalstream_windows", "Windows classified.", health.windows)
        yield CounterMetricFamily(
            "vocalstream_dropped_windows",
            "Windows dropped because classification fell behind the input.",
            health.dropped,
        )
        yield CounterMetricFamily(
            "vocalstream_capture_overruns",
            "Capture blocks lost because they were not read in time.",
            health.overruns,
        )
        yield CounterMetricFamily(
            "vocalstream_device_reopened", "Times the capture device came back.", health.reopened
        )
        device = GaugeMetricFamily(
            "vocalstream_device_up",
            "1 while the input delivers audio, 0 while it is lost or not yet open.",
            labels=["device"],
        )
        device.add_metric([health.device or ""], float(health.device_up))
        yield device
        clients = GaugeMetricFamily(
            "vocalstream_clients", "Connected event clients.", labels=["transport"]
        )
        for transport in TRANSPORTS:
            clients.add_metric([transport], hub.count(transport) if hub else 0)
        yield clients
        yield CounterMetricFamily(
            "vocalstream_clients_dropped",
            "Event clients dropped because they fell behind.",
            hub.evicted if hub else 0,
        )
        if self.last is not None:
            probability = GaugeMetricFamily(
                "vocalstream_probability",
                "Each class's probability in the last window.",
                labels=["label"],
            )
            for label, value in zip(self.last.labels, self.last.probabilities, strict=True):
                probability.add_metric([label], float(value))
            yield probability
