"""Fan-out of events to any number of clients, none of which can hold the pipeline up.

The pipeline's thread publishes; everything else happens on the server's event loop. Each client
has a bounded queue: a client whose queue is full has fallen that many events behind (it stopped
reading, or reads too slowly), so it is dropped and counted instead of being waited for. The
last events are kept, so that a client can ask for what it missed (`since`, or SSE's
Last-Event-ID).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

log = logging.getLogger("vocalstream")


@dataclass(frozen=True)
class Event:
    id: int  # numbered from 1 in publishing order
    data: str  # one JSON object, listen's line


class Client:
    def __init__(self, transport: str, backlog: int, replay: list[Event]):
        self.transport = transport
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=backlog + len(replay))
        for event in replay:
            self.queue.put_nowait(event)
        self.evicted = asyncio.Event()  # dropped for falling behind

    def end(self) -> None:
        """No more events: the client's stream finishes after what is queued."""
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.queue.get_nowait()
            self.queue.put_nowait(None)

    async def events(self) -> AsyncIterator[Event]:
        while (event := await self.queue.get()) is not None:
            yield event


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop, backlog: int = 64, history: int = 600):
        self.loop = loop
        self.backlog = backlog
        self.clients: set[Client] = set()
        self.history: collections.deque[Event] = collections.deque(maxlen=history)
        self.published = 0
        self.evicted = 0
        self.closed = False

    def publish_threadsafe(self, data: str) -> None:
        self.loop.call_soon_threadsafe(self.publish, data)

    def publish(self, data: str) -> None:
        self.published += 1
        event = Event(self.published, data)
        self.history.append(event)
        for client in list(self.clients):
            try:
                client.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._evict(client)

    def subscribe(self, transport: str, since: int | None = None) -> Client:
        """A new client; with `since`, the kept events after that id come first."""
        replay = [event for event in self.history if since is not None and event.id > since]
        client = Client(transport, self.backlog, replay)
        if self.closed:
            client.end()
        else:
            self.clients.add(client)
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)

    def close(self) -> None:
        """Every client's stream ends after the events already published."""
        self.closed = True
        for client in self.clients:
            client.end()

    def count(self, transport: str) -> int:
        return sum(client.transport == transport for client in self.clients)

    def _evict(self, client: Client) -> None:
        self.clients.discard(client)
        self.evicted += 1
        client.evicted.set()
        log.warning(
            "dropped a %s client that fell %d events behind", client.transport, self.backlog
        )
