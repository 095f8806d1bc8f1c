"""Recordings read from bare git mirrors of public repositories (`git clone --bare`), kept as
MIRRORS/OWNER+NAME/repo: the real singers of UTAU voicebanks, for the development set and the
corpus alike."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from vocalstream.errors import DataError

MINIMUM_RECORDINGS = 10
# Smaller .wav entries are git-lfs pointers or empty takes, not recordings.
MINIMUM_RECORDING_BYTES = 20_000


def git(mirror: Path, *arguments: str) -> bytes:
    result = subprocess.run(["git", "-C", str(mirror), *arguments], capture_output=True)
    if result.returncode != 0:
        raise DataError(f"{mirror}: git {arguments[0]} failed: {result.stderr.decode().strip()}")
    return result.stdout


def find(mirrors: Path, repository: str) -> Path | None:
    """The mirror of `repository` (OWNER/NAME) in `mirrors`, if there is one."""
    path = mirrors / repository.replace("/", "+") / "repo"
    return path if path.is_dir() else None


def recordings(mirror: Path, folder: str = "") -> list[str]:
    """The .wav files under `folder` of the mirror's HEAD, sorted; absent large files (listed
    with size "-") and git-lfs pointers are left out."""
    listing = git(mirror, "ls-tree", "-r", "-z", "-l", "HEAD", "--", folder or ".")
    files = []
    for entry in listing.split(b"\0"):
        meta, _, name = entry.partition(b"\t")
        parts = meta.split()
        if (
            name.lower().endswith(b".wav")
            and parts[-1].isdigit()
            and int(parts[-1]) > MINIMUM_RECORDING_BYTES
        ):
            files.append(name.decode())
    if len(files) < MINIMUM_RECORDINGS:
        raise DataError(f"{mirror}: only {len(files)} recordings under {folder or 'its root'}")
    return sorted(files)


def read_mono(mirror: Path, name: str, rate: int) -> np.ndarray:
    """One recording of the mirror, mixed to mono and resampled to `rate`."""
    samples, source_rate = sf.read(io.BytesIO(git(mirror, "show", f"HEAD:{name}")), dtype="float32")
    return soxr.resample(samples.reshape(len(samples), -1).mean(axis=1), source_rate, rate)
