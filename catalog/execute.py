"""The driver of a batch: it alone writes the results file, one line per file as each
completes (in order of completion), while workers analyse: this process (--jobs 1), worker
processes (--jobs N), or actors on a Ray cluster (--ray). Every worker holds one model."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from vocalstream.catalog.inputs import audio_files
from vocalstream.catalog.journal import appender, read_records
from vocalstream.catalog.summary import write_summary
from vocalstream.catalog.worker import Analyser, Settings, identity
from vocalstream.errors import VocalstreamError
from vocalstream.inference.bundle import resolve_bundle
from vocalstream.inference.device import cores
from vocalstream.processes import in_processes

log = logging.getLogger("vocalstream")


def _in_this_process(paths: list[str], settings: Settings) -> Iterator[dict]:
    analyser = Analyser(settings)
    for path in paths:
        yield analyser.record(path)


_worker: Analyser | None = None  # the Analyser of a worker process


def _start_worker(settings: Settings) -> None:
    global _worker
    _worker = Analyser(settings)


def _record_in_worker(path: str) -> dict:
    return _worker.record(path)


def _in_processes(paths: list[str], settings: Settings, jobs: int) -> Iterator[dict]:
    # Workers ignore Ctrl-C and their unfinished results are simply not written.
    return in_processes(
        _record_in_worker,
        paths,
        jobs,
        _start_worker,
        (settings,),
        "a worker process died (out of memory?); --resume goes on from here",
    )


def _check_reachable(address: str) -> None:
    """Ray retries an address where nothing listens for minutes; a HOST:PORT fails here at once."""
    host, _, port = address.rpartition(":")
    if not host or "://" in address or not port.isdigit():
        return  # "auto", or a ray:// client address: Ray's own errors are quick
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise VocalstreamError(f"cannot join the Ray cluster at {address}: {reason}") from error


def _on_ray(paths: list[str], settings: Settings, address: str, jobs: int | None):
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as error:
        raise VocalstreamError("--ray needs Ray: pip install 'vocalstream[ray]'") from error
    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        message = " ".join(str(error).split())
        raise VocalstreamError(f"cannot join the Ray cluster at {address}: {message}") from error
    try:
        workers = jobs or max(1, int(ray.cluster_resources().get("CPU", 1)) // settings.threads)
        workers = min(workers, len(paths))
        # An actor without a GPU of its own sees none (Ray hides them), so CUDA asks for one.
        actor = ray.remote(Analyser).options(
            num_cpus=settings.threads, num_gpus=1 if settings.compute == "cuda" else 0
        )
        pool = ActorPool([actor.remote(settings) for _ in range(workers)])
        log.debug("Ray: %d actors of %d threads", workers, settings.threads)
        try:
            yield from pool.map_unordered(lambda worker, path: worker.record.remote(path), paths)
        except ray.exceptions.RayError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, VocalstreamError):  # a model or device error in an actor
                raise cause from None
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            message = f"a Ray worker failed ({type(error).__name__}: {first_line})"
            raise VocalstreamError(f"{message}; --resume goes on from here") from error
    finally:
        ray.shutdown()


def _records(
    paths: list[str], settings: Settings, jobs: int | None, ray_address: str | None
) -> Iterator[dict]:
    if ray_address:
        return _on_ray(paths, replace(settings, threads=settings.threads or 1), ray_address, jobs)
    jobs = min(jobs or 1, len(paths))
    threads = settings.threads or max(1, cores() // jobs)
    if jobs == 1:
        return _in_this_process(paths, replace(settings, threads=threads))
    return _in_processes(paths, replace(settings, threads=threads), jobs)


def _unchanged(record: dict) -> bool:
    """A success whose file still has the size and mtime it had when analysed."""
    return "error" not in record and identity(record["path"]) == {
        "size": record.get("size"),
        "mtime": record.get("mtime"),
    }


def run_batch(
    inputs: list[str],
    results: Path,
    settings: Settings,
    resume: bool = False,
    jobs: int | None = None,
    ray_address: str | None = None,
    summary: Path | None = None,
    progress: bool = False,
) -> tuple[int, int]:
    """Analyse every audio file of `inputs` and append its record to `results`; returns the
    numbers of files in the batch and of files that failed."""
    paths = audio_files(inputs)
    if not resume and results.exists() and results.stat().st_size:
        raise VocalstreamError(f"{results} exists: --resume continues it; remove it to start over")
    latest = {record["path"]: record for record in read_records(results)} if resume else {}
    kept = {path: latest[path] for path in paths if path in latest and _unchanged(latest[path])}
    todo = [path for path in paths if path not in kept]
    log.info("%d files: %d analysed before, %d to analyse", len(paths), len(kept), len(todo))
    if todo:
        bundle = resolve_bundle(settings.model)  # a bad --model fails here, before any worker
        if bundle.separation:
            bundle.separator_path()  # built once here, not raced for by every worker
    finished = dict(kept)
    failed = 0
    audio_seconds = 0.0
    started = time.perf_counter()
    with (
        appender(results) as append,
        logging_redirect_tqdm([log]),
        tqdm(total=len(todo), unit="file", desc="files", disable=not progress) as files_bar,
        tqdm(unit="s", desc="audio", unit_scale=True, disable=not progress) as audio_bar,
    ):
        for record in _records(todo, settings, jobs, ray_address) if todo else ():
            append(record)
            finished[record["path"]] = record
            if "error" in record:
                failed += 1
                log.warning("%s", record["error"])
                files_bar.set_postfix(failed=failed)
            audio_seconds += record.get("duration", 0.0)
            audio_bar.update(record.get("duration", 0.0))
            files_bar.update()
    elapsed = time.perf_counter() - started
    if todo:
        log.info(
            "analysed %d files, %.0f s of audio, in %.1f s: %.1f files/min, %.1fx real time",
            len(todo),
            audio_seconds,
            elapsed,
            60 * len(todo) / elapsed,
            audio_seconds / elapsed,
        )
    if summary is not None:
        write_summary([finished[path] for path in paths], summary)
    return len(paths), failed
