"""The HTTP face of a running service (starlette): the live page, the event streams, health and
metrics. Every route reads shared state; none can block the pipeline, which only publishes."""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
import time
from collections.abc import Awaitable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from vocalstream.service.capture import Capture
from vocalstream.service.hub import Client, Hub
from vocalstream.service.metrics import ServiceMetrics

HEARTBEAT_SECONDS = 15.0  # an SSE comment when no event came for this long keeps proxies open
RECONNECT_MS = 2000  # what EventSource waits before reconnecting


class _DroppedResponseFilter(logging.Filter):
    """A client dropped mid-response is logged by the hub; uvicorn's own error about the
    unfinished response would only repeat it, as an alarm."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DroppedResponseFilter())


def _since(request: Request | WebSocket) -> int | None:
    value = request.query_params.get("since", request.headers.get("last-event-id"))
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


async def _until_first(*awaitables: Awaitable) -> None:
    """Run them together until one finishes; cancel the others."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class EventStream:
    """text/event-stream of one hub client (an ASGI response): each event is `id:` and `data:`
    (listen's JSON line). Ends when the service stops, the client goes away, or it is dropped
    for falling behind."""

    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
    ]

    def __init__(self, hub: Hub, client: Client):
        self.hub, self.client = hub, client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def body(text: str, more: bool = True) -> None:
            await send({"type": "http.response.body", "body": text.encode(), "more_body": more})

        async def pump() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            await body(f"retry: {RECONNECT_MS}\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(self.client.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    await body(": keep-alive\n\n")
                    continue
                if event is None:
                    break
                await body(f"id: {event.id}\ndata: {event.data}\n\n")
            await body("", more=False)

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        try:
            await _until_first(pump(), disconnected(), self.client.evicted.wait())
        finally:
            self.hub.unsubscribe(self.client)


def build_app(hub: Hub, capture: Capture, metrics: ServiceMetrics) -> Starlette:
    page = (importlib.resources.files("vocalstream.service") / "page.html").read_text()

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers={"cache-control": "no-store"})

    async def events(request: Request) -> EventStream:
        return EventStream(hub, hub.subscribe("sse", _since(request)))

    async def websocket(socket: WebSocket) -> None:
        await socket.accept()
        client = hub.subscribe("ws", _since(socket))

        async def pump() -> None:
            async for event in client.events():
                await socket.send_text(event.data)
            await socket.close()

        async def disconnected() -> None:
            try:
                while True:
                    await socket.receive_text()
            except WebSocketDisconnect:
                pass

        try:
            await _until_first(pump(), disconnected(), client.evicted.wait())
        finally:
            hub.unsubscribe(client)

    async def healthz(request: Request) -> Response:
        health = capture.health
        body = {
            "status": health.status,
            "reason": health.reason,
            "uptime_s": round(time.monotonic() - metrics.started, 1),
            "windows": health.windows,
            "dropped": health.dropped,
            "overruns": health.overruns,
            "device": health.device,
            "reopened": health.reopened,
            "clients": len(hub.clients),
            "clients_dropped": hub.evicted,
            "provider": metrics.provider,
        }
        return JSONResponse(body, status_code=200 if health.status == "ok" else 503)

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return Starlette(
        routes=[
            Route("/", index),
            Route("/events", events),
            WebSocketRoute("/ws", websocket),
            Route("/healthz", healthz),
            Route("/metrics", prometheus),
        ]
    )
