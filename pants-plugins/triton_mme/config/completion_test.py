from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest
from google.protobuf import json_format, text_format
from triton_mme.config.backend import complete_backend_fields
from triton_mme.config.completion import ServedVersion, complete_from_graph, serve_version
from triton_mme.config.onnx_graph import OnnxGraph, OnnxTensor
from triton_mme.config.parse import Completion, ModelConfigFile, TensorSpec, parse_model_config
from triton_mme.config.tensors import data_type_name
from triton_mme.proto import model_config_pb2

INT32, INT8, FLOAT, BOOL = 6, 3, 1, 9


def tensors(shapes: dict[str, tuple[int, ...] | None], elem_type: int) -> tuple[OnnxTensor, ...]:
    return tuple(OnnxTensor(name, "tensor", elem_type, dims) for name, dims in shapes.items())


def graph(inputs: dict, outputs: dict, in_type: int = INT32, out_type: int = INT8) -> OnnxGraph:
    return OnnxGraph("1/model.onnx", tensors(inputs, in_type), (), tensors(outputs, out_type))


# The graphs of Triton's qa cases autofill_noplatform_success/onnx/empty_config (a model that
# batches: onnx_int32_int8_int8) and onnx/no_config_no_batch (onnx_nobatch_int32_int8_int8).
BATCHING = graph(
    {"INPUT0": (-1, 16), "INPUT1": (-1, 16)}, {"OUTPUT0": (-1, 16), "OUTPUT1": (-1, 16)}
)
NO_BATCH = graph({"INPUT0": (16,), "INPUT1": (16,)}, {"OUTPUT0": (16,), "OUTPUT1": (16,)})


def serve(text: str, onnx_graph: OnnxGraph, name: str = "empty_config") -> ServedVersion:
    config = parse_model_config(f"models/{name}/config.pbtxt", text)
    fields = complete_backend_fields(config, name, ("1/model.onnx",))
    return serve_version(config, model_name=name, fields=fields, version=1, graph=onnx_graph)


def served_text(served: ModelConfigFile) -> str:
    return text_format.MessageToString(served.message)


def expected(text: str) -> str:
    """A config as protobuf text, as `served_text` writes it."""
    return text_format.MessageToString(parse_model_config("e", dedent(text)).message)


def test_triton_qa_onnx_empty_config() -> None:
    # qa/L0_model_config/autofill_noplatform_success/onnx/empty_config/expected, without what
    # Triton's core adds after the backend (version_policy, instance_group, optimization, the
    # preferred batch size that normalization derives from max_batch_size).
    served = serve("", BATCHING)
    assert served.problems == ()
    assert served_text(served.config) == expected(
        """\
        name: "empty_config"
        platform: "onnxruntime_onnx"
        max_batch_size: 4
        input { name: "INPUT0" data_type: TYPE_INT32 dims: 16 }
        input { name: "INPUT1" data_type: TYPE_INT32 dims: 16 }
        output { name: "OUTPUT0" data_type: TYPE_INT8 dims: 16 }
        output { name: "OUTPUT1" data_type: TYPE_INT8 dims: 16 }
        dynamic_batching {}
        default_model_filename: "model.onnx"
        backend: "onnxruntime"
        """
    )
    completion = served.config.completion
    assert completion is not None and sorted(completion.filled) == [
        "dynamic_batching",
        "input",
        "max_batch_size",
        "output",
    ]
    assert completion.filled["max_batch_size"] == (
        "filled in by Triton's onnxruntime backend: config.pbtxt sets no max_batch_size and "
        "every input and output of the graph 1/model.onnx has a variable first dimension, so it "
        "takes Triton's default-max-batch-size, 4"
    )
    assert served.config.inputs[0].from_graph == "1/model.onnx"
    assert served.config.batching_decided


