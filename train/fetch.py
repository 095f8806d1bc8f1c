"""The corpus's raw material: Debian packages fetched and unpacked into a cache, and the external
programs that decode (ffmpeg), render (fluidsynth) or sing (festival) it.

Packages are unpacked with `dpkg-deb -x`, never installed: the builder needs their files, not
their place in the system. Programs it runs must be installed; a missing one is a DataError
that says which package provides it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Collection
from pathlib import Path

from vocalstream.errors import DataError
from vocalstream.files import atomic_folder

COMPLETE = ".complete"  # written last, so an interrupted unpack is redone


def require_program(program: str, purpose: str, package: str) -> str:
    """The program's path, or a DataError naming the Debian package to install."""
    path = shutil.which(program)
    if path is None:
        raise DataError(
            f"{program} is not installed; the corpus builder needs it to {purpose} "
            f"(Debian: apt-get install {package})"
        )
    return path


def run(
    command: list[str],
    what: str,
    cwd: Path | None = None,
    timeout: float | None = None,
    cpu_seconds: int | None = None,
) -> bytes:
    """Run a program; its failure becomes one DataError line with the program's last words.
    `timeout` bounds the wall-clock time; `cpu_seconds` bounds the processor time, which, unlike
    the wall clock, does not depend on how busy the machine is, so what is cut stays the same."""
    try:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as error:
        raise DataError(f"{what}: cannot run {command[0]} ({error.strerror})") from error
    with process:
        if cpu_seconds is not None:  # SIGXCPU at the soft limit, SIGKILL a second later
            with contextlib.suppress(ProcessLookupError):  # it may have finished already
                limit = (cpu_seconds, cpu_seconds + 1)
                resource.prlimit(process.pid, resource.RLIMIT_CPU, limit)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            process.kill()
            raise DataError(f"{what}: {command[0]} ran past {timeout:.0f} s") from error
    if process.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and cpu_seconds is not None:
        raise DataError(f"{what}: {command[0]} used more than {cpu_seconds} s of processor time")
    if process.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        errors = [line for line in lines if line.startswith("E:")] or lines[-1:]
        raise DataError(f"{what}: {command[0]} failed: {' '.join(errors) or 'no message'}")
    return stdout


def debian_package(name: str, cache: Path) -> Path:
    """The unpacked root of Debian package `name` (its files under usr/...), fetched with
    `apt-get download` on first use."""
    root = cache / "debian" / name
    if (root / COMPLETE).is_file():
        return root
    require_program("apt-get", "fetch Debian packages", "apt")
    require_program("dpkg-deb", "unpack Debian packages", "dpkg")
    root.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=root.parent, prefix=f".{name}-deb-") as download,
        atomic_folder(root) as unpacked,
    ):
        os.chmod(download, 0o755)  # apt's sandbox user must be able to write the .deb here
        hint = " (is the package list current? apt-get update)"
        try:
            run(["apt-get", "download", name], f"Debian package {name}", cwd=Path(download))
        except DataError as error:
            raise DataError(f"{error}{hint}") from error
        debs = sorted(Path(download).glob("*.deb"))
        if len(debs) != 1:
            raise DataError(f"Debian package {name}: apt-get download left {len(debs)} .deb files")
        run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], f"Debian package {name}")
        (unpacked / COMPLETE).write_text(debs[0].name + "\n")
    return root


def package_files(root: Path, pattern: str, excluded: Collection[str] = ()) -> list[Path]:
    """Files under an unpacked package matching a glob, sorted, less those whose names without
    suffix are `excluded`; an empty match is an error, since it means the package changed its
    layout."""
    files = sorted(
        path for path in root.glob(pattern) if path.is_file() and path.stem not in excluded
    )
    if not files:
        raise DataError(f"{root.name}: no files match {pattern}; the package's layout changed")
    return files


def copyright_file(root: Path) -> Path | None:
    path = root / "usr" / "share" / "doc" / root.name / "copyright"
    return path if path.is_file() else None
