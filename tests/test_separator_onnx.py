"""The separator graph run by onnxruntime: parity with torch and with official spleeter."""

import os

import numpy as np
import pytest
import torch
from test_separation import CLIPS, REFERENCE, official, sdr

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.inference.separator import OnnxMaskEstimator, cached_separator_path
from vocalstream.models.spleeter import STEMS, load_spleeter
from vocalstream.stream.separation import Separator


@pytest.fixture(scope="module")
def estimator(separator_cache) -> OnnxMaskEstimator:
    return OnnxMaskEstimator(cached_separator_path("2stems"), device="cpu")


def real_magnitudes(frames: int, batch: int) -> torch.Tensor:
    """Stereo magnitudes of real music, [batch, 2, frames, SEPARATION_BINS]."""
    mix = torch.from_numpy(audio.load(REFERENCE / "example.mix.flac", audio.SEPARATION_RATE, 2))
    spectrum = torch.stft(
        mix,
        audio.SEPARATION_N_FFT,
        audio.SEPARATION_HOP,
        window=torch.hann_window(audio.SEPARATION_N_FFT),
        return_complex=True,
    )[:, : audio.SEPARATION_BINS]
    magnitude = spectrum.abs().transpose(1, 2)  # [2, T, BINS]
    starts = np.linspace(0, magnitude.shape[1] - frames, batch).astype(int) if frames < 300 else [0]
    parts = [magnitude[:, s : s + frames] for s in starts]
    parts = [torch.nn.functional.pad(p, (0, 0, 0, frames - p.shape[1])) for p in parts]
    return torch.stack(parts)


@pytest.mark.parametrize(("frames", "batch"), [(64, 1), (192, 3), (512, 1)])
def test_masks_match_torch(estimator, frames, batch):
    magnitude = real_magnitudes(frames, batch)
    with torch.inference_mode():
        expected = load_spleeter()(magnitude)
    masks = estimator(magnitude.numpy())
    assert masks.shape == (magnitude.shape[0], len(STEMS), 2, frames, audio.SEPARATION_BINS)
    assert np.abs(masks - expected.numpy()).max() < 1e-4


def test_vocal_variant_is_the_vocal_networks_own_mask(separator_cache):
    """The cheaper variant: one U-Net, its sigmoid mask, one stem."""
    magnitude = real_magnitudes(192, 2)
    model = load_spleeter()
    with torch.inference_mode():
        expected = model.vocals.mask(magnitude).numpy()
    masks = OnnxMaskEstimator(separator_cache, device="cpu")(magnitude.numpy())
    assert masks.shape == (2, 1, 2, 192, audio.SEPARATION_BINS)
    assert np.abs(masks[:, 0] - expected).max() < 1e-4


@pytest.mark.parametrize("clip", CLIPS)
def test_onnx_separation_matches_official_spleeter(estimator, clip):
    stems = Separator(estimator).separate(audio.load(REFERENCE / f"{clip}.mix.flac", 44100, 2))
    for index, stem in enumerate(STEMS):
        assert sdr(official(clip, stem), stems[index]) >= 30.0


def test_cache_is_built_once(separator_cache, caplog):
    before = os.stat(separator_cache).st_mtime_ns
    assert cached_separator_path() == separator_cache
    assert caplog.records == [] and os.stat(separator_cache).st_mtime_ns == before


def test_corrupt_graph_is_refused(tmp_path, separator_cache):
    damaged = tmp_path / "separator.onnx"
    data = bytearray(separator_cache.read_bytes()[:4096])
    data[100:200] = b"\xff" * 100
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="cannot be loaded"):
        OnnxMaskEstimator(damaged)


def test_cuda_on_a_machine_without_it_is_a_clear_error(separator_cache):
    auto = OnnxMaskEstimator(separator_cache, device="auto")
    if auto.provider == "CUDAExecutionProvider":
        pytest.skip("this machine has a working CUDA provider")
    assert auto.provider == "CPUExecutionProvider"
    with pytest.raises(ModelError, match="CUDA was asked for"):
        OnnxMaskEstimator(separator_cache, device="cuda")
