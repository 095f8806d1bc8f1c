"""The picture of one analysis, on one time axis in seconds: the class segments as a strip of
coloured bands (repeated faintly behind the other panels), the four class probabilities as
lines, and the vocal level, the separated vocals' energy relative to the mix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from vocalstream.api import Analysis
from vocalstream.errors import VocalstreamError
from vocalstream.files import atomic_path

FORMATS = (".png", ".svg", ".pdf")
SIZE = (12, 6)  # inches
DPI = 100  # so a PNG is 1200 x 600 pixels
# Okabe-Ito colours, told apart with the common colour-vision deficiencies too.
COLOURS = {"no_voice": "#999999", "male": "#0072B2", "female": "#D55E00", "several": "#009E73"}
LEVEL_COLOUR = "#7B3294"
LEVEL_FLOOR = -60.0  # dB: quieter vocals than this are drawn as none


def check_destination(path: str | os.PathLike) -> None:
    """Fail on an unsupported picture format before any audio is analysed."""
    if Path(path).suffix.lower() not in FORMATS:
        raise VocalstreamError(f"{path}: the picture must be one of {', '.join(FORMATS)}")


def _bands(axes, analysis: Analysis, alpha: float) -> None:
    for segment in analysis.segments:
        axes.axvspan(segment.start, segment.end, color=COLOURS[segment.label], alpha=alpha, lw=0)


def draw_timeline(analysis: Analysis, path: str | os.PathLike, tag: str | None = None) -> None:
    """Draw `analysis` to `path` (.png, .svg or .pdf), replacing it only once it is complete."""
    check_destination(path)
    windows = analysis.windows
    labels = windows[0].labels
    # Each window speaks for the stretch from its start to the next window's (the last one to
    # the end), as on the smoothed timeline.
    edges = [window.start for window in windows] + [max(analysis.duration, windows[-1].start)]
    probabilities = np.stack([window.probabilities for window in windows])
    levels = np.clip([window.vocal_level for window in windows], LEVEL_FLOOR, 0.0)

    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    strip, chances, level = figure.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [0.35, 2.0, 1.2]}
    )
    _bands(strip, analysis, alpha=0.9)
    strip.set_yticks([])
    strip.set_ylabel("class", rotation=0, ha="right", va="center")

    _bands(chances, analysis, alpha=0.12)
    for index, label in enumerate(labels):
        chances.stairs(probabilities[:, index], edges, baseline=None, color=COLOURS[label], lw=1.8)
    chances.set_ylim(0, 1.02)
    chances.set_ylabel("probability")
    chances.grid(axis="y", alpha=0.3)

    _bands(level, analysis, alpha=0.12)
    level.stairs(levels, edges, baseline=LEVEL_FLOOR, fill=True, color=LEVEL_COLOUR, alpha=0.6)
    level.set_ylim(LEVEL_FLOOR, 0)
    level.set_ylabel("vocal level (dB)")
    level.set_xlim(0, edges[-1])
    level.set_xlabel("time (s)")

    handles = [Line2D([], [], color=COLOURS[label], lw=6) for label in labels]
    handles.append(Line2D([], [], color=LEVEL_COLOUR, lw=6, alpha=0.6))
    strip.legend(
        handles,
        [*labels, "vocal level"],
        loc="lower right",
        bbox_to_anchor=(1, 1),
        ncol=len(handles),
        frameon=False,
        fontsize="small",
    )
    title = f"{Path(analysis.path).name} ({analysis.duration:.1f} s)"
    figure.suptitle(f"{title}: {tag}" if tag else title)
    with atomic_path(path) as scratch:
        figure.savefig(scratch, format=Path(path).suffix.lower().lstrip("."))
