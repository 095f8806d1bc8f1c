"""The `vocalstream` command: a thin layer over the Python API (vocalstream.api) and the training
and export packages. Standard output carries only the requested output; every message goes to
standard error through logging.

Flags: `--compute auto|cpu|cuda` is where models run, in every command; `--input-device` is the
microphone. The earlier spellings (`--device` for either) still work, hidden from --help.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import click

from vocalstream.defaults import FILE_HOP_SECONDS, LISTEN_HOP_SECONDS
from vocalstream.errors import VocalstreamError
from vocalstream.version import __version__

log = logging.getLogger("vocalstream")
WINDOW_SECONDS = 3  # for --hop's bounds, without importing the audio stack for --help


class _Group(click.Group):
    """Turns vocalstream's own errors into one `Error: ...` line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VocalstreamError as error:
            raise click.ClickException(str(error)) from error


class _Option(click.Option):
    """An option whose older spellings (`hidden_aliases`) work but stay out of --help."""

    def __init__(self, *args, hidden_aliases: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.hidden_aliases = hidden_aliases
        self.opts += list(hidden_aliases)

    def get_help_record(self, ctx):
        shown = self.opts
        self.opts = [o for o in shown if o not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _progress() -> bool:
    """Progress bars only on a terminal, and not with -q."""
    return log.isEnabledFor(logging.INFO) and sys.stderr.isatty()


def _verbosity(command):
    """-v (provider, timings) and -q (no progress, warnings and errors only) on every command."""

    def set_verbose(ctx, _, value):
        ctx.meta["verbose"] = value
        _configure_logging(value, ctx.meta.get("quiet", False))

    def set_quiet(ctx, _, value):
        ctx.meta["quiet"] = value
        _configure_logging(ctx.meta.get("verbose", 0), value)

    command = click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        is_eager=True,
        callback=set_verbose,
        help="Also show the provider and timings.",
    )(command)
    return click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=set_quiet,
        help="Only warnings and errors; no progress.",
    )(command)


def _compute_option(command=None, aliases: tuple[str, ...] = ("--device",)):
    """--compute; `aliases` are the command's earlier spellings (listen's --device was, and
    stays, the microphone)."""
    if command is None:
        return lambda command: _compute_option(command, aliases)
    return click.option(
        "--compute",
        cls=_Option,
        hidden_aliases=aliases,
        default="auto",
        show_default=True,
        type=click.Choice(["auto", "cpu", "cuda"]),
        help="Where models run: auto takes CUDA when it works, else the CPU.",
    )(command)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vocalstream")
def main() -> None:
    """Tell whether audio holds no voice, one male voice, one female voice or several voices."""
    _configure_logging(0, False)


@main.command()
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the stem: .wav, .flac, .ogg or .mp3 (44.1 kHz stereo).",
)
@click.option(
    "--stem", type=click.Choice(["vocals", "accompaniment"]), default="vocals", show_default=True
)
@click.option(
    "--backend",
    type=click.Choice(["onnx", "torch"]),
    default="onnx",
    show_default=True,
    help="onnxruntime (the graph is built on first use) or torch.",
)
@_compute_option
@_verbosity
def separate(source: Path, output: Path, stem: str, backend: str, compute: str):
    """Split INPUT into vocals and accompaniment with spleeter 2stems and write one stem."""
    from vocalstream import audio
    from vocalstream.inference.separator import load_estimator
    from vocalstream.stream.separation import Separator, separate_file

    audio.writable_format(output)  # fail on bad arguments before loading any model
    audio.duration(source)
    started = time.perf_counter()
    separator = Separator(load_estimator(backend, compute, variant="2stems"))
    seconds = separate_file(source, output, separator, stem, progress=_progress())
    elapsed = time.perf_counter() - started
    log.info("wrote %s (%s, %.1f s of audio in %.1f s)", output, stem, seconds, elapsed)


