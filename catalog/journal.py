"""The results file: one JSON record per line, each appended whole and flushed to disk as its
file completes, so that a killed batch leaves at most a torn last line, which a resume drops."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from vocalstream.errors import VocalstreamError

log = logging.getLogger("vocalstream")


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records of a results file, in order. A torn last line (a batch killed while writing
    it) is cut off the file; any other line that is not a record is an error."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        log.warning("%s: dropping a torn last line (%d bytes)", path, len(data) - complete)
        with open(path, "r+b") as file:
            file.truncate(complete)
    records = []
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict) or "path" not in record:
            raise VocalstreamError(f"{path}, line {number}: not a vocalstream batch record")
        records.append(record)
    return records


@contextlib.contextmanager
def appender(path: str | os.PathLike) -> Iterator[Callable[[dict], None]]:
    """A function that appends a record to a results file as one whole line, flushed and
    synced. Non-ASCII characters are escaped, so file names that are not UTF-8 survive."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as file:

        def append(record: dict) -> None:
            file.write((json.dumps(record) + "\n").encode())
            file.flush()
            os.fsync(file.fileno())

        yield append
