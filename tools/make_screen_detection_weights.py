"""Writes the screen-detection network (the inferencer's `1/model.onnx`) from seeded weights.

    ./pants run tools/make_screen_detection_weights.py

A tiny but real convolutional classifier (Conv 3x3 -> Relu -> global average pool -> linear ->
softmax) from `pixels` FP32 [1, 3, 32, 32] to `scores` FP32 [1, 3], with weights drawn from a
fixed seed: the same file every run, a few KB, and well under a millisecond per request on a CPU.
It stands in for trained weights, which data scientists would export from their framework.

The file is DVC-tracked: git holds the pointer `model.onnx.dvc`, the bytes live in the repo's
local DVC remote `.dvc-storage/`, and `./pants package` fetches them from there. After changing
the network, track and upload the new bytes, then commit the pointer and the remote's new object:

    M=models/screen_detection/screen_detection_inferencer/1/model.onnx
    ./pants run tools/make_screen_detection_weights.py
    ./pants run 3rdparty/python:dvc-cli -- add $M
    ./pants run 3rdparty/python:dvc-cli -- push
    git add $M.dvc .dvc-storage

and bump `models/screen_detection/screen_detection_pipeline/model_version.txt`: a published
tarball is never overwritten (docs/weights.md).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 20240601
CHANNELS = 8
CLASSES = 3
OUTPUT = "models/screen_detection/screen_detection_inferencer/1/model.onnx"


def build_model() -> onnx.ModelProto:
    rng = np.random.default_rng(SEED)
    initializers = [
        numpy_helper.from_array(
            rng.normal(0.0, 0.3, (CHANNELS, 3, 3, 3)).astype(np.float32), "conv_w"
        ),
        numpy_helper.from_array(rng.normal(0.0, 0.1, CHANNELS).astype(np.float32), "conv_b"),
        numpy_helper.from_array(
            rng.normal(0.0, 0.5, (CHANNELS, CLASSES)).astype(np.float32), "fc_w"
        ),
        numpy_helper.from_array(rng.normal(0.0, 0.1, CLASSES).astype(np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["pixels", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "fc_w", "fc_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "screen_detection",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, CLASSES])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="make_screen_detection_weights",
        opset_imports=[helper.make_opsetid("", 13)],
    )
    model.ir_version = 7  # Loadable by every onnxruntime release since 1.6.
    onnx.checker.check_model(model)
    return model


def main() -> int:
    # `./pants run` runs this in the build root, to which OUTPUT is relative.
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "wb") as f:
        f.write(build_model().SerializeToString())
    print(f"wrote {OUTPUT}")
    print("Track and upload it (see this script's docstring):")
    print(f"  ./pants run 3rdparty/python:dvc-cli -- add {OUTPUT}")
    print("  ./pants run 3rdparty/python:dvc-cli -- push")
    return 0


if __name__ == "__main__":
    sys.exit(main())