def _data_options(command):
    command = click.option(
        "--labels",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Labels of a seeds'-format folder (default: DATA/train_label.txt).",
    )(command)
    return click.option(
        "--data",
        "data_path",
        required=True,
        type=click.Path(path_type=Path),
        help="N.mp3 snippets with train_label.txt, or a CSV manifest: path,label[,group].",
    )(command)


@main.command()
@click.option(
    "--recipe",
    required=True,
    help="A bundled recipe (cnn4, resnet34, seed000-ensemble, resnet18x8, resnet18) "
    "or a TOML file.",
)
@_data_options
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe field (TOML value), e.g. --set epochs=5. Repeatable.",
)
@click.option(
    "--validation-data",
    type=click.Path(path_type=Path),
    help="Validate on these examples (a folder or manifest like --data) instead of a "
    "split of --data.",
)
@click.option("--no-separation", is_flag=True, help="Train on the mix, not the separated vocals.")
@click.option("--resume", is_flag=True, help="Continue after the last finished epoch in --out.")
@click.option(
    "--feature-jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes computing the features not yet cached (each with a CPU separator, the cores "
    "shared between them). They are kept as they are computed: an interrupted run loses none.",
)
@click.option(
    "--on-unreadable",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="An unreadable audio file stops the run, or is skipped and reported.",
)
@_compute_option
@_verbosity
def train(
    recipe,
    data_path,
    labels,
    out,
    overrides,
    validation_data,
    no_separation,
    resume,
    feature_jobs,
    on_unreadable,
    compute,
):
    """Train a recipe's model(s) on labelled 3-s snippets into the run folder --out.

    Under torchrun each process trains one shard with DistributedDataParallel, e.g.
    torchrun --nproc_per_node=2 --no-python vocalstream train ...
    """
    import torch
    import torch.distributed as dist

    from vocalstream.inference.device import torch_device
    from vocalstream.train.engine import distributed_from_environment
    from vocalstream.train.recipe import load_recipe, parse_override
    from vocalstream.train.run import read_examples, train_run

    settings = dict(parse_override(text) for text in overrides)
    if no_separation:
        settings["separation"] = False
    chosen = load_recipe(recipe, settings)
    examples = read_examples(data_path, labels)
    validation = read_examples(validation_data) if validation_data else None
    device = torch_device(compute)
    context = distributed_from_environment()
    if context.world > 1:
        if device == "cuda":
            torch.cuda.set_device(context.local_rank)
            device = f"cuda:{context.local_rank}"
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    try:
        train_run(
            chosen,
            examples,
            out,
            settings,
            device,
            resume,
            on_unreadable,
            progress=_progress(),
            validation_examples=validation,
            feature_jobs=feature_jobs,
        )
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
@click.option(
    "--train",
    "train_count",
    type=int,
    default=2000,
    show_default=True,
    help="Snippets in the training split.",
)
@click.option("--validation", "validation_count", type=int, default=400, show_default=True)
@click.option(
    "--test",
    "test_count",
    type=int,
    default=800,
    show_default=True,
    help="Snippets in the held-out test split (voices and music unseen in training).",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where fetched packages and prepared sources are kept (default: the vocalstream cache).",
)
@click.option(
    "--hard-negatives",
    is_flag=True,
    help="Add music that sings to class 0: melodies with vibrato on violins, saxophones, flutes "
    "and synth leads, and music in a room (docs/MODEL_CARD.md: it costs real singers' recall).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes mixing snippets; any number writes the same corpus.",
)
@_verbosity
def corpus_build(out, seed, train_count, validation_count, test_count, cache, hard_negatives, jobs):
    """Fetch the sources and write 3-s snippets with labels to OUT_DIR/{train,validation,test}."""
    from vocalstream.train.corpus import build

    counts = {"train": train_count, "validation": validation_count, "test": test_count}
    summary = build(
        out,
        counts,
        seed,
        cache,
        progress=_progress(),
        hard_negatives=hard_negatives,
        jobs=jobs,
    )
    for split, numbers in summary["splits"].items():
        classes = ", ".join(f"{name} {count}" for name, count in numbers["per_class"].items())
        log.info("%s: %d snippets (%s)", split, numbers["snippets"], classes)
    log.info("wrote %s (summary in %s)", out, out / "corpus.json")


