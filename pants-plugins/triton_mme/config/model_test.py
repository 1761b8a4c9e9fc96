from __future__ import annotations

import pytest
from triton_mme.config.model import check_model
from triton_mme.config.parse import parse_model_config

PATH = "models/m/config.pbtxt"


def errors(text: str) -> list[str]:
    return [str(e) for e in check_model(parse_model_config(PATH, text + "\n"))]


# Each case: a config Triton refuses, a close one it accepts, and what the message says.
CASES = [
    (
        'platform: "onnxruntim"',
        'platform: "onnxruntime_onnx"',
        '`platform: "onnxruntim"` is not a platform Triton knows. Did you mean '
        "`onnxruntime_onnx`?",
    ),
    (
        'platform: "onnxruntim"\ndefault_model_filename: "model.onnx"',
        'platform: "onnxruntime_onnx"\ndefault_model_filename: "model.onnx"',
        "is not a platform Triton knows",
    ),
    (
        'platform: "libtorch"',
        'platform: "pytorch_libtorch"',
        "Did you mean `pytorch_libtorch`?",
    ),
    (
        'platform: "tensorrt_plan"\nbackend: "onnxruntime"',
        'platform: "onnxruntime_onnx"\nbackend: "onnxruntime"',
        'runs on the tensorrt backend, but the config sets `backend: "onnxruntime"`',
    ),
    (
        'platform: "ensemble"\nbackend: "python"',
        'platform: "ensemble"',
        "an ensemble has no backend",
    ),
    (
        'backend: "python"\nensemble_scheduling { step [{ model_name: "a" }] }',
        'platform: "ensemble"\nensemble_scheduling { step [{ model_name: "a" }] }',
        '`ensemble_scheduling` is only allowed with `platform: "ensemble"`',
    ),
    (
        'backend: "python"\nmax_batch_size: -1',
        'backend: "python"\nmax_batch_size: 0',
        "max_batch_size is -1",
    ),
    (
        'backend: "python"\ninstance_group [{ kind: KIND_CPU, gpus: [0] }]',
        'backend: "python"\ninstance_group [{ kind: KIND_CPU, count: 2 }]',
        "instance_group 1 has kind KIND_CPU but lists `gpus`",
    ),
    (
        'backend: "python"\ninstance_group [{ kind: KIND_MODEL, gpus: [0] }]',
        'backend: "python"\ninstance_group [{ kind: KIND_MODEL }]',
        "has kind KIND_MODEL but lists `gpus`",
    ),
    (
        'backend: "python"\ninstance_group [{ name: "g", kind: KIND_GPU, gpus: [-1] }]',
        'backend: "python"\ninstance_group [{ name: "g", kind: KIND_GPU, gpus: [0] }]',
        "instance_group 1 (`g`) lists GPU -1: GPU ids are 0 or more.",
    ),
    (
        'platform: "onnxruntime_onnx"\ninstance_group [{ kind: KIND_GPU, profile: ["0"] }]',
        'platform: "tensorrt_plan"\ninstance_group [{ kind: KIND_GPU, profile: ["0"] }]',
        "sets `profile`, which only TensorRT models support",
    ),
    (
        'platform: "tensorrt_plan"\ninstance_group [{ kind: KIND_GPU, profile: ["-1"] }]',
        'platform: "tensorrt_plan"\ninstance_group [{ kind: KIND_GPU, profile: ["1"] }]',
        'has profile "-1"',
    ),
    (
        'backend: "identity"\nruntime: "../dummy_runtime/libtriton_identity.so"',
        'backend: "identity"\nruntime: "libtriton_identity.so"',
        "climbs out of the backend directory",
    ),
]


@pytest.mark.parametrize("refused, accepted, message", CASES)
def test_model_rules(refused: str, accepted: str, message: str) -> None:
    found = errors(refused)
    assert len(found) == 1, found
    assert found[0].startswith(f"{PATH}:")
    assert message in found[0]
    assert errors(accepted) == []


@pytest.mark.parametrize(
    "text",
    [
        # Any platform string goes with a backend Triton does not type-check.
        'backend: "python"\nplatform: "anything"',
        'backend: "openvino"',
        'default_model_filename: "model.xml"\nplatform: "openvino"',
        'runtime: "model.py"\nbackend: "onnxruntime"',
    ],
)
def test_accepted_platforms(text: str) -> None:
    assert errors(text) == []


def test_error_points_at_the_line() -> None:
    (message,) = errors('name: "m"\nbackend: "python"\nmax_batch_size: -2')
    assert message.startswith(f"{PATH}:3: ")
