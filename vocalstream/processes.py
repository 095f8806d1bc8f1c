"""Work spread over spawned worker processes, results yielded as each completes.

Workers ignore Ctrl-C (the driver's to handle) and log at the driver's level; on any exit the
items not yet started are dropped, and a worker that dies becomes one clear error."""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from vocalstream.errors import VocalstreamError

log = logging.getLogger("vocalstream")


def _start(start: Callable, arguments: tuple, level: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(format="%(message)s")
    log.setLevel(level)
    start(*arguments)


def in_processes(
    work: Callable,
    items: Iterable,
    jobs: int,
    start: Callable,
    arguments: tuple,
    when_died: str,
) -> Iterator:
    """work(item) for each item in `jobs` processes, each first running start(*arguments);
    `when_died` is the error's message should a worker die (out of memory, killed)."""
    pool = ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(start, arguments, log.getEffectiveLevel()),
    )
    try:
        futures = [pool.submit(work, item) for item in items]
        for future in as_completed(futures):
            yield future.result()
    except BrokenProcessPool as error:
        raise VocalstreamError(when_died) from error
    finally:
        # Items not yet started are dropped; those running finish first (seconds each).
        pool.shutdown(cancel_futures=True)
