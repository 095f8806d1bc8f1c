"""The `vocalstream` command. Each subcommand is a thin layer over the Python API."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from vocalstream import __version__
from vocalstream.errors import VocalstreamError

# The streaming defaults, without importing the stream package (and torch) for --help.
FILE_HOP_SECONDS = 3.0  # file: back-to-back windows unless asked otherwise
LISTEN_HOP_SECONDS = 1.0


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
@click.option(
    "--validation-data", type=click.Path(path_type=Path),
    help="Validate on these examples (a folder or manifest like --data) instead of a split "
         "of --data.",
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
    validation_data: Path | None, no_separation: bool, resume: bool, on_unreadable: str,
    device: str,
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
    validation = read_examples(validation_data) if validation_data else None
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
            progress=sys.stderr.isatty(), validation_examples=validation,
        )  # fmt: skip
        if dist.is_initialized():
            # Rank 0 still writes the run summary: tearing the group down before it is done
            # aborted the other rank in CI ("terminate called without an active exception").
            dist.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@main.group()
def corpus() -> None:
    """The labelled training corpus of the default model, built from open recordings."""


@corpus.command(name="build")
@click.argument("out", metavar="OUT_DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--train", "train_count", type=int, default=2000, show_default=True,
              help="Snippets in the training split.")  # fmt: skip
@click.option("--validation", "validation_count", type=int, default=400, show_default=True)
@click.option(
    "--test",
    "test_count",
    type=int,
    default=800,
    show_default=True,
    help="Snippets in the held-out test split (voices and music unseen in training).",
)
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="Where fetched packages and prepared sources are kept "
                   "(default: the vocalstream cache).")  # fmt: skip
def corpus_build(out: Path, seed: int, train_count: int, validation_count: int, test_count: int,
                 cache: Path | None):  # fmt: skip
    """Fetch the sources and write 3-s snippets with labels to OUT_DIR/{train,validation,test}."""
    from vocalstream.train.corpus import build

    counts = {"train": train_count, "validation": validation_count, "test": test_count}
    summary = build(out, counts, seed, cache, log=lambda m: click.echo(m, err=True),
                    progress=sys.stderr.isatty())  # fmt: skip
    for split, numbers in summary["splits"].items():
        classes = ", ".join(f"{name} {count}" for name, count in numbers["per_class"].items())
        click.echo(f"{split}: {numbers['snippets']} snippets ({classes})", err=True)
    click.echo(f"wrote {out} (summary in {out / 'corpus.json'})", err=True)


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
@click.option(
    "--fp16-only",
    is_flag=True,
    help="Write only the float16 classifier (half the size), which is then used.",
)
@click.option("--no-separator", is_flag=True,
              help="Leave the separator out; it is then built from the installed weights on "
                   "first use.")  # fmt: skip
def export_command(runs: tuple[Path, ...], output: Path, weights: str | None, fp16: bool,
                   fp16_only: bool, no_separator: bool):  # fmt: skip
    """Export trained RUNs as one ONNX ensemble in a checksummed model bundle."""
    from vocalstream.export.bundle import export_bundle

    parsed = None
    if weights:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError as error:
            message = f"--weights takes numbers like 0.5,0.5, got {weights!r}"
            raise VocalstreamError(message) from error
    manifest = export_bundle(list(runs), output, parsed, fp16 or fp16_only, not no_separator,
                             fp32=not fp16_only)  # fmt: skip
    for name in manifest["files"]:
        size = (output / name).stat().st_size / 1e6
        click.echo(f"{output / name}: {size:.1f} MB", err=True)
    members = ", ".join(f"{m['name']} x{m['weight']:.3g}" for m in manifest["members"])
    click.echo(f"wrote bundle {output}: {members}", err=True)


_model_option = click.option(
    "--model", "model", type=click.Path(file_okay=False, path_type=Path),
    help="A model bundle from vocalstream export (default: the bundled model).",
)  # fmt: skip


def _pcm_options(command):
    for option in reversed([
        click.option("--input-rate", type=int, default=44100, show_default=True,
                     help="Sample rate of raw PCM on standard input (INPUT '-')."),
        click.option("--input-channels", type=int, default=2, show_default=True,
                     help="Channels of raw PCM on standard input."),
        click.option("--input-format", type=click.Choice(["f32le", "s16le", "s32le"]),
                     default="f32le", show_default=True, help="Sample format of raw PCM."),
    ]):  # fmt: skip
        command = option(command)
    return command


def _classifier(model: Path | None, compute: str):
    from vocalstream.export.bundle import resolve_bundle
    from vocalstream.export.runtime import VoiceClassifier

    classifier = VoiceClassifier(resolve_bundle(model), device=compute)
    if compute == "auto" and classifier.provider != "CUDAExecutionProvider":
        click.echo("CUDA is not available: running on the CPU", err=True)
    return classifier


def _stdin_blocks(classifier, rate: int, channels: int, pcm_format: str):
    from vocalstream.stream.sources import pcm_blocks

    if rate <= 0 or channels <= 0:
        raise VocalstreamError("--input-rate and --input-channels must be positive")
    return pcm_blocks(sys.stdin.buffer, rate, channels, pcm_format, classifier.sample_rate,
                      classifier.channels)  # fmt: skip


@main.command(name="file")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@_model_option
@click.option("-f", "--format", "output_format", default="json", show_default=True,
              type=click.Choice(["json", "jsonl", "csv", "rttm", "textgrid"]))  # fmt: skip
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write here instead of standard output (a folder for several TextGrids).",
)
@click.option("--windows", is_flag=True, help="The raw windows instead of the smoothed timeline.")
@click.option("--hop", type=float, default=FILE_HOP_SECONDS, show_default=True,
              help="Seconds between window starts (windows are 3 s).")  # fmt: skip
@click.option("--smoothing", type=click.Choice(["median", "hysteresis", "none"]),
              default="median", show_default=True)  # fmt: skip
@click.option("--median-windows", type=int, default=3, show_default=True)
@click.option("--enter", type=float, default=0.6, show_default=True,
              help="Hysteresis: probability a new class needs to take over.")  # fmt: skip
@click.option("--exit", "exit_", type=float, default=0.4, show_default=True,
              help="Hysteresis: the current class holds until it falls below this.")  # fmt: skip
@click.option("--min-duration", type=float, default=0.0, show_default=True,
              help="Seconds: shorter segments join the one before.")  # fmt: skip
@_pcm_options
@click.option("--compute", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where the models run.")  # fmt: skip
def file_command(
    inputs, model, output_format, output, windows, hop, smoothing, median_windows, enter, exit_,
    min_duration, input_rate, input_channels, input_format, compute,
):  # fmt: skip
    """A timeline of no voice / male / female / several voices for each INPUT ('-': raw PCM on
    standard input). The model is loaded once for all inputs."""
    from vocalstream import audio
    from vocalstream.files import atomic_path
    from vocalstream.stream.formats import render
    from vocalstream.stream.service import analyse
    from vocalstream.stream.timeline import Smoothing

    if not 0 < hop <= audio.WINDOW_SECONDS:
        raise VocalstreamError(f"--hop must lie in (0, {audio.WINDOW_SECONDS}] seconds")
    try:
        smooth = Smoothing(smoothing, median_windows, enter, exit_, min_duration)
    except ValueError as error:
        raise VocalstreamError(str(error)) from error
    several_grids = output_format == "textgrid" and len(inputs) > 1
    if several_grids and (output is None or output.suffix):
        raise VocalstreamError("several inputs as TextGrid need -o FOLDER (one file each)")
    if output_format in ("rttm", "textgrid") and windows:
        raise VocalstreamError(f"{output_format} holds segments only; drop --windows")
    for name in inputs:
        if name != "-":
            audio.duration(name)  # every input readable before any model loads
    classifier = _classifier(model, compute)
    results = []
    for name in inputs:
        if name == "-":
            blocks = _stdin_blocks(classifier, input_rate, input_channels, input_format)
        else:
            blocks = audio.stream(name, classifier.sample_rate, classifier.channels)
        results.append(analyse(classifier, blocks, name, hop, smooth))
    description = {"bundle": str(classifier.bundle.folder), "provider": classifier.provider,
                   "labels": list(classifier.labels)}  # fmt: skip
    if several_grids:
        output.mkdir(parents=True, exist_ok=True)
        for result in results:
            with atomic_path(output / f"{Path(result['path']).stem}.TextGrid") as scratch:
                scratch.write_text(render([result], "textgrid", False, description))
        return
    text = render(results, output_format, windows, description)
    if output is None:
        click.echo(text, nl=False)
    else:
        with atomic_path(output) as scratch:
            scratch.write_text(text)


@main.command()
@click.argument("source", metavar="[INPUT]", required=False)
@_model_option
@click.option("--device", "capture_device", help="Capture device: index or name substring.")
@click.option("--list-devices", is_flag=True, help="List capture devices and exit.")
@click.option("--hop", type=float, default=LISTEN_HOP_SECONDS, show_default=True,
              help="Seconds between window starts (windows are 3 s).")  # fmt: skip
@click.option("--duration", type=float, help="Stop after this many seconds of audio.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Append the JSON lines here instead of standard output.")  # fmt: skip
@_pcm_options
@click.option("--compute", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where the models run.")  # fmt: skip
def listen(source, model, capture_device, list_devices, hop, duration, output, input_rate,
           input_channels, input_format, compute):  # fmt: skip
    """Classify live audio: one JSON line per window, from the microphone (or raw PCM on
    standard input with INPUT '-'), until interrupted, the input ends or --duration passes."""
    import contextlib
    import signal
    import threading

    from vocalstream import audio
    from vocalstream.stream.service import limited
    from vocalstream.stream.service import listen as listen_loop
    from vocalstream.stream.sources import Microphone, input_devices

    if list_devices:
        for device in input_devices():
            click.echo(f"{device['index']}: {device['name']} ({device['channels']} ch, "
                       f"{device['default_rate']:.0f} Hz)")  # fmt: skip
        return
    if not 0 < hop <= audio.WINDOW_SECONDS:
        raise VocalstreamError(f"--hop must lie in (0, {audio.WINDOW_SECONDS}] seconds")
    if duration is not None and duration <= 0:
        raise VocalstreamError("--duration must be positive")
    if source not in (None, "-"):
        raise VocalstreamError("listen reads the microphone, or raw PCM with INPUT '-'; "
                               "for files use vocalstream file")  # fmt: skip
    numbered = capture_device is not None and capture_device.isdigit()
    device = int(capture_device) if numbered else capture_device
    classifier = _classifier(model, compute)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    samples = None if duration is None else round(duration * classifier.sample_rate)
    microphone = None
    with contextlib.ExitStack() as stack:
        if source == "-":
            blocks = _stdin_blocks(classifier, input_rate, input_channels, input_format)
        else:
            microphone = stack.enter_context(
                Microphone(device, classifier.sample_rate, classifier.channels)
            )
            blocks = microphone.blocks(stop)
        out = stack.enter_context(output.open("a")) if output else sys.stdout
        counters = listen_loop(classifier, limited(blocks, samples), out, hop, stop)
    counters["overruns"] = microphone.overruns if microphone else 0
    counters["provider"] = classifier.provider
    click.echo(json.dumps({"health": counters}), err=True)