@corpus.command(name="build-dev")
@click.argument("out", metavar="OUT_DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The shared folder of real recordings (ChoirSet, vocadito, librosa's examples).",
)
@click.option(
    "--mirrors",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Bare git mirrors of the voicebank repositories, as OWNER+NAME/repo (git clone --bare).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@_verbosity
def corpus_build_dev(out, data_dir, mirrors, seed):
    """Write the real-singing development set to OUT_DIR: clips and labelled windows.

    Never train on it: it measures models (bench/devset.py scores them)."""
    from vocalstream.train.devset import build_dev

    summary = build_dev(out, data_dir, mirrors, seed)
    labels = ", ".join(f"{name} {count}" for name, count in summary["windows_by_label"].items())
    log.info(
        "%d voices, %d clips, %d windows (%s)",
        summary["voices"],
        summary["clips"],
        summary["windows"],
        labels,
    )
    log.info("wrote %s", out)


@main.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@_data_options
@_compute_option
@_verbosity
def evaluate(run_dir: Path, data_path: Path, labels: Path | None, compute: str):
    """Accuracy, per-class precision/recall/F1 and the confusion matrix of a trained RUN."""
    from vocalstream.inference.device import torch_device
    from vocalstream.models.labels import LABELS
    from vocalstream.train.run import evaluate_run, read_examples

    report = evaluate_run(run_dir, read_examples(data_path, labels), torch_device(compute))
    click.echo(f"accuracy {report['accuracy']:.4f}")
    click.echo(f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    for name, row in report["per_class"].items():
        click.echo(
            f"{name:<10} {row['precision']:>9.3f} {row['recall']:>7.3f} "
            f"{row['f1']:>6.3f} {row['support']:>8d}"
        )
    click.echo("confusion (rows true, columns predicted): " + " ".join(LABELS))
    for name, row in zip(LABELS, report["confusion"], strict=True):
        click.echo(f"{name:<10} " + " ".join(f"{count:>6d}" for count in row))


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A trained run folder.",
)
@_compute_option
@_verbosity
def predict(folder: Path, output: Path, run_dir: Path, compute: str):
    """Classify every audio file in FOLDER; write the competition's id,category CSV."""
    from vocalstream.inference.device import torch_device
    from vocalstream.train.run import predict_folder, write_predictions

    if not folder.is_dir():
        raise VocalstreamError(f"{folder}: no such folder")
    rows = predict_folder(run_dir, folder, torch_device(compute))
    write_predictions(rows, output)
    log.info("wrote %d predictions to %s", len(rows), output)


@main.command(name="export")
@click.argument(
    "runs",
    metavar="RUN...",
    nargs=-1,
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The bundle folder to write (replaced whole if it exists).",
)
@click.option("--weights", help="One weight per RUN, summing to 1, e.g. 0.5,0.5 (default equal).")
@click.option("--fp16", is_flag=True, help="Also write a float16 classifier.")
@click.option(
    "--fp16-only",
    is_flag=True,
    help="Leave the float32 classifier out: float16 (half the size), and 8-bit with --int8.",
)
@click.option(
    "--int8",
    "int8_data",
    type=click.Path(path_type=Path),
    help="Also write an 8-bit classifier (run only when asked for by name), calibrated on up "
    "to 256 examples of this folder or manifest (as train --data), spread evenly.",
)
@click.option(
    "--no-separator",
    is_flag=True,
    help="Leave the separator out; it is then built from the installed weights on first use.",
)
@click.option(
    "--voice-gate",
    "voice_runs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A run trained with reference=mix (repeatable): it decides whether anyone sings, the "
    "RUNs (reference=window) decide who.",
)
@click.option(
    "--music-branch",
    "music_weights",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Add musicnn's MTT tagger (weights from tools/musicnn_weights.py) as a real-music "
    "branch that weighs in on male or female; needs --fusion-data.",
)
@click.option(
    "--fusion-data",
    type=click.Path(path_type=Path),
    help="Labelled examples (a folder or manifest, as train --data) the music branch's gender "
    "fusion is fitted on: held out from the RUNs' training.",
)
@click.option(
    "--pitch-branch",
    "pitch_wheel",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Add basic-pitch's note model (its PyPI wheel, basic-pitch 0.4.0) as a pitch branch "
    "that weighs in on one voice or several; needs --several-data.",
)
@click.option(
    "--several-data",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A corpus manifest whose sung snippets (every voice resung or synthetic singing) the "
    "pitch branch's several fusion is fitted on: held out from the RUNs' training.",
)
@click.option(
    "--base",
    type=click.Path(file_okay=False, path_type=Path),
    help="A voice-gated bundle whose gate, branches (with their fusions) and separator are kept "
    "unchanged, in each precision it holds; the RUNs (reference=window) replace its who-members, "
    "and --voice-gate runs its gate.",
)
@_verbosity
def export_command(
    runs,
    output,
    weights,
    fp16,
    fp16_only,
    int8_data,
    no_separator,
    voice_runs,
    music_weights,
    fusion_data,
    pitch_wheel,
    several_data,
    base,
):
    """Export trained RUNs as one ONNX ensemble in a checksummed model bundle."""
    import numpy as np

    from vocalstream.export.bundle import export_bundle
    from vocalstream.export.rebase import rebase_bundle
    from vocalstream.train.run import calibration_features

    parsed = None
    if weights:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError as error:
            message = f"--weights takes numbers like 0.5,0.5, got {weights!r}"
            raise VocalstreamError(message) from error
    if base is not None:
        chosen = {
            "--music-branch": music_weights,
            "--fusion-data": fusion_data,
            "--pitch-branch": pitch_wheel,
            "--several-data": several_data,
            "--fp16": fp16,
            "--fp16-only": fp16_only,
            "--no-separator": no_separator,
        }
        clashes = [name for name, value in chosen.items() if value]
        if clashes:
            raise VocalstreamError(f"--base keeps the base bundle's own: drop {', '.join(clashes)}")
    calibration = None
    if int8_data:  # a gated bundle's channels: the runs' features, then the gate's
        parts = [calibration_features(run, int8_data) for run in (runs[0], *voice_runs[:1])]
        calibration = np.concatenate(parts, axis=1)
    if base is not None:
        manifest = rebase_bundle(list(runs), base, output, parsed, calibration, list(voice_runs))
        _log_bundle(output, manifest)
        return
    manifest = export_bundle(
        list(runs),
        output,
        parsed,
        fp16 or fp16_only,
        not no_separator,
        fp32=not fp16_only,
        int8_calibration=calibration,
        voice_runs=list(voice_runs),
        music_weights=music_weights,
        fusion_data=fusion_data,
        pitch_wheel=pitch_wheel,
        several_data=several_data,
    )
    _log_bundle(output, manifest)


def _log_bundle(output: Path, manifest: dict) -> None:
    for name in manifest["files"]:
        log.info("%s: %.1f MB", output / name, (output / name).stat().st_size / 1e6)
    members = ", ".join(f"{m['name']} x{m['weight']:.3g}" for m in manifest["members"])
    log.info("wrote bundle %s: %s", output, members)


_model_option = click.option(
    "--model",
    "model",
    type=click.Path(file_okay=False, path_type=Path),
    help="A model bundle from vocalstream export (default: the bundled model).",
)


def _pcm_options(command):
    for option in reversed(
        [
            click.option(
                "--input-rate",
                type=int,
                default=44100,
                show_default=True,
                help="Sample rate of raw PCM on standard input (INPUT '-').",
            ),
            click.option(
                "--input-channels",
                type=int,
                default=2,
                show_default=True,
                help="Channels of raw PCM on standard input.",
            ),
            click.option(
                "--input-format",
                type=click.Choice(["f32le", "s16le", "s32le"]),
                default="f32le",
                show_default=True,
                help="Sample format of raw PCM.",
            ),
        ]
    ):
        command = option(command)
    return command


def _hop(value: float) -> float:
    if not 0 < value <= WINDOW_SECONDS:
        raise VocalstreamError(f"--hop must lie in (0, {WINDOW_SECONDS}] seconds")
    return value


def _load_model(model: Path | None, compute: str):
    from vocalstream.api import load_model

    started = time.perf_counter()
    loaded = load_model(model, device=compute)
    log.debug(
        "model loaded in %.2f s; onnxruntime runs it on %s",
        time.perf_counter() - started,
        loaded.provider,
    )
    return loaded


def _stdin_blocks(rate: int, channels: int, pcm_format: str):
    from vocalstream.api import CHANNELS, RATE
    from vocalstream.stream.sources import pcm_blocks

    if rate <= 0 or channels <= 0:
        raise VocalstreamError("--input-rate and --input-channels must be positive")
    return pcm_blocks(sys.stdin.buffer, rate, channels, pcm_format, RATE, CHANNELS)


@main.command(name="file")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@_model_option
@click.option(
    "-f",
    "--format",
    "output_format",
    default="json",
    show_default=True,
    type=click.Choice(["json", "jsonl", "csv", "rttm", "textgrid"]),
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write here instead of standard output (a folder for several TextGrids).",
)
@click.option("--windows", is_flag=True, help="The raw windows instead of the smoothed timeline.")
@click.option(
    "--hop",
    type=float,
    default=FILE_HOP_SECONDS,
    show_default=True,
    help="Seconds between window starts (windows are 3 s).",
)
@click.option(
    "--smoothing",
    type=click.Choice(["median", "hysteresis", "none"]),
    default="median",
    show_default=True,
)
@click.option("--median-windows", type=int, default=3, show_default=True)
@click.option(
    "--enter",
    type=float,
    default=0.6,
    show_default=True,
    help="Hysteresis: probability a new class needs to take over.",
)
@click.option(
    "--exit",
    "exit_",
    type=float,
    default=0.4,
    show_default=True,
    help="Hysteresis: the current class holds until it falls below this.",
)
@click.option(
    "--min-duration",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds: shorter segments join the one before.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the timeline of the one INPUT here (.png, .svg or .pdf).",
)
@_pcm_options
@_compute_option(aliases=())
@_verbosity
def file_command(
    inputs,
    model,
    output_format,
    output,
    windows,
    hop,
    smoothing,
    median_windows,
    enter,
    exit_,
    min_duration,
    plot,
    input_rate,
    input_channels,
    input_format,
    compute,
):
    """A timeline of no voice / male / female / several voices for each INPUT ('-': raw PCM on
    standard input). The model is loaded once for all inputs."""
    from vocalstream import audio
    from vocalstream.files import atomic_path
    from vocalstream.stream.formats import render
    from vocalstream.stream.timeline import Smoothing

    _hop(hop)
    try:
        smooth = Smoothing(smoothing, median_windows, enter, exit_, min_duration)
    except ValueError as error:
        raise VocalstreamError(str(error)) from error
    several_grids = output_format == "textgrid" and len(inputs) > 1
    if several_grids and (output is None or output.suffix):
        raise VocalstreamError("several inputs as TextGrid need -o FOLDER (one file each)")
    if output_format in ("rttm", "textgrid") and windows:
        raise VocalstreamError(f"{output_format} holds segments only; drop --windows")
    if plot is not None:
        from vocalstream.catalog.plot import check_destination

        if len(inputs) != 1:
            raise VocalstreamError("--plot draws one INPUT; for many use vocalstream batch --plots")
        check_destination(plot)
    for name in inputs:
        if name != "-":
            audio.duration(name)  # every input readable before any model loads
    loaded = _load_model(model, compute)
    results = []
    for name in inputs:
        started = time.perf_counter()
        source = _stdin_blocks(input_rate, input_channels, input_format) if name == "-" else name
        analysis = loaded.analyse(source, hop=hop, smoothing=smooth, name=name)
        elapsed = time.perf_counter() - started
        log.debug(
            "%s: %.1f s of audio in %.2f s (%.0fx real time)",
            name,
            analysis.duration,
            elapsed,
            analysis.duration / elapsed,
        )
        results.append(analysis.to_dict())
        if plot is not None:
            from vocalstream.catalog.plot import draw_timeline
            from vocalstream.catalog.summary import summarise

            draw_timeline(analysis, plot, summarise(analysis)["tag"])
            log.info("drew %s", plot)
    description = {
        "bundle": str(loaded.bundle.folder),
        "provider": loaded.provider,
        "labels": list(loaded.labels),
    }
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
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The results file: one JSON line per file, appended as each file completes.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue --output: skip files analysed there before (same path, size and mtime); "
    "failed files are retried.",
)
@click.option(
    "--summary",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write one CSV row per file here.",
)
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder for one timeline picture (PNG) per file.",
)
@click.option("--windows", is_flag=True, help="Records carry the per-window results too.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes, each with one model (default 1; with --ray: the cluster's CPUs "
    "divided by --threads).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Threads per worker (default: the cores divided by --jobs; 1 on Ray).",
)
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS|auto",
    help="Run the workers as actors on this Ray cluster (pip install 'vocalstream[ray]').",
)
@_model_option
@click.option(
    "--hop",
    type=float,
    default=FILE_HOP_SECONDS,
    show_default=True,
    help="Seconds between window starts (windows are 3 s).",
)
@_compute_option(aliases=())
@_verbosity
def batch(
    inputs, output, resume, summary, plots, windows, jobs, threads, ray_address, model, hop, compute
):
    """Analyse whole libraries: every audio file of the INPUTs (files, folders searched
    recursively, or .txt/.lst files listing paths) gets one JSON line in --output with its
    timeline and summary. A file that cannot be analysed gets an error record, the batch goes
    on, and the exit status is 1 at the end."""
    from vocalstream.catalog.execute import run_batch
    from vocalstream.catalog.worker import Settings

    _hop(hop)
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        None if model is None else str(model.resolve()),
        compute,
        threads,
        hop,
        windows,
        None if plots is None else str(plots.resolve()),
    )
    total, failed = run_batch(
        list(inputs), output, settings, resume, jobs, ray_address, summary, _progress()
    )
    if failed:
        raise VocalstreamError(
            f"{failed} of {total} files failed: see their error records in {output}"
        )


