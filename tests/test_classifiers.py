"""The classifier networks: layout, input normalisation, ensemble, a training step, ONNX export."""

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vocalstream.audio import MEL_MEAN, MEL_STD, N_MELS, WINDOW_FRAMES
from vocalstream.models.classifiers import (
    ARCHITECTURES,
    CNN4,
    Ensemble,
    Normalise,
    build,
    resnet18,
    resnet34,
)
from vocalstream.models.labels import LABELS, NUM_CLASSES

# Measured; they pin the architectures down. The ResNets match torchvision's resnet18 (11,689,512)
# and resnet34 (21,797,672) with the first conv on 1 channel (3x3 for resnet34) and a 4-class fc.
PARAMETERS = {"cnn4": 1_146_852, "resnet34": 21_277_892, "resnet18": 11_172_292}


def log_mel(batch: int, seed: int = 0) -> torch.Tensor:
    """Random features in the front-end's range: dB relative to the window's max, [-80, 0]."""
    generator = torch.Generator().manual_seed(seed)
    return -80.0 * torch.rand(batch, 1, N_MELS, WINDOW_FRAMES, generator=generator)


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(module for module in model.modules() if isinstance(module, nn.Conv2d))


def test_labels_cover_the_classes():
    assert len(LABELS) == NUM_CLASSES == 4
    assert LABELS == ("no_voice", "male", "female", "several")


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_logits_shape_and_normalised_input(name):
    torch.manual_seed(0)
    model = build(name).eval()
    features = log_mel(2)
    seen = []
    first_conv(model).register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        logits = model(features)
    assert logits.shape == (2, NUM_CLASSES)
    assert torch.isfinite(logits).all()
    # The network itself standardises the raw dB features before its first layer.
    torch.testing.assert_close(seen[0], (features - MEL_MEAN) / MEL_STD)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_parameter_counts(name):
    assert sum(p.numel() for p in build(name).parameters()) == PARAMETERS[name]


def test_normalise_output():
    raw = torch.tensor([MEL_MEAN, MEL_MEAN + MEL_STD, MEL_MEAN - 2 * MEL_STD, 0.0, -80.0])
    expected = torch.tensor([0.0, 1.0, -2.0, -MEL_MEAN / MEL_STD, (-80.0 - MEL_MEAN) / MEL_STD])
    torch.testing.assert_close(Normalise()(raw), expected)
    # The constants come from vocalstream.audio, not from checkpoints.
    assert not any("normalise" in key for key in build("resnet18").state_dict())


def test_cnn4_layout():
    model = CNN4()
    assert CNN4.FLAT_FEATURES == model.fc1.in_features == 128 * 8 * 8 == 8192
    assert [block[0].out_channels for block in model.features] == [16, 32, 64, 128]
    assert model.fc2.out_features == NUM_CLASSES


def test_cnn4_refuses_other_window_sizes():
    with pytest.raises(ValueError, match="8192"), torch.no_grad():
        CNN4().eval()(-80.0 * torch.rand(1, 1, N_MELS, 2 * WINDOW_FRAMES))


@pytest.mark.parametrize(
    ("factory", "kernel", "stride", "padding", "blocks"),
    [(resnet34, 3, 1, 1, [3, 4, 6, 3]), (resnet18, 7, 2, 3, [2, 2, 2, 2])],
)
def test_resnet_layout(factory, kernel, stride, padding, blocks):
    model = factory()
    conv = model.conv1
    assert conv.in_channels == 1 and conv.out_channels == 64
    assert (conv.kernel_size, conv.stride, conv.padding) == (
        (kernel, kernel),
        (stride, stride),
        (padding, padding),
    )
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert [len(stage) for stage in stages] == blocks
    assert [stage[0].conv1.stride[0] for stage in stages] == [1, 2, 2, 2]
    assert model.fc.in_features == 512 and model.fc.out_features == NUM_CLASSES


def test_ensemble_probabilities():
    torch.manual_seed(0)
    first, second = CNN4().eval(), CNN4().eval()
    features = log_mel(3)
    with torch.no_grad():
        mixed = Ensemble([first, second], [0.5, 0.5])(features)
        only_first = Ensemble([first, second], [1.0, 0.0])(features)
        expected_first = torch.softmax(first(features), dim=1)
        expected_mixed = 0.5 * expected_first + 0.5 * torch.softmax(second(features), dim=1)
    assert mixed.shape == (3, NUM_CLASSES)
    torch.testing.assert_close(mixed.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(mixed, expected_mixed)
    torch.testing.assert_close(only_first, expected_first)


@pytest.mark.parametrize(
    ("members", "weights", "message"),
    [
        (0, [], "at least one member"),
        (2, [1.0], "one weight per member"),
        (1, [0.5, 0.5], "one weight per member"),
        (2, [0.7, 0.7], "sum to 1"),
        (2, [0.5, 0.4999], "sum to 1"),
        (2, [1.5, -0.5], "non-negative"),
        (2, [math.nan, 1.0], "non-negative"),
    ],
)
def test_ensemble_refuses_invalid_weights(members, weights, message):
    with pytest.raises(ValueError, match=message):
        Ensemble([nn.Identity() for _ in range(members)], weights)


def test_ensemble_accepts_weights_summing_to_one_within_tolerance():
    Ensemble([nn.Identity()] * 3, [0.1, 0.2, 0.7 + 5e-7])


def test_build_refuses_unknown_names():
    with pytest.raises(ValueError, match="cnn4, resnet34, resnet18"):
        build("nope")


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_one_sgd_step_lowers_the_loss(name):
    torch.manual_seed(0)
    model = build(name).train()
    features, labels = log_mel(2), torch.tensor([1, 2])
    if name != "cnn4":
        # The ResNets take any size (global average pool); a quarter of the window keeps this fast.
        features = features[:, :, : N_MELS // 2, : WINDOW_FRAMES // 2]
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(features), labels)
    optimiser.zero_grad()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    optimiser.step()
    with torch.no_grad():
        after = F.cross_entropy(model(features), labels)
    assert after < loss


def test_ensemble_onnx_export_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = Ensemble([CNN4(), resnet34()], [0.5, 0.5]).eval()
    path = tmp_path / "ensemble.onnx"
    # A batch-1 example would fix the batch size at 1. optimize=False: the exporter's optimiser
    # corrupts multi-network graphs with this torch / onnxscript (see export/separator.py).
    torch.onnx.export(
        model,
        (log_mel(2),),
        path,
        dynamo=True,
        opset_version=18,
        optimize=False,
        external_data=False,
        dynamic_shapes={"features": {0: torch.export.Dim("batch", min=1, max=256)}},
        input_names=["features"],
        output_names=["probabilities"],
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    features = log_mel(5)
    with torch.no_grad():
        expected = model(features).numpy()
    for batch in (1, 5):  # rows are independent in eval mode: batch 1 is the first row
        (actual,) = session.run(None, {"features": features[:batch].numpy()})
        assert actual.shape == (batch, NUM_CLASSES)
        assert np.abs(actual - expected[:batch]).max() < 1e-4
