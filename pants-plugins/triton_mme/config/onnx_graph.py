"""config.pbtxt against its ONNX graph, as Triton's onnxruntime backend compares them at load.

Pure functions: `util_rules/onnx_graph.py` reads the graph (names, element types and dims of its
inputs and outputs) in a tool process, and `check_onnx_graph` finds every difference the real
backend refuses (`ValidateInputs`/`ValidateOutputs` in onnxruntime_backend's
`src/onnxruntime.cc`): graph inputs the config leaves out, config tensors the graph lacks, data
types, ranks and fixed dims, and the batch dimension against `max_batch_size`. Where Triton stops
at the first problem, every one is reported, each with its line and the fix.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable

from triton_mme.config.errors import ModelConfigError
from triton_mme.config.parse import ModelConfigFile
from triton_mme.config.tensors import data_type_name, format_shape

ONNX_BACKEND = "onnxruntime"
ONNX_FILE_NAME = "model.onnx"

# ONNX `TensorProto.DataType` -> Triton's config data type (onnxruntime_backend's
# `ModelConfigDataTypeToOnnxDataType`); other ONNX types have none and cannot be served.
_CONFIG_TYPES = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    4: "TYPE_UINT16",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    8: "TYPE_STRING",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    12: "TYPE_UINT32",
    13: "TYPE_UINT64",
    16: "TYPE_BF16",
}
_ONNX_TYPE_NAMES = {
    1: "FLOAT",
    2: "UINT8",
    3: "INT8",
    4: "UINT16",
    5: "INT16",
    6: "INT32",
    7: "INT64",
    8: "STRING",
    9: "BOOL",
    10: "FLOAT16",
    11: "DOUBLE",
    12: "UINT32",
    13: "UINT64",
    14: "COMPLEX64",
    15: "COMPLEX128",
    16: "BFLOAT16",
}


def config_data_type(elem_type: int) -> str | None:
    """The config data type (`TYPE_FP32`) of an ONNX element type, None when Triton has none."""
    return _CONFIG_TYPES.get(elem_type)


@dataclass(frozen=True)
class OnnxTensor:
    """A graph input or output as onnxruntime reports it (see scripts/onnx_graph.py)."""

    name: str
    kind: str  # "tensor", "sequence", "map", ...
    elem_type: int
    dims: tuple[int, ...] | None  # -1: symbolic or unknown; None: no shape declared

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OnnxTensor:
        dims = data["dims"]
        return cls(
            data["name"], data["kind"], data["elem_type"], None if dims is None else tuple(dims)
        )

    @property
    def type_name(self) -> str:
        return _ONNX_TYPE_NAMES.get(self.elem_type, f"element type {self.elem_type}")


@dataclass(frozen=True)
class OnnxGraph:
    path: str  # relative to the model directory, e.g. `1/model.onnx`
    inputs: tuple[OnnxTensor, ...]  # graph inputs no initializer provides
    overridable: tuple[OnnxTensor, ...]  # graph inputs with an initializer (IR >= 4)
    outputs: tuple[OnnxTensor, ...]

    @classmethod
    def from_json(cls, path: str, data: dict[str, Any]) -> OnnxGraph:
        def tensors(key: str) -> tuple[OnnxTensor, ...]:
            return tuple(OnnxTensor.from_json(t) for t in data[key])

        return cls(path, tensors("inputs"), tensors("overridable"), tensors("outputs"))


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return f' Did you mean "{by_lower[close[0]]}"?' if close else ""


def _names(tensors: Iterable[OnnxTensor]) -> str:
    return ", ".join(f'"{t.name}"' for t in sorted(tensors, key=lambda t: t.name)) or "none"


def _config_dims(tensor: Any) -> tuple[str, tuple[int, ...]]:
    """The field whose dims the graph sees (a `reshape` if there is one) and those dims."""
    if tensor.HasField("reshape"):
        return "reshape.shape", tuple(tensor.reshape.shape)
    return "dims", tuple(tensor.dims)


def shape_problem(
    what: str,
    tensor: Any,
    graph_tensor: OnnxTensor,
    max_batch_size: int,
    *,
    exact: bool,
    batch_reason: str = "",
) -> str | None:
    """Why Triton refuses the tensor's dims against the graph's (`CompareDimsSupported`).

    Inputs (`exact=False`) accept any size where the graph's dim is dynamic; outputs must match
    dim for dim, -1 included. `batch_reason` says where a max_batch_size config.pbtxt does not
    set comes from.
    """
    field, dims = _config_dims(tensor)
    model = graph_tensor.dims or ()
    name = f'{what} "{tensor.name}"'
    if not model:
        if all(d == 1 for d in dims):
            return None
        return (
            f"{name} is a scalar in the ONNX graph, but its {field} are {format_shape(dims)}: "
            "set `dims: [1]` (a scalar travels as one element)."
        )
    batched = max_batch_size > 0
    if batched and model[0] != -1:
        return (
            f"max_batch_size is {max_batch_size}, so Triton puts a batch dimension in front of "
            f"{name}, but the ONNX graph fixes its first dimension (shape "
            f"{format_shape(model)}). Export the model with a dynamic first dimension (a "
            f'dim_param such as "batch"), or set `max_batch_size: 0` and `{field}: '
            f"{format_shape(model)}`."
        )
    full = ((-1,) if batched else ()) + dims
    if len(model) == len(full) and all(m == c for m, c in zip(model, full) if exact or m != -1):
        return None
    wanted = model[1:] if batched else model
    batch_note = (
        f", which is {format_shape(full)} with the batch dimension Triton adds "
        + (
            f"(max_batch_size {max_batch_size}, {batch_reason})"
            if batch_reason
            else "(max_batch_size > 0)"
        )
        if batched
        else ""
    )
    return (
        f"{name} has {field}: {format_shape(dims)}{batch_note}, but the ONNX graph's shape is "
        f"{format_shape(model)}: set `{field}: {format_shape(wanted)}`."
    )


def _type_problem(what: str, tensor: Any, graph_tensor: OnnxTensor) -> str | None:
    configured = data_type_name(tensor.data_type)
    expected = _CONFIG_TYPES.get(graph_tensor.elem_type)
    if configured == expected:
        return None
    if expected is None:
        return (
            f'{what} "{tensor.name}" is {graph_tensor.type_name} in the ONNX graph, a type '
            "Triton cannot serve: export the model with a supported type (e.g. FLOAT)."
        )
    return (
        f'{what} "{tensor.name}" has data_type: {configured}, but the ONNX graph\'s is '
        f"{graph_tensor.type_name}: set `data_type: {expected}`."
    )


def _non_input_names(config: Any) -> set[str]:
    """Graph inputs the config feeds other than through `input`: batch inputs, sequence state
    and controls (each counts as one input at load)."""
    names = {target for b in config.batch_input for target in b.target_name}
    names |= {c.name for c in config.sequence_batching.control_input}
    names |= {s.input_name for s in config.sequence_batching.state}
    return names


def _input_problems(
    config: Any, graph: OnnxGraph, batch_reason: str
) -> Iterable[tuple[str, str | None]]:
    """(message, tensor name for the line) of each input problem."""
    required = {t.name: t for t in graph.inputs}
    overridable = {t.name: t for t in graph.overridable}
    listed = {tensor.name: tensor for tensor in config.input}
    fed = _non_input_names(config)
    for name, needed in required.items():
        if name in fed:
            continue
        if name not in listed:
            field, dims = "dims", needed.dims or (1,)
            dims = dims[1:] if config.max_batch_size > 0 and len(dims) > 1 else dims
            expected = _CONFIG_TYPES.get(needed.elem_type, "TYPE_...")
            yield (
                f'the ONNX graph has the input "{name}" ({needed.type_name}, shape '
                f"{format_shape(needed.dims or ())}), which the config does not list; "
                "Triton refuses a model whose config leaves out a graph input. Add "
                f'`input {{ name: "{name}" data_type: {expected} {field}: '
                f"{format_shape(dims)} }}`.",
                None,
            )
        elif listed[name].optional:
            yield (
                f'input "{name}" is marked `optional: true`, but the ONNX graph needs it (no '
                "initializer gives it a default): remove `optional: true`.",
                name,
            )
    for tensor in config.input:
        graph_tensor = required.get(tensor.name) or overridable.get(tensor.name)
        if graph_tensor is None:
            hint = _did_you_mean(tensor.name, [*required, *overridable])
            yield (
                f'input "{tensor.name}" is not an input of the ONNX graph (its inputs: '
                f"{_names([*graph.inputs, *graph.overridable])}).{hint} Rename it to the graph's "
                "input, or remove it.",
                tensor.name,
            )
            continue
        if tensor.optional and config.max_batch_size != 0:
            yield (
                f'input "{tensor.name}" is optional, which Triton\'s onnxruntime backend allows '
                "only without batching: set `max_batch_size: 0` or remove `optional: true`.",
                tensor.name,
            )
        if tensor.name in overridable and not tensor.optional:
            yield (
                f'input "{tensor.name}" is a weight of the ONNX graph (an initializer) that a '
                "request may override: mark it `optional: true`, or remove it.",
                tensor.name,
            )
        yield from _tensor_problems(
            "input", tensor, graph_tensor, config, exact=False, batch_reason=batch_reason
        )


def _tensor_problems(
    what: str,
    tensor: Any,
    graph_tensor: OnnxTensor,
    config: Any,
    *,
    exact: bool,
    check_shape: bool = True,
    batch_reason: str = "",
) -> Iterable[tuple[str, str | None]]:
    if graph_tensor.kind != "tensor":
        return  # reported once for the graph
    type_problem = _type_problem(what, tensor, graph_tensor)
    if type_problem:
        yield type_problem, tensor.name
    if what == "input" and tensor.allow_ragged_batch:
        if graph_tensor.dims != (-1,):
            yield (
                f'input "{tensor.name}" has `allow_ragged_batch: true`, which needs a graph '
                f"input of shape [-1], but the ONNX graph's shape is "
                f"{format_shape(graph_tensor.dims or ())}.",
                tensor.name,
            )
        return
    if not check_shape:
        return
    shape = shape_problem(
        what, tensor, graph_tensor, config.max_batch_size, exact=exact, batch_reason=batch_reason
    )
    if shape:
        yield shape, tensor.name


def _output_problems(
    config: Any, graph: OnnxGraph, batch_reason: str
) -> Iterable[tuple[str, str | None]]:
    outputs = {t.name: t for t in graph.outputs}
    batch_outputs = {target for b in config.batch_output for target in b.target_name}
    for tensor in config.output:
        graph_tensor = outputs.get(tensor.name)
        if graph_tensor is None:
            yield (
                f'output "{tensor.name}" is not an output of the ONNX graph (its outputs: '
                f"{_names(graph.outputs)}).{_did_you_mean(tensor.name, outputs)} Rename it to "
                "the graph's output, or remove it.",
                tensor.name,
            )
        else:
            # Triton checks no shape for the target of a batch output.
            check_shape = tensor.name not in batch_outputs
            yield from _tensor_problems(
                "output",
                tensor,
                graph_tensor,
                config,
                exact=True,
                check_shape=check_shape,
                batch_reason=batch_reason,
            )


def check_onnx_graph(parsed: ModelConfigFile, graph: OnnxGraph) -> list[ModelConfigError]:
    """What Triton's onnxruntime backend would refuse in a config against `graph`.

    A parsed config that leaves out all inputs or all outputs is auto-completed from the graph at
    load, so it is not compared here: compare the completed one (`config/completion.py`).
    """
    config = parsed.message
    if not (config.input or config.batch_input) or not config.output:
        return []
    errors = [
        ModelConfigError(
            parsed.path,
            f'{graph.path}: the graph\'s {where} "{t.name}" is a {t.kind}, not a tensor: '
            "Triton's onnxruntime backend serves tensors only.",
        )
        for where, tensors in (("input", graph.inputs), ("output", graph.outputs))
        for t in tensors
        if t.kind != "tensor"
    ]
    tensor_lines = {t.name: t.line for t in (*parsed.inputs, *parsed.outputs)}
    completion = parsed.completion
    batch_reason = completion.filled.get("max_batch_size", "") if completion else ""
    problems = [
        *_input_problems(config, graph, batch_reason),
        *_output_problems(config, graph, batch_reason),
    ]
    for message, name in problems:
        line = tensor_lines.get(name) if name else parsed.line("input")
        errors.append(ModelConfigError(parsed.path, f"{message} (graph: {graph.path})", line=line))
    return errors