def _live_options(on_device_loss: str):
    """The input and model options of listen and serve."""

    def decorate(command):
        for option in reversed(
            [
                click.argument("source", metavar="[INPUT]", required=False),
                _model_option,
                click.option(
                    "--input-device",
                    "input_device",
                    cls=_Option,
                    hidden_aliases=("--device",),
                    help="Capture device: index or name substring (default: the system's).",
                ),
                click.option("--list-devices", is_flag=True, help="List capture devices and exit."),
                click.option(
                    "--on-device-loss",
                    type=click.Choice(["wait", "exit"]),
                    default=on_device_loss,
                    show_default=True,
                    help="When the capture device goes away: exit with an error, or wait for "
                    "it to come back (health says degraded meanwhile).",
                ),
                click.option(
                    "--hop",
                    type=float,
                    default=LISTEN_HOP_SECONDS,
                    show_default=True,
                    help="Seconds between window starts (windows are 3 s).",
                ),
                click.option(
                    "--duration", type=float, help="Stop after this many seconds of audio."
                ),
                _pcm_options,
                _compute_option(aliases=()),
                _verbosity,
            ]
        ):
            command = option(command)
        return command

    return decorate


@main.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append the JSON lines here instead of standard output.",
)
@_live_options(on_device_loss="exit")
def listen(output, **live):
    """Classify live audio: one JSON line per window, from the microphone (or raw PCM on
    standard input with INPUT '-'), until interrupted, the input ends or --duration passes.
    SIGHUP reopens --output (for log rotation)."""
    import signal

    from vocalstream.files import LineLog
    from vocalstream.stream.timeline import window_event

    if live.pop("list_devices"):
        _list_devices()
        return
    capture = _capture(**live)  # before --output is created: a bad model leaves no file behind
    out = LineLog(output) if output else _StandardOutput()
    _handle_signals(capture, out if output else None)
    log.debug("listening: a window every %g s", capture.hop)
    try:
        capture.run(lambda result: out.write(json.dumps(window_event(result))))
    finally:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        out.close()
    health = capture.health
    counters = {
        "windows": health.windows,
        "dropped": health.dropped,
        "overruns": health.overruns,
        "provider": capture.model.provider,
    }
    log.info(json.dumps({"health": counters}))


