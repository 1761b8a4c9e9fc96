from __future__ import annotations

import pytest
from triton_mme.config.parse import parse_model_config
from triton_mme.config.tensors import check_batch_tensors, check_tensors

PATH = "models/m/config.pbtxt"


def errors(text: str) -> list[str]:
    config = parse_model_config(PATH, 'backend: "python"\n' + text)
    return [str(e) for e in (*check_tensors(config), *check_batch_tensors(config))]


# Each case: a config Triton refuses, a close one it accepts, and what the message says.
CASES = [
    (
        'input [{ name: "X", dims: [4] }]',
        'input [{ name: "X", data_type: TYPE_FP32, dims: [4] }]',
        "input `X` has no `data_type`",
    ),
    (
        "input [{ data_type: TYPE_FP32, dims: [4] }]",
        'input [{ name: "X", data_type: TYPE_FP32, dims: [4] }]',
        "an input without a name has no `name`",
    ),
    (
        'output [{ name: "Y", data_type: TYPE_FP32 }]',
        'output [{ name: "Y", data_type: TYPE_FP32, dims: [1] }]',
        "output `Y` has no `dims`",
    ),
    (
        'input [{ name: "X", data_type: TYPE_FP32, dims: [0, 3] }]',
        'input [{ name: "X", data_type: TYPE_FP32, dims: [-1, 3] }]',
        "input `X` has dims [0, 3]: every dimension must be >= 1, or -1",
    ),
    (
        'max_batch_size: 0\ninput [{ name: "X", data_type: TYPE_FP32, dims: [1], reshape: { '
        "shape: [] } }]",
        'max_batch_size: 8\ninput [{ name: "X", data_type: TYPE_FP32, dims: [1], '
        "reshape: { shape: [] } }]",
        "has an empty `reshape` in a model with max_batch_size 0",
    ),
    (
        'input [{ name: "X", data_type: TYPE_FP32, dims: [1, 3, 2], reshape: { shape: [5] } }]',
        'input [{ name: "X", data_type: TYPE_FP32, dims: [1, 3, 2], reshape: { shape: [6] } }]',
        "has dims [1, 3, 2] but reshape [5]: they must hold the same number of elements",
    ),
    (
        'input [{ name: "X", data_type: TYPE_FP32, dims: [2, -1], reshape: { shape: [2, 2] } }]',
        'input [{ name: "X", data_type: TYPE_FP32, dims: [2, -1], reshape: { shape: [2, 1, -1] } '
        "}]",
        "they must hold the same number of elements",
    ),
    (
        'input [{ name: "X", data_type: TYPE_FP32, dims: [2, -1], reshape: { shape: [-1, -1] } }]',
        'input [{ name: "X", data_type: TYPE_FP32, dims: [2, 4, -1, 6], reshape: { shape: '
        "[8, -1, 1, 6] } }]",
        "must have the same number of variable (-1) dimensions",
    ),
    (
        'input [{ name: "X", data_type: TYPE_FP32, dims: [2, -1], reshape: { shape: [-1, 2] } }]',
        'input [{ name: "X", data_type: TYPE_FP32, dims: [2, -1], reshape: { shape: [2, -1] } }]',
        "the fixed dimensions between the -1s must hold the same number of elements",
    ),
    (
        'input [{ name: "X", data_type: TYPE_FP32, format: FORMAT_NCHW, dims: [1, 3, 4, 4] }]',
        'input [{ name: "X", data_type: TYPE_FP32, format: FORMAT_NCHW, dims: [3, 4, 4] }]',
        "has `format: FORMAT_NCHW`, which needs exactly 3 dims",
    ),
    (
        'input [{ name: "X", data_type: TYPE_INT32, dims: [1], is_shape_tensor: true }]',
        'input [{ name: "X", data_type: TYPE_INT32, dims: [1] }]',
        "sets `is_shape_tensor: true`, which only TensorRT models",
    ),
]


@pytest.mark.parametrize("refused, accepted, message", CASES)
def test_tensor_rules(refused: str, accepted: str, message: str) -> None:
    found = errors(refused + "\n")
    assert len(found) == 1, found
    assert found[0].startswith(f"{PATH}:")
    assert message in found[0]
    assert errors(accepted + "\n") == []


IO = (
    'input [{ name: "IN", data_type: TYPE_FP32, dims: [-1] }]\n'
    'output [{ name: "OUT", data_type: TYPE_FP32, dims: [-1] }]\n'
)

BATCH_CASES = [
    (
        'batch_input [{ kind: BATCH_ELEMENT_COUNT, target_name: "N", data_type: TYPE_INT32, '
        'source_input: ["IN", "IN"] }]',
        'batch_input [{ kind: BATCH_ELEMENT_COUNT, target_name: "N", data_type: TYPE_INT32, '
        'source_input: ["IN"] }]',
        "batch_input 1 (`BATCH_ELEMENT_COUNT`) has 2 `source_input`s",
    ),
    (
        'batch_input [{ kind: BATCH_ELEMENT_COUNT, target_name: "N", data_type: TYPE_INT32, '
        'source_input: ["INN"] }]',
        'batch_input [{ kind: BATCH_ELEMENT_COUNT, target_name: "N", data_type: TYPE_FP32, '
        'source_input: ["IN"] }]',
        "names `source_input` `INN`, which is not an input of this model. Did you mean `IN`?",
    ),
    (
        'batch_input [{ kind: BATCH_ELEMENT_COUNT, target_name: "N", data_type: TYPE_INT64, '
        'source_input: ["IN"] }]',
        'batch_input [{ kind: BATCH_ELEMENT_COUNT, target_name: "N", data_type: TYPE_INT32, '
        'source_input: ["IN"] }]',
        "has data_type TYPE_INT64: a batch input must be TYPE_INT32 or TYPE_FP32",
    ),
    (
        'batch_output [{ target_name: ["OUTT"], source_input: ["IN"] }]',
        'batch_output [{ target_name: ["OUT"], source_input: ["IN"] }]',
        "names `target_name` `OUTT`, which is not an output of this model. Did you mean `OUT`?",
    ),
    (
        'batch_output [{ target_name: ["OUT", "OUT"], source_input: ["IN"] }]',
        'batch_output [{ target_name: ["OUT"], source_input: ["IN"] }]',
        "names `target_name` `OUT` twice",
    ),
]


@pytest.mark.parametrize("refused, accepted, message", BATCH_CASES)
def test_batch_tensor_rules(refused: str, accepted: str, message: str) -> None:
    found = errors(IO + "max_batch_size: 8\n" + refused + "\n")
    assert len(found) == 1, found
    assert found[0].startswith(f"{PATH}:5: ")
    assert message in found[0]
    assert errors(IO + "max_batch_size: 8\n" + accepted + "\n") == []


def test_rules_on_max_batch_size_wait_when_a_backend_may_fill_it_in() -> None:
    # No max_batch_size in the file: auto_complete_config may set it.
    assert (
        errors('input [{ name: "X", data_type: TYPE_FP32, dims: [1], reshape: { shape: [] } }]\n')
        == []
    )
