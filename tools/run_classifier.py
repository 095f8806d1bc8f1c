"""Run one ONNX classifier graph on saved features, on one thread, with nothing but onnxruntime.

python tools/run_classifier.py GRAPH FEATURES.npy OUT.npy

Small on purpose: it is what `qemu-x86_64 -cpu Haswell` runs to show how a graph answers on a
processor without VNNI (bench/processors.py, tests/test_default_model.py), where importing
vocalstream itself would take minutes.
"""

import sys

import numpy as np
import onnxruntime as ort


def main(graph: str, inputs: str, outputs: str) -> None:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    features = np.load(inputs)
    name = session.get_inputs()[0].name
    parts = [
        session.run(None, {name: features[i : i + 16]})[0] for i in range(0, len(features), 16)
    ]
    np.save(outputs, np.concatenate(parts))


if __name__ == "__main__":
    main(*sys.argv[1:4])
