"""Writing timelines: json, jsonl, csv, rttm and Praat TextGrid (schemas in docs/output.md)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

FORMATS = ("json", "jsonl", "csv", "rttm", "textgrid")


def render(files: list[dict], output_format: str, windows: bool, model: dict) -> str:
    """files: [{"path", "duration", "segments", "windows"}] -> the text of one output."""
    if output_format == "json":
        document = {
            "model": model,
            "files": [
                {key: f[key] for key in ("path", "duration", "segments", *(("windows",) * windows))}
                for f in files
            ],
        }
        return json.dumps(document, indent=2) + "\n"
    rows = [(f, item) for f in files for item in (f["windows"] if windows else f["segments"])]
    if output_format == "jsonl":
        return "".join(json.dumps({"file": f["path"], **item}) + "\n" for f, item in rows)
    if output_format == "csv":
        return _csv(rows, windows)
    if output_format == "rttm":
        if windows:
            raise ValueError("rttm holds segments only; drop --windows")
        return "".join(
            f"SPEAKER {Path(f['path']).stem} 1 {s['start']:.3f} {s['end'] - s['start']:.3f} "
            f"<NA> <NA> {s['label']} {s['probability']:.4f} <NA>\n"
            for f, s in rows
        )
    if output_format == "textgrid":
        if windows or len(files) != 1:
            raise ValueError("a TextGrid holds the segments of one file")
        return _textgrid(files[0])
    raise ValueError(f"format must be one of {FORMATS}")


def _csv(rows: list[tuple[dict, dict]], windows: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if windows:
        labels = list(rows[0][1]["probs"]) if rows else []
        writer.writerow(
            ["file", "t0", "t1", "label", "label_id", "padded", *(f"p_{name}" for name in labels)]
        )
        for f, w in rows:
            writer.writerow(
                [
                    f["path"],
                    w["t0"],
                    w["t1"],
                    w["label"],
                    w["label_id"],
                    w["padded"],
                    *w["probs"].values(),
                ]
            )
    else:
        writer.writerow(["file", "start", "end", "label", "label_id", "probability"])
        for f, s in rows:
            writer.writerow(
                [f["path"], s["start"], s["end"], s["label"], s["label_id"], s["probability"]]
            )
    return buffer.getvalue()


def _textgrid(file: dict) -> str:
    """Praat's long text format: one interval tier, "voices", covering the whole file."""
    end = max([file["duration"], *(s["end"] for s in file["segments"])])
    intervals, cursor = [], 0.0
    for segment in file["segments"]:
        if segment["start"] > cursor:
            intervals.append((cursor, segment["start"], ""))
        intervals.append((segment["start"], segment["end"], segment["label"]))
        cursor = segment["end"]
    if cursor < end:
        intervals.append((cursor, end, ""))
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0",
        f"xmax = {end}",
        "tiers? <exists>",
        "size = 1",
        "item []:",
        "    item [1]:",
        '        class = "IntervalTier"',
        '        name = "voices"',
        "        xmin = 0",
        f"        xmax = {end}",
        f"        intervals: size = {len(intervals)}",
    ]
    for number, (start, stop, text) in enumerate(intervals, 1):
        lines += [
            f"        intervals [{number}]:",
            f"            xmin = {start}",
            f"            xmax = {stop}",
            f'            text = "{text}"',
        ]
    return "\n".join(lines) + "\n"
