"""`vocalstream serve`: one capture-and-inference pipeline, its events served over HTTP.

The pipeline runs in the calling (main) thread, so that signal handlers can stop it; uvicorn runs
the HTTP side on its own event loop in a second thread. Stopping finishes the windows in flight,
delivers them to every client, ends the event streams, then closes the server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import threading
import time

import uvicorn

from vocalstream.errors import VocalstreamError
from vocalstream.files import LineLog
from vocalstream.service.app import build_app
from vocalstream.service.capture import Capture
from vocalstream.service.hub import Hub
from vocalstream.service.metrics import ServiceMetrics
from vocalstream.stream.pipeline import Result
from vocalstream.stream.timeline import window_event

log = logging.getLogger("vocalstream")
# Each connection's kernel send buffer (Linux doubles it): plenty for events of a few hundred
# bytes, and it bounds what a client that stops reading can hold, beside its queue and uvicorn's
# 64 KiB write buffer. Fixed, it also stops the kernel growing it to megabytes for such a client.
SEND_BUFFER_BYTES = 32 * 1024
DRAIN_SECONDS = 5.0  # at shutdown, how long clients get to receive the last events
GRACEFUL_SECONDS = 3  # then how long uvicorn waits for connections to close


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so that a taken port is a clear error before any
    audio is opened."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.create_server((host, port), family=family, backlog=256)
    except OSError as error:
        reason = error.strerror or error
        raise VocalstreamError(f"cannot listen on {host}:{port}: {reason}") from error
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)  # inherited
    return listener


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Service:
    def __init__(
        self,
        capture: Capture,
        provider: str,
        listener: socket.socket,
        backlog: int = 64,
        output: LineLog | None = None,
    ):
        self.capture = capture
        self.listener = listener
        self.backlog = backlog
        self.output = output
        self.hub: Hub | None = None
        self.metrics = ServiceMetrics(capture, lambda: self.hub, provider)
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def run(self) -> None:
        """Serve until the capture ends: stopped (`capture.stop()`), input ended, or lost."""
        http = threading.Thread(target=self._serve_http, name="vocalstream-http")
        http.start()
        self._ready.wait()
        if self._failure is not None:
            http.join()
            raise VocalstreamError(f"the HTTP server did not start: {self._failure}")
        log.info("serving on %s (events at /events and /ws)", self.url)
        try:
            self.capture.run(self._deliver)
        finally:
            self._shut_down(http)

    def _deliver(self, result: Result) -> None:
        line = json.dumps(window_event(result))
        if self.output is not None:
            self.output.write(line)
        self.metrics.observe(result)
        self.hub.publish_threadsafe(line)

    def _serve_http(self) -> None:
        async def main() -> None:
            self.hub = Hub(asyncio.get_running_loop(), self.backlog)
            config = uvicorn.Config(
                build_app(self.hub, self.capture, self.metrics),
                log_config=None,
                access_log=False,
                lifespan="off",
                ws="websockets-sansio",
                timeout_graceful_shutdown=GRACEFUL_SECONDS,
            )
            self._server = uvicorn.Server(config)
            self._ready.set()
            await self._server.serve(sockets=[self.listener])

        try:
            asyncio.run(main())
        except BaseException as error:
            self._failure = error
            log.error("the HTTP server failed: %s", error)
        finally:
            self._ready.set()

    def _shut_down(self, http: threading.Thread) -> None:
        if self.hub is not None and self._server is not None:
            loop = self.hub.loop
            loop.call_soon_threadsafe(self.hub.close)
            deadline = time.monotonic() + DRAIN_SECONDS
            while self.hub.clients and time.monotonic() < deadline:
                time.sleep(0.05)
            self._server.should_exit = True
        http.join()
        self.listener.close()