class _StandardOutput:
    def write(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        pass


def _list_devices() -> None:
    from vocalstream.stream.sources import input_devices

    for device in input_devices():
        click.echo(
            f"{device['index']}: {device['name']} ({device['channels']} ch, "
            f"{device['default_rate']:.0f} Hz)"
        )


def _capture(
    source,
    model,
    input_device,
    hop,
    on_device_loss,
    duration,
    input_rate,
    input_channels,
    input_format,
    compute,
):
    """The live pipeline of listen and serve: the microphone, or raw PCM with INPUT '-'."""
    from vocalstream.service.capture import Capture

    _hop(hop)
    if duration is not None and duration <= 0:
        raise VocalstreamError("--duration must be positive")
    if source not in (None, "-"):
        raise VocalstreamError(
            "live input is the microphone, or raw PCM with INPUT '-'; "
            "for files use vocalstream file"
        )
    blocks = None
    if source == "-":
        blocks = _stdin_blocks(input_rate, input_channels, input_format)
    numbered = input_device is not None and input_device.isdigit()
    device = int(input_device) if numbered else input_device
    loaded = _load_model(model, compute)
    return Capture(loaded, hop, device, blocks, on_device_loss, duration)


def _handle_signals(capture, output) -> None:
    """SIGINT and SIGTERM finish the windows in flight and stop; SIGHUP reopens the output
    file, if there is one."""
    import signal

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: capture.stop())
    signal.signal(signal.SIGHUP, lambda *_: output is not None and output.reopen())


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback serves the events, unauthenticated, to "
    "whoever can reach it (docs/service.md).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="0: any free port.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also append every event, as a JSON line, to this file (SIGHUP reopens it).",
)
@click.option(
    "--client-backlog",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Events a client may fall behind before it is dropped.",
)
@_live_options(on_device_loss="wait")
def serve(host, port, output, client_backlog, **live):
    """Run one live pipeline and serve its events over HTTP: the live page at /, Server-Sent
    Events at /events, a WebSocket at /ws, /healthz and /metrics. Input as for listen. SIGINT
    and SIGTERM deliver the windows in flight and exit 0; SIGHUP reopens --output."""
    from vocalstream.files import LineLog
    from vocalstream.service.server import Service, bind, is_loopback

    if live.pop("list_devices"):
        _list_devices()
        return
    listener = bind(host, port)
    if not is_loopback(host):
        log.warning(
            "serving beyond this machine on %s: anyone who can reach it sees the events", host
        )
    capture = _capture(**live)
    out = LineLog(output) if output else None
    service = Service(capture, capture.model.provider, listener, client_backlog, out)
    _handle_signals(capture, out)
    try:
        service.run()
    finally:
        if out is not None:
            out.close()
    health = dataclasses.asdict(capture.health)
    log.info(json.dumps({"health": {**health, "clients_dropped": service.hub.evicted}}))
