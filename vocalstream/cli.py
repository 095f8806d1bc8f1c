"""The `vocalstream` command. Each subcommand is a thin layer over the Python API."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from vocalstream import __version__
from vocalstream.errors import VocalstreamError


class _Group(click.Group):
    """Turns vocalstream's own errors into one `Error: ...` line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VocalstreamError as error:
            raise click.ClickException(str(error)) from error


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vocalstream")
def main() -> None:
    """Tell whether audio holds no voice, one male voice, one female voice or several voices."""


@main.command()
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the stem: .wav, .flac, .ogg or .mp3 (44.1 kHz stereo).",
)  # fmt: skip
@click.option(
    "--stem", type=click.Choice(["vocals", "accompaniment"]), default="vocals", show_default=True
)
@click.option(
    "--backend", type=click.Choice(["onnx", "torch"]), default="onnx", show_default=True,
    help="onnxruntime (the separator graph is built on first use) or torch.",
)  # fmt: skip
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
    help="auto uses CUDA when it works, else the CPU.",
)  # fmt: skip
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
def separate(source: Path, output: Path, stem: str, backend: str, device: str, quiet: bool):
    """Split INPUT into vocals and accompaniment with spleeter 2stems and write one stem."""
    from vocalstream import audio
    from vocalstream.stream.separation import Separator, load_estimator, separate_file

    audio.writable_format(output)  # fail on bad arguments before loading any model
    audio.duration(source)
    started = time.perf_counter()
    separator = Separator(load_estimator(backend, device))
    seconds = separate_file(source, output, separator, stem, progress=not quiet)
    if not quiet:
        elapsed = time.perf_counter() - started
        click.echo(
            f"wrote {output} ({stem}, {seconds:.1f} s of audio in {elapsed:.1f} s)", err=True
        )
    sys.exit(0)
