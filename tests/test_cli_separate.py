"""`vocalstream separate` as a user runs it: real files, a real process, exit codes and messages."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO
from test_separation import sdr

from vocalstream import audio
from vocalstream.inference.separator import torch_estimator
from vocalstream.stream.separation import Separator

SAMPLE = REPO / "samples" / "example.mp3"


def vocalstream(*args, cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "VOCALSTREAM_CACHE": str(cache.parent)}
    return subprocess.run(
        [f"{sys.prefix}/bin/vocalstream", *map(str, args)], capture_output=True, text=True, env=env
    )


@pytest.fixture(scope="module")
def expected_stems() -> np.ndarray:
    return Separator(torch_estimator()).separate(audio.load(SAMPLE, 44100, 2))


def test_separates_the_sample_song(tmp_path, separator_cache, expected_stems):
    output = tmp_path / "vocals.wav"
    run = vocalstream("separate", SAMPLE, "-o", output, "-v", cache=separator_cache)
    assert run.returncode == 0, run.stderr
    assert "separator 2stems: onnxruntime" in run.stderr and f"wrote {output}" in run.stderr
    written, rate = sf.read(output, dtype="float32", always_2d=True)
    assert rate == 44100 and written.shape == (expected_stems.shape[-1], 2)
    assert sdr(expected_stems[0], written.T) >= 30.0  # the vocals, not the band
    assert sdr(expected_stems[1], written.T) < 0.0


def test_accompaniment_with_torch_to_flac(tmp_path, separator_cache, expected_stems):
    output = tmp_path / "band.flac"
    run = vocalstream(
        "separate",
        SAMPLE,
        "-o",
        output,
        "--stem",
        "accompaniment",
        "--backend",
        "torch",
        "--quiet",
        cache=separator_cache,
    )
    assert run.returncode == 0 and run.stdout == ""
    written, _ = sf.read(output, dtype="float32", always_2d=True)
    assert sdr(expected_stems[1], written.T) >= 30.0


def test_mono_input_of_another_rate(tmp_path, separator_cache):
    source = tmp_path / "mono.wav"
    sf.write(source, audio.load(SAMPLE, 16000, 1)[0, : 3 * 16000], 16000)
    run = vocalstream("separate", source, "-o", tmp_path / "v.ogg", cache=separator_cache)
    assert run.returncode == 0, run.stderr
    info = sf.info(tmp_path / "v.ogg")
    assert (info.samplerate, info.channels) == (44100, 2)
    assert abs(info.duration - 3.0) < 0.01


def bad_cases(tmp_path):
    garbage = tmp_path / "noise.mp3"
    garbage.write_bytes(np.random.default_rng(1).bytes(20_000))
    truncated = tmp_path / "cut.mp3"
    truncated.write_bytes(SAMPLE.read_bytes()[:100_000])
    return {
        "truncated input": ([truncated, "-o", tmp_path / "out.wav"], "truncated"),
        "missing input": ([tmp_path / "absent.mp3", "-o", tmp_path / "out.wav"], "no such file"),
        "not audio": ([garbage, "-o", tmp_path / "out.wav"], "not a readable audio file"),
        "unknown output format": ([SAMPLE, "-o", tmp_path / "out.xyz"], "cannot write"),
        "no CUDA": ([SAMPLE, "-o", tmp_path / "out.wav", "--device", "cuda"], "CUDA"),
    }


@pytest.mark.parametrize(
    "case", ["missing input", "not audio", "truncated input", "unknown output format", "no CUDA"]
)
def test_bad_input_is_one_line_and_nothing_written(tmp_path, separator_cache, case):
    arguments, message = bad_cases(tmp_path)[case]
    before = set(tmp_path.iterdir())
    run = vocalstream("separate", *arguments, cache=separator_cache)
    if case == "no CUDA" and run.returncode == 0:
        pytest.skip("this machine has CUDA")
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], run.stderr
    assert "Traceback" not in run.stderr
    assert set(tmp_path.iterdir()) == before
