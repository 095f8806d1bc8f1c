"""One file in, one record out. Each worker process (or Ray actor) holds one Analyser, whose
model loads on the worker's first file and then serves every file it is given."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import resource
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from vocalstream.api import Analysis, Model, load_model
from vocalstream.catalog.summary import summarise
from vocalstream.defaults import FILE_HOP_SECONDS
from vocalstream.errors import AudioError, VocalstreamError

log = logging.getLogger("vocalstream")


@dataclass(frozen=True)
class Settings:
    """What every worker of a batch needs to know; it travels to worker processes and actors."""

    model: str | None = None  # a bundle folder; None: the bundled model
    compute: str = "auto"
    threads: int | None = None  # onnxruntime threads of the worker; None: every core
    hop: float = FILE_HOP_SECONDS
    windows: bool = False  # records carry the per-window results too
    plots: str | None = None  # a folder for one timeline picture per file


def identity(path: str) -> dict:
    """What --resume checks besides the path: size and modification time (None if missing)."""
    try:
        stat = os.stat(path)
    except OSError:
        return {"size": None, "mtime": None}
    return {"size": stat.st_size, "mtime": stat.st_mtime}


def plot_path(folder: str, path: str) -> str:
    """The picture of `path` in `folder`: its stem, made safe, and a hash of the whole path, so
    that the many `01 Intro.mp3` of a library do not overwrite one another."""
    stem = re.sub(r"[^\w.-]+", "_", Path(path).stem)[:80] or "audio"
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:8]
    return os.path.join(folder, f"{stem}-{digest}.png")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class Analyser:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._model: Model | None = None

    @property
    def model(self) -> Model:
        if self._model is None:
            settings = self.settings
            self._model = load_model(settings.model, settings.compute, settings.threads)
        return self._model

    def record(self, path: str) -> dict:
        """The batch record of `path` (docs/output.md): its timeline and summary, or an error
        record when the file cannot be analysed. Model and device errors are raised: they stop
        the batch, as they would fail every file."""
        started = time.perf_counter()
        record = {"path": path, **identity(path)}
        try:
            record |= self._analysed(path)
        except AudioError as error:
            record["error"] = _one_line(error)
        except VocalstreamError:
            raise
        except Exception as error:  # one odd file must not end a night's batch
            log.debug("%s", path, exc_info=True)
            record["error"] = f"{path}: {type(error).__name__}: {_one_line(error)}"
        record["run"] = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "seconds": round(time.perf_counter() - started, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        return record

    def _analysed(self, path: str) -> dict:
        analysis: Analysis = self.model.analyse(path, hop=self.settings.hop)
        summary = summarise(analysis)
        found = analysis.to_dict()
        fields = {"duration": found["duration"], "summary": summary, "segments": found["segments"]}
        if self.settings.windows:
            fields["windows"] = found["windows"]
        if self.settings.plots is not None:
            from vocalstream.catalog.plot import draw_timeline

            fields["plot"] = plot_path(self.settings.plots, path)
            draw_timeline(analysis, fields["plot"], summary["tag"])
        return fields
