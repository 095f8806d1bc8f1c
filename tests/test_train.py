"""`vocalstream train`, `evaluate` and `predict` end to end on a tiny corpus of real audio."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tiny_corpus
import torch

from vocalstream.train.engine import Split, train_model
from vocalstream.train.features import FeatureCache
from vocalstream.train.recipe import load_recipe

NO_AUGMENTATION = {
    "mixup_alpha": 0.0,
    "time_mask_p": 0.0,
    "frequency_mask_p": 0.0,
    "reverse_p": 0.0,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus.build(tmp_path_factory.mktemp("corpus"))


def command(*args, cache, program="vocalstream", **kwargs) -> subprocess.Popen:
    env = {**os.environ, "VOCALSTREAM_CACHE": str(cache.parent), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [f"{sys.prefix}/bin/{program}", *map(str, args)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def run(*args, cache, program="vocalstream") -> subprocess.CompletedProcess:
    process = command(*args, cache=cache, program=program)
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("recipe", ["cnn4", "resnet34", "seed000-ensemble", "resnet18x8"])
def test_each_recipe_trains_end_to_end(tmp_path, corpus, separator_cache, recipe):
    out = tmp_path / "run"
    result = run(
        "train",
        "--recipe",
        recipe,
        "--data",
        corpus,
        "--out",
        out,
        "--set",
        "epochs=1",
        *(["--feature-jobs", "2"] if recipe == "seed000-ensemble" else []),
        cache=separator_cache,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "run.json").read_text())
    expected = {"cnn4": 1, "resnet34": 1, "seed000-ensemble": 2, "resnet18x8": 8}[recipe]
    assert len(summary["members"]) == expected and summary["separation"] is True
    assert abs(sum(m["weight"] for m in summary["members"]) - 1.0) < 1e-9
    assert 0.0 <= summary["validation"]["accuracy"] <= 1.0
    for member in summary["members"]:
        folder = out / "members" / member["name"]
        for name in ("best.pt", "checkpoint.pt", "curves.png", "confusion.png"):
            assert (folder / name).is_file(), name
        assert len((folder / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.fixture(scope="module")
def mix_features(corpus, tmp_path_factory):
    from vocalstream.train import data

    examples = data.read_seed_folder(corpus)
    cache = FeatureCache(tmp_path_factory.mktemp("features"), estimator=None)
    features = torch.from_numpy(cache.features([e.path for e in examples]))
    labels = torch.tensor([e.label for e in examples])
    return Split(features, labels, tuple(data.class_weights(examples)))


def test_features_in_worker_processes_match_and_are_kept(tmp_path, corpus, separator_cache):
    from vocalstream.inference.separator import load_estimator
    from vocalstream.train import data

    paths = [e.path for e in data.read_seed_folder(corpus)][:6]
    expected = FeatureCache(tmp_path / "one", load_estimator("onnx", "cpu")).features(paths)
    cache = FeatureCache(tmp_path / "two", load_estimator("onnx", "cpu"))
    np.testing.assert_allclose(cache.features(paths, jobs=2), expected, atol=1e-3)
    cache.estimator = None  # anything computed again now would be of the mix, not the vocals
    np.testing.assert_allclose(cache.features(paths), expected, atol=1e-3)
    assert not np.allclose(FeatureCache(tmp_path / "mix", None).features(paths), expected)


def test_one_separation_fills_the_window_and_mix_caches(tmp_path, corpus, separator_cache):
    from vocalstream.inference.separator import load_estimator
    from vocalstream.train import data

    paths = [e.path for e in data.read_seed_folder(corpus)][:4]
    estimator = load_estimator("onnx", "cpu")
    window = FeatureCache(tmp_path / "shared", estimator, reference="window").features(paths)
    mix = FeatureCache(tmp_path / "shared", estimator, reference="mix")
    mix.estimator = None  # anything computed again now would be of the mix, not the vocals
    expected = FeatureCache(tmp_path / "apart", estimator, reference="mix").features(paths)
    np.testing.assert_array_equal(mix.features(paths), expected)
    assert not np.allclose(window, expected)  # the two references are different features


@pytest.mark.parametrize("architecture", ["cnn4", "resnet34", "resnet18"])
def test_loss_falls(tmp_path, mix_features, architecture):
    recipe = load_recipe(
        "cnn4",
        {
            **NO_AUGMENTATION,
            "architecture": architecture,
            "epochs": 3,
            "batch_size": 8,
            "milestones": [],
        },
    )
    train_model(recipe, mix_features, mix_features, tmp_path, log=lambda m: None, progress=False)
    losses = [json.loads(line)["train_loss"] for line in (tmp_path / "metrics.jsonl").open()]
    assert losses[-1] < losses[0], losses


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, corpus, separator_cache):
    arguments = [
        "train",
        "--recipe",
        "cnn4",
        "--data",
        corpus,
        "--no-separation",
        "--set",
        "epochs=3",
        "--device",
        "cpu",
    ]
    whole = run(*arguments, "--out", tmp_path / "whole", cache=separator_cache)
    assert whole.returncode == 0, whole.stderr

    metrics = tmp_path / "killed" / "members" / "cnn4" / "metrics.jsonl"
    process = command(*arguments, "--out", tmp_path / "killed", cache=separator_cache)
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        assert process.poll() is None and time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = run(*arguments, "--out", tmp_path / "killed", "--resume", cache=separator_cache)
    assert resumed.returncode == 0 and "resuming after epoch" in resumed.stderr, resumed.stderr

    epochs = [json.loads(line)["epoch"] for line in metrics.open()]
    assert epochs == [1, 2, 3]
    final = [
        torch.load(tmp_path / name / "members/cnn4/checkpoint.pt", weights_only=False)["model"]
        for name in ("whole", "killed")
    ]
    for key in final[0]:
        assert torch.equal(final[0][key], final[1][key]), key


def test_two_process_ddp_ends_with_identical_weights(tmp_path, corpus, separator_cache):
    result = run(
        "--nproc_per_node=2",
        "--standalone",
        "--no-python",
        f"{sys.prefix}/bin/vocalstream",
        "train",
        "--recipe",
        "cnn4",
        "--data",
        corpus,
        "--no-separation",
        "--set",
        "epochs=1",
        "--out",
        tmp_path / "ddp",
        "--device",
        "cpu",
        cache=separator_cache,
        program="torchrun",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert summary["members"][0]["best"]["ranks_in_sync"] is True


def test_evaluate_and_predict(tmp_path, corpus, separator_cache):
    out = tmp_path / "run"
    trained = run(
        "train",
        "--recipe",
        "cnn4",
        "--data",
        corpus,
        "--no-separation",
        "--set",
        "epochs=1",
        "--out",
        out,
        cache=separator_cache,
    )
    assert trained.returncode == 0, trained.stderr
    report = run("evaluate", out, "--data", corpus / "manifest.csv", cache=separator_cache)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith("accuracy ") and "confusion" in report.stdout
    predictions = tmp_path / "predictions.csv"
    predicted = run("predict", corpus, "-o", predictions, "--model", out, cache=separator_cache)
    assert predicted.returncode == 0, predicted.stderr
    lines = predictions.read_text().splitlines()
    assert lines[0] == "id,category" and len(lines) == 33
    assert [line.split(",")[0] for line in lines[1:]] == [str(n) for n in range(32)]
    assert {line.split(",")[1] for line in lines[1:]} <= {"0", "1", "2", "3"}


def test_validation_on_a_given_split(tmp_path, corpus, separator_cache):
    """--validation-data replaces the recipe's split: a corpus split by speaker stays as built."""
    header, *rows = (corpus / "manifest.csv").read_text().splitlines()
    for name, part in (("fit.csv", rows[:24]), ("held.csv", rows[24:])):
        lines = [header] + [
            row.replace(row.split(",")[0], str(corpus / row.split(",")[0]), 1) for row in part
        ]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    result = run(
        "train",
        "--recipe",
        "cnn4",
        "--no-separation",
        "--set",
        "epochs=1",
        "--data",
        tmp_path / "fit.csv",
        "--validation-data",
        tmp_path / "held.csv",
        "--out",
        out,
        cache=separator_cache,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "run.json").read_text())
    assert sum(summary["data"]["train"].values()) == 24
    assert sum(summary["data"]["validation"].values()) == 8
    assert (
        sum(summary["validation"]["confusion"][0])
        + sum(sum(row) for row in summary["validation"]["confusion"][1:])
        == 8
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--recipe", "nope"], "no recipe 'nope'"),
        (["--recipe", "cnn4", "--set", "epoch=3"], "unknown recipe field 'epoch'"),
        (["--recipe", "cnn4", "--labels", "{short}"], "labels"),
        (["--recipe", "cnn4", "--set", "reference=both"], "reference must be window or mix"),
    ],
)
def test_bad_training_input_is_one_line(tmp_path, corpus, separator_cache, arguments, message):
    short = tmp_path / "labels.txt"
    short.write_text("0\n1\n")
    arguments = [a.replace("{short}", str(short)) for a in arguments]
    result = run(
        "train", *arguments, "--data", corpus, "--out", tmp_path / "run", cache=separator_cache
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
