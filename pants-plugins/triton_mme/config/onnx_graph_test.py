from __future__ import annotations

from textwrap import dedent

import pytest
from triton_mme.config.onnx_graph import OnnxGraph, OnnxTensor, check_onnx_graph
from triton_mme.config.parse import parse_model_config

PATH = "models/net/config.pbtxt"
FLOAT, INT64 = 1, 7


def graph(
    inputs: dict[str, tuple[int, ...] | None],
    outputs: dict[str, tuple[int, ...] | None],
    *,
    overridable: dict[str, tuple[int, ...]] | None = None,
    elem_type: int = FLOAT,
) -> OnnxGraph:
    def tensors(shapes: dict) -> tuple[OnnxTensor, ...]:
        return tuple(OnnxTensor(name, "tensor", elem_type, dims) for name, dims in shapes.items())

    return OnnxGraph("1/model.onnx", tensors(inputs), tensors(overridable or {}), tensors(outputs))


NET = graph({"X": (-1, 4)}, {"Y": (-1, 4)})


def config(body: str, max_batch_size: int = 8) -> str:
    return f'platform: "onnxruntime_onnx"\nmax_batch_size: {max_batch_size}\n' + dedent(body)


def check(text: str, onnx_graph: OnnxGraph = NET) -> list[str]:
    return [str(e) for e in check_onnx_graph(parse_model_config(PATH, text), onnx_graph)]


GOOD = """\
    input [{ name: "X", data_type: TYPE_FP32, dims: [4] }]
    output [{ name: "Y", data_type: TYPE_FP32, dims: [4] }]
    """


def test_a_matching_config_passes() -> None:
    assert check(config(GOOD)) == []


def test_data_type() -> None:
    text = config(
        GOOD.replace('name: "X", data_type: TYPE_FP32', 'name: "X", data_type: TYPE_INT64')
    )
    assert check(text) == [
        f'{PATH}:3: input "X" has data_type: TYPE_INT64, but the ONNX graph\'s is FLOAT: set '
        "`data_type: TYPE_FP32`. (graph: 1/model.onnx)"
    ]


def test_dims() -> None:
    text = config(GOOD.replace("dims: [4] }]\n    output", "dims: [5] }]\n    output"))
    assert check(text) == [
        f'{PATH}:3: input "X" has dims: [5], which is [-1, 5] with the batch dimension Triton '
        "adds (max_batch_size > 0), but the ONNX graph's shape is [-1, 4]: set `dims: [4]`. "
        "(graph: 1/model.onnx)"
    ]


def test_rank_without_batching() -> None:
    text = config(GOOD, max_batch_size=0)
    messages = check(text)
    assert len(messages) == 2
    assert messages[0] == (
        f'{PATH}:3: input "X" has dims: [4], but the ONNX graph\'s shape is [-1, 4]: set '
        "`dims: [-1, 4]`. (graph: 1/model.onnx)"
    )


def test_inputs_accept_any_size_where_the_graph_is_dynamic_outputs_do_not() -> None:
    dynamic = graph({"X": (-1, -1)}, {"Y": (-1, -1)})
    assert check(config(GOOD), dynamic) == [
        f'{PATH}:4: output "Y" has dims: [4], which is [-1, 4] with the batch dimension Triton '
        "adds (max_batch_size > 0), but the ONNX graph's shape is [-1, -1]: set `dims: [-1]`. "
        "(graph: 1/model.onnx)"
    ]


def test_unknown_input_and_missing_input() -> None:
    text = config(GOOD.replace('name: "X"', 'name: "x"'))
    assert check(text) == [
        f'{PATH}:3: the ONNX graph has the input "X" (FLOAT, shape [-1, 4]), which the config '
        "does not list; Triton refuses a model whose config leaves out a graph input. Add "
        '`input { name: "X" data_type: TYPE_FP32 dims: [4] }`. (graph: 1/model.onnx)',
        f'{PATH}:3: input "x" is not an input of the ONNX graph (its inputs: "X"). Did you mean '
        '"X"? Rename it to the graph\'s input, or remove it. (graph: 1/model.onnx)',
    ]


def test_unknown_output() -> None:
    text = config(GOOD.replace('name: "Y"', 'name: "Z"'))
    assert check(text) == [
        f'{PATH}:4: output "Z" is not an output of the ONNX graph (its outputs: "Y"). Rename it '
        "to the graph's output, or remove it. (graph: 1/model.onnx)"
    ]


