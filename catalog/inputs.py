"""The audio files a batch covers: files named, folders searched recursively by extension, and
text files listing paths."""

from __future__ import annotations

import os

from vocalstream.audio import READABLE_EXTENSIONS
from vocalstream.errors import VocalstreamError

LIST_SUFFIXES = (".txt", ".lst")  # an INPUT with one of these lists paths, one a line


def _audio_in(folder: str) -> list[str]:
    found = []
    for root, _, names in os.walk(folder):
        found += [
            os.path.join(root, name)
            for name in names
            if os.path.splitext(name)[1].lower() in READABLE_EXTENSIONS
        ]
    return found


def _listed(list_file: str) -> list[str]:
    """The paths a list names; relative ones are relative to the list's folder. Blank lines and
    lines starting with # are skipped."""
    base = os.path.dirname(list_file)
    try:
        with open(list_file, encoding="utf-8") as lines:
            entries = [line.strip() for line in lines]
    except (OSError, UnicodeDecodeError) as error:
        raise VocalstreamError(f"{list_file}: cannot read the list of paths ({error})") from error
    found = []
    for entry in entries:
        if not entry or entry.startswith("#"):
            continue
        path = os.path.join(base, os.path.expanduser(entry))
        found += _audio_in(path) if os.path.isdir(path) else [path]
    return found


def audio_files(inputs: list[str]) -> list[str]:
    """Every file the inputs name, as absolute paths, each once, sorted.

    A file named on the command line or in a list is taken whatever its extension (so a
    non-audio one gets an error record); folders give only files with an audio extension. A
    missing command-line input is an error at once; a missing listed path becomes an error
    record, since lists of a changing library go stale."""
    found = []
    for name in inputs:
        if os.path.isdir(name):
            found += _audio_in(name)
        elif not os.path.exists(name):
            raise VocalstreamError(f"{name}: no such file or folder")
        elif os.path.splitext(name)[1].lower() in LIST_SUFFIXES:
            found += _listed(name)
        else:
            found.append(name)
    if not found:
        raise VocalstreamError(
            f"no audio files in {', '.join(inputs)} "
            f"(folders are searched for {', '.join(READABLE_EXTENSIONS)})"
        )
    return sorted({os.path.abspath(path) for path in found})
