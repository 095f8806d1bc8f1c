"""Writing results so that a failure never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `destination` (same suffix) that replaces it only on success."""
    destination = Path(destination)
    descriptor, scratch = tempfile.mkstemp(
        dir=destination.parent or ".", prefix=f".{destination.stem}.", suffix=destination.suffix
    )
    os.close(descriptor)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(scratch)
        os.chmod(scratch, 0o666 & ~umask)  # mkstemp's private 0600 is not what a user expects
        os.replace(scratch, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)


def sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