def test_triton_qa_onnx_no_config_no_batch() -> None:
    # qa/L0_model_config/autofill_noplatform_success/onnx/no_config_no_batch: the config sets
    # only an instance group; the graph cannot batch, so max_batch_size stays 0.
    served = serve("instance_group [{ kind: KIND_CPU }]\n", NO_BATCH, name="no_config_no_batch")
    assert served_text(served.config) == expected(
        """\
        name: "no_config_no_batch"
        platform: "onnxruntime_onnx"
        input { name: "INPUT0" data_type: TYPE_INT32 dims: 16 }
        input { name: "INPUT1" data_type: TYPE_INT32 dims: 16 }
        output { name: "OUTPUT0" data_type: TYPE_INT8 dims: 16 }
        output { name: "OUTPUT1" data_type: TYPE_INT8 dims: 16 }
        instance_group { kind: KIND_CPU }
        default_model_filename: "model.onnx"
        backend: "onnxruntime"
        """
    )


def test_max_batch_size_zero_counts_as_unset() -> None:
    served = serve("max_batch_size: 0\n", BATCHING)
    assert served.config.max_batch_size == 4
    completion = served.config.completion
    assert completion is not None
    assert "config.pbtxt sets `max_batch_size: 0`, which the backend takes as unset," in (
        completion.filled["max_batch_size"]
    )


def test_a_set_max_batch_size_and_scheduler_are_kept() -> None:
    served = serve("max_batch_size: 16\nsequence_batching {}\n", BATCHING)
    assert served.config.max_batch_size == 16
    assert served.config.message.WhichOneof("scheduling_choice") == "sequence_batching"
    completion = served.config.completion
    assert completion is not None and sorted(completion.filled) == ["input", "output"]
    # max_batch_size 1 batches, but turns on no dynamic batching.
    assert not serve("max_batch_size: 1\n", BATCHING).config.message.HasField("dynamic_batching")


def test_only_the_missing_half_is_completed() -> None:
    text = 'input [{ name: "INPUT0", data_type: TYPE_INT32, dims: [16] }]\n'
    served = serve(text, BATCHING).config
    assert [(t.name, t.from_graph) for t in served.inputs] == [("INPUT0", "")]
    assert [t.name for t in served.outputs] == ["OUTPUT0", "OUTPUT1"]
    both = text + 'output [{ name: "OUTPUT0", data_type: TYPE_INT8, dims: [16] }]\n'
    nothing = serve(both, BATCHING).config
    assert nothing.max_batch_size == 0  # Triton skips auto-complete: nothing to fill in.
    assert nothing.completion == Completion()


def test_scalars_and_types_without_a_config_type() -> None:
    scalar = graph({"X": (-1,)}, {"Y": (-1,)}, in_type=BOOL, out_type=14)  # COMPLEX64
    served = serve("", scalar).config
    assert [(t.dims, t.reshape) for t in (*served.inputs, *served.outputs)] == [
        ((1,), ()),
        ((1,), ()),
    ]
    entry = served.message.input[0]
    assert (list(entry.dims), entry.HasField("reshape"), list(entry.reshape.shape)) == (
        [1],
        True,
        [],
    )
    assert served.outputs[0].data_type == 0  # TYPE_INVALID: the graph check reports the type
    unbatched = serve("", graph({"X": ()}, {"Y": None})).config
    assert [(t.dims, t.reshape) for t in (*unbatched.inputs, *unbatched.outputs)] == [
        ((1,), None),
        ((1,), None),
    ]


def test_a_model_that_cannot_batch_with_a_max_batch_size() -> None:
    served = serve("max_batch_size: 8\n", NO_BATCH)
    assert served.config.completion is None
    assert [str(p) for p in served.problems] == [
        "models/empty_config/config.pbtxt:1: Triton's onnxruntime backend refuses this model: "
        "\"autofill failed for model 'empty_config': model does not support batching while "
        'non-zero max_batch_size is specified". config.pbtxt lists no inputs and outputs, so the '
        'backend completes it from the graph (1/model.onnx), and the graph\'s input "INPUT0" '
        "has shape [16], whose first dimension is not variable, so the model cannot batch. Set "
        "`max_batch_size: 0`, or export the model with a dynamic first dimension (a dim_param "
        'such as "batch").'
    ]


