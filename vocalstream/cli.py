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


def _torch_device(device: str) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise VocalstreamError("CUDA was asked for but torch cannot use it here; use --device cpu")
    chosen = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    click.echo(f"torch device: {chosen}", err=True)
    return chosen


def _data_options(command):
    command = click.option(
        "--labels", type=click.Path(dir_okay=False, path_type=Path),
        help="Labels of a seeds'-format folder (default: DATA/train_label.txt).",
    )(command)  # fmt: skip
    return click.option(
        "--data", "data_path", required=True, type=click.Path(path_type=Path),
        help="N.mp3 snippets with train_label.txt, or a CSV manifest: path,label[,group].",
    )(command)  # fmt: skip


_device_option = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)


@main.command()
@click.option(
    "--recipe", required=True,
    help="A bundled recipe (cnn4, resnet34, seed000-ensemble, resnet18x8) or a TOML file.",
)  # fmt: skip
@_data_options
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a recipe field (TOML value), e.g. --set epochs=5. Repeatable.",
)  # fmt: skip
@click.option("--no-separation", is_flag=True, help="Train on the mix, not the separated vocals.")
@click.option("--resume", is_flag=True, help="Continue after the last finished epoch in --out.")
@click.option(
    "--on-unreadable", type=click.Choice(["fail", "skip"]), default="fail", show_default=True,
    help="An unreadable audio file stops the run, or is skipped and reported.",
)  # fmt: skip
@_device_option
def train(
    recipe: str, data_path: Path, labels: Path | None, out: Path, overrides: tuple[str, ...],
    no_separation: bool, resume: bool, on_unreadable: str, device: str,
):  # fmt: skip
    """Train a recipe's model(s) on labelled 3-s snippets into the run folder --out.

    Under torchrun each process trains one shard with DistributedDataParallel, e.g.
    torchrun --nproc_per_node=2 --no-python vocalstream train ...
    """
    import torch.distributed as dist

    from vocalstream.train.engine import distributed_from_environment
    from vocalstream.train.recipe import load_recipe, parse_override
    from vocalstream.train.run import read_examples, train_run

    settings = dict(parse_override(text) for text in overrides)
    if no_separation:
        settings["separation"] = False
    chosen = load_recipe(recipe, settings)
    examples = read_examples(data_path, labels)
    torch_device = _torch_device(device)
    context = distributed_from_environment()
    if context.world > 1:
        import torch

        if torch_device == "cuda":
            torch.cuda.set_device(context.local_rank)
            torch_device = f"cuda:{context.local_rank}"
        dist.init_process_group("nccl" if torch_device.startswith("cuda") else "gloo")
    try:
        train_run(
            chosen, examples, out, settings, torch_device, resume, on_unreadable,
            progress=sys.stderr.isatty(),
        )  # fmt: skip
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@main.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@_data_options
@_device_option
def evaluate(run_dir: Path, data_path: Path, labels: Path | None, device: str):
    """Accuracy, per-class precision/recall/F1 and the confusion matrix of a trained RUN."""
    from vocalstream.models.classifiers import LABELS
    from vocalstream.train.run import evaluate_run, read_examples

    report = evaluate_run(run_dir, read_examples(data_path, labels), _torch_device(device))
    click.echo(f"accuracy {report['accuracy']:.4f}")
    click.echo(f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    for name, row in report["per_class"].items():
        click.echo(f"{name:<10} {row['precision']:>9.3f} {row['recall']:>7.3f} "
                   f"{row['f1']:>6.3f} {row['support']:>8d}")  # fmt: skip
    click.echo("confusion (rows true, columns predicted): " + " ".join(LABELS))
    for name, row in zip(LABELS, report["confusion"], strict=True):
        click.echo(f"{name:<10} " + " ".join(f"{count:>6d}" for count in row))


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="A trained run folder.",
)  # fmt: skip
@_device_option
def predict(folder: Path, output: Path, run_dir: Path, device: str):
    """Classify every audio file in FOLDER; write the competition's id,category CSV."""
    from vocalstream.train.run import predict_folder, write_predictions

    if not folder.is_dir():
        raise VocalstreamError(f"{folder}: no such folder")
    rows = predict_folder(run_dir, folder, _torch_device(device))
    write_predictions(rows, output)
    click.echo(f"wrote {len(rows)} predictions to {output}", err=True)


@main.command(name="export")
@click.argument("runs", metavar="RUN...", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))  # fmt: skip
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The bundle folder to write (replaced whole if it exists).")  # fmt: skip
@click.option("--weights", help="One weight per RUN, summing to 1, e.g. 0.5,0.5 (default equal).")
@click.option("--fp16", is_flag=True, help="Also write a float16 classifier.")
@click.option("--no-separator", is_flag=True,
              help="Leave the separator out; it is then built from the installed weights on "
                   "first use.")  # fmt: skip
def export_command(runs: tuple[Path, ...], output: Path, weights: str | None, fp16: bool,
                   no_separator: bool):  # fmt: skip
    """Export trained RUNs as one ONNX ensemble in a checksummed model bundle."""
    from vocalstream.export.bundle import export_bundle

    parsed = None
    if weights:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError as error:
            message = f"--weights takes numbers like 0.5,0.5, got {weights!r}"
            raise VocalstreamError(message) from error
    manifest = export_bundle(list(runs), output, parsed, fp16, not no_separator)
    for name in manifest["files"]:
        size = (output / name).stat().st_size / 1e6
        click.echo(f"{output / name}: {size:.1f} MB", err=True)
    members = ", ".join(f"{m['name']} x{m['weight']:.3g}" for m in manifest["members"])
    click.echo(f"wrote bundle {output}: {members}", err=True)
