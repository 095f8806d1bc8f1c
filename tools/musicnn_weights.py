"""Convert musicnn's MTT_musicnn checkpoint (TensorFlow, from its PyPI wheel) to the torch layout
of vocalstream.models.musicnn, with the wheel's licence notice, and record the original model's
outputs as a parity reference.

Runs ONLY in the separate reference virtual environment (tensorflow 2.12, see
tools/spleeter_official.py), with the wheel unpacked beside it (no network needed afterwards):

    pip download musicnn==0.1.0 --no-deps -d /tmp/musicnn
    unzip /tmp/musicnn/*.whl -d /tmp/musicnn
    /work/spleeter-venv/bin/python tools/musicnn_weights.py /tmp/musicnn/musicnn/MTT_musicnn \
        --out musicnn-mtt.npz --reference tests/data/musicnn/reference.npz --mel MEL.npy

MEL.npy is a [N, frames, 96] batch of the model's input; the reference stores it with the TF
graph's tag logits and penultimate embedding.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MIDEND_CONVS = ("conv2d_5", "conv2d_6", "conv2d_7")


def _bn(tf_name: str, torch_name: str, reader) -> dict[str, np.ndarray]:
    return {
        f"{torch_name}.weight": reader.get_tensor(f"{tf_name}/gamma"),
        f"{torch_name}.bias": reader.get_tensor(f"{tf_name}/beta"),
        f"{torch_name}.running_mean": reader.get_tensor(f"{tf_name}/moving_mean"),
        f"{torch_name}.running_var": reader.get_tensor(f"{tf_name}/moving_variance"),
    }


def convert(reader) -> dict[str, np.ndarray]:
    """TF variable names follow graph-construction order: input norm, two timbral and three
    temporal convs, three mid-end convs, the pooled-feature norm, then the dense layers."""
    state = _bn("batch_normalization", "input_norm", reader)
    fronts = [("timbral", i) for i in range(2)] + [("temporal", i) for i in range(3)]
    for index, (kind, i) in enumerate(fronts):
        name = "conv2d" if index == 0 else f"conv2d_{index}"
        state[f"{kind}.{i}.weight"] = reader.get_tensor(f"{name}/kernel").transpose(3, 2, 0, 1)
        state[f"{kind}.{i}.bias"] = reader.get_tensor(f"{name}/bias")
        state.update(_bn(f"batch_normalization_{index + 1}", f"{kind}_norm.{i}", reader))
    for i, name in enumerate(MIDEND_CONVS):
        kernel = reader.get_tensor(f"{name}/kernel")  # [7, C_in, 1, C_out]
        state[f"midend.{i}.weight"] = kernel[:, :, 0, :].transpose(2, 1, 0)
        state[f"midend.{i}.bias"] = reader.get_tensor(f"{name}/bias")
        state.update(_bn(f"batch_normalization_{i + 6}", f"midend_norm.{i}", reader))
    state.update(_bn("batch_normalization_9", "pool_norm", reader))
    state["dense.weight"] = reader.get_tensor("dense/kernel").T
    state["dense.bias"] = reader.get_tensor("dense/bias")
    state.update(_bn("batch_normalization_10", "dense_norm", reader))
    state["tags.weight"] = reader.get_tensor("dense_1/kernel").T
    state["tags.bias"] = reader.get_tensor("dense_1/bias")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def reference(checkpoint: Path, mel: np.ndarray) -> dict[str, np.ndarray]:
    """The original graph (musicnn's own model code) on `mel`."""
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, mel.shape[1], mel.shape[2]])
        training = tf.compat.v1.placeholder(tf.bool)
        outputs = models.define_model(x, training, "MTT_musicnn", 50)
    logits, penultimate = outputs[0], outputs[-1]
    with tf.compat.v1.Session() as session:
        tf.compat.v1.train.Saver().restore(session, str(checkpoint) + "/")
        values = session.run([logits, penultimate], feed_dict={x: mel, training: False})
    return {"mel": mel, "logits": values[0], "embedding": values[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="the wheel's musicnn/MTT_musicnn folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--mel", type=Path, help="input batch for --reference")
    arguments = parser.parse_args()
    import sys

    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(str(arguments.checkpoint) + "/")
    # The ISC licence asks for its notice in every copy: the weights carry it into the bundle.
    (notice,) = arguments.checkpoint.parents[1].glob("musicnn-*.dist-info/LICENSE.md")
    np.savez(arguments.out, licence=np.array(notice.read_text()), **convert(reader))
    if arguments.reference:
        sys.path.insert(0, str(arguments.checkpoint.parents[1]))
        arguments.reference.parent.mkdir(parents=True, exist_ok=True)
        np.savez(arguments.reference, **reference(arguments.checkpoint, np.load(arguments.mel)))


if __name__ == "__main__":
    main()
