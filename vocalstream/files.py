"""Writing results so that a failure never leaves a half-written file or folder behind, and the
cache where built models and features are kept."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vocalstream.errors import VocalstreamError


def cache_dir() -> Path:
    """Where built models and features are kept: $VOCALSTREAM_CACHE, else
    $XDG_CACHE_HOME/vocalstream (~/.cache/vocalstream). An empty variable counts as unset, as
    the XDG spec says, rather than meaning the current directory."""
    if os.environ.get("VOCALSTREAM_CACHE"):
        return Path(os.environ["VOCALSTREAM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vocalstream"


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `destination` (same suffix) that replaces it only on success."""
    destination = Path(destination)
    descriptor, scratch = tempfile.mkstemp(
        dir=destination.parent or ".", prefix=f".{destination.stem}.", suffix=destination.suffix
    )
    os.close(descriptor)
    try:
        yield Path(scratch)
        os.chmod(scratch, 0o666 & ~_umask())  # mkstemp's private 0600 is not what a user expects
        os.replace(scratch, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)


@contextlib.contextmanager
def atomic_folder(destination: str | os.PathLike) -> Iterator[Path]:
    """An empty temporary folder beside `destination` that replaces it, whole, only on success.

    An existing folder at `destination` is swapped out only once the new one is complete."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}-"))
    try:
        yield scratch
        os.chmod(scratch, 0o777 & ~_umask())  # mkdtemp's private 0700 is not what a user expects
        if destination.is_dir() and not any(destination.iterdir()):
            destination.rmdir()
        if not destination.exists():
            os.replace(scratch, destination)
            return
        retired = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}-old-"))
        os.replace(destination, retired / destination.name)
        os.replace(scratch, destination)
        shutil.rmtree(retired)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class LineLog:
    """Lines appended to a file, each flushed whole. `reopen()` (from a SIGHUP handler) makes
    the next line go to a freshly opened file at the same path, so that logrotate can move the
    old one away."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = self._open()
        self._reopen = False

    def _open(self):
        try:
            return self.path.open("a")
        except OSError as error:
            raise VocalstreamError(f"cannot write {self.path}: {error.strerror}") from error

    def reopen(self) -> None:
        self._reopen = True

    def write(self, line: str) -> None:
        if self._reopen:
            self._reopen = False
            self._file.close()
            self._file = self._open()
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
