"""The `vocalstream` command. Each subcommand is a thin layer over the Python API."""

from __future__ import annotations

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