def test_batching_needs_a_dynamic_first_dimension() -> None:
    fixed = graph({"X": (1, 4)}, {"Y": (1, 4)})
    messages = check(config(GOOD), fixed)
    assert messages[0] == (
        f'{PATH}:3: max_batch_size is 8, so Triton puts a batch dimension in front of input "X", '
        "but the ONNX graph fixes its first dimension (shape [1, 4]). Export the model with a "
        'dynamic first dimension (a dim_param such as "batch"), or set `max_batch_size: 0` and '
        "`dims: [1, 4]`. (graph: 1/model.onnx)"
    )
    assert check(config(GOOD.replace("[4]", "[1, 4]"), max_batch_size=0), fixed) == []


@pytest.mark.parametrize("dims, ok", [("[1]", True), ("[2]", False)])
def test_scalars_take_dims_of_one(dims: str, ok: bool) -> None:
    scalar = graph({"X": ()}, {"Y": None})
    text = config(GOOD.replace("dims: [4]", f"dims: {dims}"), max_batch_size=0)
    expected = [
        f'{PATH}:3: input "X" is a scalar in the ONNX graph, but its dims are [2]: set '
        "`dims: [1]` (a scalar travels as one element). (graph: 1/model.onnx)",
        f'{PATH}:4: output "Y" is a scalar in the ONNX graph, but its dims are [2]: set '
        "`dims: [1]` (a scalar travels as one element). (graph: 1/model.onnx)",
    ]
    assert check(text, scalar) == ([] if ok else expected)


def test_reshape_is_what_the_graph_sees() -> None:
    text = config(
        GOOD.replace(
            "dims: [4] }]\n    output", "dims: [2, 2], reshape: { shape: [4] } }]\n    output"
        )
    )
    assert check(text) == []


def test_overridable_initializers_must_be_optional_and_unbatched() -> None:
    with_weight = graph({"X": (-1, 4)}, {"Y": (-1, 4)}, overridable={"W": (4,)})
    body = """\
        input [
          { name: "X", data_type: TYPE_FP32, dims: [-1, 4] },
          { name: "W", data_type: TYPE_FP32, dims: [4], optional: true }
        ]
        output [{ name: "Y", data_type: TYPE_FP32, dims: [-1, 4] }]
        """
    assert check(config(body, max_batch_size=0), with_weight) == []
    assert check(config(body.replace(", optional: true", ""), max_batch_size=0), with_weight) == [
        f'{PATH}:5: input "W" is a weight of the ONNX graph (an initializer) that a request may '
        "override: mark it `optional: true`, or remove it. (graph: 1/model.onnx)"
    ]
    assert (
        f'{PATH}:5: input "W" is optional, which Triton\'s onnxruntime backend allows only '
        "without batching: set `max_batch_size: 0` or remove `optional: true`. "
        "(graph: 1/model.onnx)"
    ) in check(config(body), with_weight)


def test_an_auto_completed_config_is_not_compared() -> None:
    assert check(config('input [{ name: "Q", data_type: TYPE_FP32, dims: [4] }]\n')) == []


def test_non_tensor_graph_outputs() -> None:
    sequence = OnnxGraph("1/model.onnx", NET.inputs, (), (OnnxTensor("Y", "sequence", 0, None),))
    assert check(config(GOOD), sequence) == [
        f"{PATH}: 1/model.onnx: the graph's output \"Y\" is a sequence, not a tensor: Triton's "
        "onnxruntime backend serves tensors only."
    ]


def test_a_completed_config_is_compared_and_says_where_max_batch_size_comes_from() -> None:
    from triton_mme.config.completion import complete_from_graph

    # Only the input is listed: Triton completes the output and max_batch_size from the graph,
    # then compares the input with it.
    parsed = parse_model_config(
        PATH,
        'platform: "onnxruntime_onnx"\ninput [{ name: "X", data_type: TYPE_FP32, dims: [5] }]\n',
    )
    completed, problems = complete_from_graph(parsed, NET)
    assert problems == []
    assert [str(e) for e in check_onnx_graph(completed, NET)] == [
        f'{PATH}:2: input "X" has dims: [5], which is [-1, 5] with the batch dimension Triton '
        "adds (max_batch_size 4, filled in by Triton's onnxruntime backend: config.pbtxt sets no "
        "max_batch_size and every input and output of the graph 1/model.onnx has a variable "
        "first dimension, so it takes Triton's default-max-batch-size, 4), but the ONNX graph's "
        "shape is [-1, 4]: set `dims: [4]`. (graph: 1/model.onnx)"
    ]