def test_graph_tensors_that_are_not_tensors() -> None:
    sequence = OnnxGraph(
        "1/model.onnx", BATCHING.inputs, (), (OnnxTensor("Y", "sequence", 0, None),)
    )
    config = parse_model_config(
        "models/m/config.pbtxt", 'input [{ name: "INPUT0", data_type: TYPE_INT32, dims: [16] }]\n'
    )
    completed, problems = complete_from_graph(config, sequence)
    assert completed is config
    assert [str(p) for p in problems] == [
        "models/m/config.pbtxt: Triton's onnxruntime backend refuses this model: config.pbtxt "
        "lists no outputs, so the backend completes it from the graph (1/model.onnx), whose "
        'output "Y" is a sequence, not a tensor: it serves tensors only.'
    ]


def test_python_models() -> None:
    config = parse_model_config("models/p/config.pbtxt", 'output [{ name: "OUTPUT0" }]\n')
    fields = complete_backend_fields(config, "p", ("1/model.py",))
    plain = serve_version(
        config,
        model_name="p",
        fields=fields,
        version=1,
        model_py=("models/p/1/model.py", "class TritonPythonModel:\n    pass\n"),
    )
    assert plain.auto_complete is None
    assert plain.config.completion == Completion()
    assert (plain.config.backend, plain.config.name) == ("python", "p")
    source = (
        "class TritonPythonModel:\n"
        "    @staticmethod\n"
        "    def auto_complete_config(c):\n"
        "        return c\n"
    )
    auto = serve_version(
        config, model_name="p", fields=fields, version=1, model_py=("models/p/1/model.py", source)
    )
    assert auto.config.completion == Completion(
        left_open=(
            "input",
            "output",
            "max_batch_size",
            "dynamic_batching",
            "model_transaction_policy",
        ),
        left_to="model.py's auto_complete_config (models/p/1/model.py:3)",
    )
    assert auto.config.is_open("output") and not auto.config.batching_decided


def test_ensembles_are_served_as_written() -> None:
    config = parse_model_config("models/e/config.pbtxt", 'platform: "ensemble"\n')
    served = serve_version(config, model_name="e", fields=None, version=1)
    assert served.config.completion == Completion()
    other = parse_model_config("models/t/config.pbtxt", 'platform: "tensorrt_plan"\n')
    fields = complete_backend_fields(other, "t", ())
    assert serve_version(other, model_name="t", fields=fields, version=1).config.completion is None


# The cases the stand-in image's onnxruntime backend is checked against too
# (tests/standin_backend/): both complete each config from the same graph alike.
CASES_FILE = "pants-plugins/triton_mme/config/testdata/onnx_auto_complete.json"


def _cases() -> list[dict]:
    return list(json.loads(Path(CASES_FILE).read_text())["cases"])


def _graph_of(case: dict) -> OnnxGraph:
    def tensors(key: str) -> tuple[OnnxTensor, ...]:
        return tuple(
            OnnxTensor(
                name, "tensor", elem_type, tuple(d if isinstance(d, int) else -1 for d in dims)
            )
            for name, elem_type, dims in case["graph"][key]
        )

    return OnnxGraph("1/model.onnx", tensors("inputs"), (), tensors("outputs"))


def _tensors(specs: tuple[TensorSpec, ...]) -> list[dict]:
    return [
        {
            "name": s.name,
            "data_type": data_type_name(s.data_type),
            "dims": list(s.dims),
            **({"reshape": {"shape": list(s.reshape)}} if s.reshape is not None else {}),
        }
        for s in specs
    ]


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case["name"])
def test_the_onnx_auto_complete_cases(case: dict) -> None:
    empty = model_config_pb2.ModelConfig()  # type: ignore[attr-defined]
    message = json_format.ParseDict({"name": "net", **case["config"]}, empty)
    config = parse_model_config("models/net/config.pbtxt", text_format.MessageToString(message))
    completed, problems = complete_from_graph(config, _graph_of(case))
    if "error" in case:
        (problem,) = problems
        assert case["error"] in str(problem)
        return
    assert problems == []
    assert {
        "max_batch_size": completed.max_batch_size,
        "dynamic_batching": completed.message.HasField("dynamic_batching"),
        "input": _tensors(completed.inputs),
        "output": _tensors(completed.outputs),
    } == case["completed"]
