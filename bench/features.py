"""Training features' throughput: separation and log-mel of corpus snippets, as `vocalstream
train` computes what its cache lacks, in one process and in worker processes.

    python bench/features.py MANIFEST [--files 200] [--jobs 1 2]

Each setting computes the same --files snippets (the manifest's first) into its own fresh cache,
so every file is separated; the separator graph is built once beforehand. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from vocalstream.inference.separator import DEFAULT_VARIANT, load_estimator
from vocalstream.train.data import read_manifest
from vocalstream.train.features import FeatureCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    arguments = parser.parse_args()
    paths = [e.path for e in read_manifest(arguments.manifest)[: arguments.files]]
    estimator = load_estimator("onnx", "cpu", DEFAULT_VARIANT)
    report = {"files": len(paths), "runs": {}}
    for jobs in arguments.jobs:
        with tempfile.TemporaryDirectory() as directory:
            cache = FeatureCache(directory, estimator, DEFAULT_VARIANT)
            start = time.perf_counter()
            cache.features(paths, jobs=jobs)
            seconds = time.perf_counter() - start
        report["runs"][f"jobs{jobs}"] = {
            "seconds": round(seconds, 1),
            "files_per_second": round(len(paths) / seconds, 2),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
