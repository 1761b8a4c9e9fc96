"""The config Triton serves: config.pbtxt as Triton's core and the model's backend complete it.

Triton's default is to auto-complete configs at load (`--disable-auto-complete-config` is off):

- its core names the model and fills in `platform`, `backend` and `default_model_filename`
  (`config/backend.py`);
- the onnxruntime backend, when config.pbtxt lists no inputs (nor batch inputs) or no outputs,
  reads the graph and fills them in, with `max_batch_size` and dynamic batching
  (`ModelState::AutoCompleteConfig`, `AutoCompleteMaxBatch` and `AutoCompleteIO` in
  onnxruntime_backend's `src/onnxruntime.cc`): `complete_from_graph` does the same from the
  graph the `[onnx-graph]` tool read;
- the python backend runs model.py's `auto_complete_config`, which only running it can tell
  (`config/auto_complete.py`): the fields it may fill in are left open, and the checks do not
  refuse what it can still make valid;
- an ensemble is served as written.

Other backends (TensorRT, PyTorch, OpenVINO, TensorFlow, custom) complete configs from model
files that are not read here: their configs keep `completion=None`, and the checks decide only
what the file decides, as before.

Triton's core then validates the completed config (`ValidateModelIOConfig` in `Model::Init`),
which is why the tensor and ensemble checks run on these configs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pants.util.frozendict import FrozenDict
from triton_mme.config.auto_complete import FIELDS, AutoCompleteMethod, find_auto_complete_config
from triton_mme.config.backend import BackendFields
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.onnx_graph import ONNX_BACKEND, OnnxGraph, OnnxTensor, config_data_type
from triton_mme.config.parse import Completion, ModelConfigFile, TensorSpec
from triton_mme.config.tensors import format_shape
from triton_mme.proto import model_config_pb2

# Triton's `default-max-batch-size` backend setting (core's `src/backend_model.cc`), which the
# onnxruntime backend gives a model that can batch and whose config sets no max_batch_size.
DEFAULT_MAX_BATCH_SIZE = 4


@dataclass(frozen=True)
class ServedVersion:
    """One version of a model as Triton serves it (each version is loaded on its own)."""

    version: int | None  # None: no version folder to load
    config: ModelConfigFile  # completed: see `ModelConfigFile.completion`
    graph: OnnxGraph | None = None  # the graph the onnxruntime backend reads
    auto_complete: AutoCompleteMethod | None = None  # python: model.py's auto_complete_config
    # Why the backend refuses to complete the config (then `config` is the file's). They follow
    # from the fields above, so they take no part in equality.
    problems: tuple[ModelConfigError, ...] = field(default=(), compare=False, hash=False)


def with_backend_fields(
    config: ModelConfigFile, model_name: str, fields: BackendFields | None
) -> ModelConfigFile:
    """The config with the name and backend fields Triton's core fills in."""
    message = _copy(config.message)
    name = config.name or model_name
    message.name = name
    if fields is not None:
        message.platform = fields.platform
        message.backend = fields.backend
        message.default_model_filename = fields.default_model_filename
    return dataclasses.replace(
        config,
        name=name,
        platform=message.platform,
        backend=message.backend,
        default_model_filename=message.default_model_filename,
        message=message,
    )


def serve_version(
    config: ModelConfigFile,
    *,
    model_name: str,
    fields: BackendFields | None,
    version: int | None,
    graph: OnnxGraph | None = None,
    model_py: tuple[str, str] | None = None,
) -> ServedVersion:
    """One version as Triton serves it. `graph` is the version's ONNX graph (onnxruntime
    models), `model_py` the path and text of its model.py (python models)."""
    named = with_backend_fields(config, model_name, fields)
    backend = fields.backend if fields else ""
    if config.is_ensemble:
        return ServedVersion(version, dataclasses.replace(named, completion=Completion()))
    if backend == ONNX_BACKEND and graph is not None:
        completed, problems = complete_from_graph(named, graph)
        return ServedVersion(version, completed, graph=graph, problems=tuple(problems))
    if backend == "python" and model_py is not None:
        method = find_auto_complete_config(*model_py)
        return ServedVersion(version, leave_to_auto_complete(named, method), auto_complete=method)
    return ServedVersion(version, named)


def leave_to_auto_complete(
    config: ModelConfigFile, method: AutoCompleteMethod | None
) -> ModelConfigFile:
    """A python model: without `auto_complete_config` the file is what Triton serves; with one,
    what it may fill in is open."""
    if method is None:
        return dataclasses.replace(config, completion=Completion())
    return dataclasses.replace(
        config, completion=Completion(left_open=FIELDS, left_to=method.where)
    )


def _batch_blocker(graph: OnnxGraph) -> tuple[str, OnnxTensor] | None:
    """The first graph tensor whose first dimension is not variable (so the model cannot batch)."""
    for kind, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for tensor in tensors:
            if not tensor.dims or tensor.dims[0] != -1:
                return kind, tensor
    return None


def complete_from_graph(
    config: ModelConfigFile, graph: OnnxGraph, default_max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
) -> tuple[ModelConfigFile, list[ModelConfigError]]:
    """What Triton's onnxruntime backend makes of `config` with `graph`, or why it refuses.

    Nothing is completed when config.pbtxt lists inputs (or batch inputs) and outputs. Else:
    when every graph input and output has a variable first dimension, a max_batch_size of 0 (or
    none) becomes the default 4, and a max_batch_size above 1 turns on dynamic batching when no
    scheduler is set; when one has not, a max_batch_size other than 0 is refused. The missing
    inputs or outputs are then the graph's, in the graph's order (Triton keeps them in a hash
    map, so its order may differ), without the batch dimension when max_batch_size > 0 and as
    `dims: [1]` (with an empty `reshape` when batching) for a scalar.
    """
    message = config.message
    complete_inputs = not (message.input or message.batch_input)
    complete_outputs = not message.output
    if not (complete_inputs or complete_outputs):
        return dataclasses.replace(config, completion=Completion()), []
    missing = " and ".join(
        kind for kind, on in (("inputs", complete_inputs), ("outputs", complete_outputs)) if on
    )
    not_tensors = [
        (kind, t)
        for kind, tensors in (("input", graph.inputs), ("output", graph.outputs))
        for t in tensors
        if t.kind != "tensor"
    ]
    if not_tensors:
        kind, tensor = not_tensors[0]
        return config, [
            ModelConfigError(
                config.path,
                f"Triton's onnxruntime backend refuses this model: config.pbtxt lists no "
                f"{missing}, so the backend completes it from the graph ({graph.path}), whose "
                f'{kind} "{tensor.name}" is a {tensor.kind}, not a tensor: it serves tensors '
                "only.",
            )
        ]
    filled: dict[str, str] = {}
    completed = _copy(message)
    max_batch_size = config.max_batch_size
    blocker = _batch_blocker(graph)
    if blocker is None:
        if max_batch_size == 0:
            max_batch_size = default_max_batch_size
            written = (
                "sets `max_batch_size: 0`, which the backend takes as unset,"
                if config.line("max_batch_size")
                else "sets no max_batch_size"
            )
            filled["max_batch_size"] = (
                f"filled in by Triton's onnxruntime backend: config.pbtxt {written} and "
                f"every input and output of the graph {graph.path} has a variable first "
                f"dimension, so it takes Triton's default-max-batch-size, {max_batch_size}"
            )
            completed.max_batch_size = max_batch_size
        if max_batch_size > 1 and completed.WhichOneof("scheduling_choice") is None:
            completed.dynamic_batching.SetInParent()
            filled["dynamic_batching"] = (
                "turned on by Triton's onnxruntime backend: the model batches "
                f"(max_batch_size {max_batch_size}) and config.pbtxt sets no scheduler"
            )
    elif max_batch_size != 0:
        kind, tensor = blocker
        return config, [
            ModelConfigError(
                config.path,
                f"Triton's onnxruntime backend refuses this model: \"autofill failed for model "
                f"'{config.name}': model does not support batching while non-zero "
                f'max_batch_size is specified". config.pbtxt lists no {missing}, so the backend '
                f"completes it from the graph ({graph.path}), and the graph's {kind} "
                f'"{tensor.name}" has shape {format_shape(tensor.dims or ())}, whose first '
                "dimension is not variable, so the model cannot batch. Set `max_batch_size: 0`, "
                "or export the model with a dynamic first dimension (a dim_param such as "
                '"batch").',
                line=config.line("max_batch_size"),
            )
        ]
    inputs, outputs = config.inputs, config.outputs
    if complete_inputs:
        inputs = _fill(completed.input, graph.inputs, max_batch_size, graph.path)
        filled["input"] = f"taken from the graph {graph.path} by Triton's onnxruntime backend"
    if complete_outputs:
        outputs = _fill(completed.output, graph.outputs, max_batch_size, graph.path)
        filled["output"] = f"taken from the graph {graph.path} by Triton's onnxruntime backend"
    return (
        dataclasses.replace(
            config,
            max_batch_size=max_batch_size,
            inputs=inputs,
            outputs=outputs,
            message=completed,
            completion=Completion(filled=FrozenDict(filled)),
        ),
        [],
    )


def _fill(
    field: Any, tensors: tuple[OnnxTensor, ...], max_batch_size: int, graph_path: str
) -> tuple[TensorSpec, ...]:
    """Replaces the repeated `input`/`output` field with the graph's tensors (`AutoCompleteIO`)."""
    del field[:]
    specs = []
    for tensor in tensors:
        entry = field.add()
        entry.name = tensor.name
        data_type = config_data_type(tensor.elem_type) or "TYPE_INVALID"
        entry.data_type = model_config_pb2.DataType.Value(data_type)  # type: ignore[attr-defined]
        dims = list(tensor.dims or ())[1 if max_batch_size > 0 else 0 :]
        reshape: tuple[int, ...] | None = None
        if not dims:
            dims = [1]
            if max_batch_size > 0:  # A scalar in a batching model.
                entry.reshape.SetInParent()
                reshape = ()
        entry.dims.extend(dims)
        specs.append(
            TensorSpec(
                name=tensor.name,
                data_type=entry.data_type,
                dims=tuple(dims),
                reshape=reshape,
                optional=False,
                line=None,
                from_graph=graph_path,
            )
        )
    return tuple(specs)


def _copy(message: Any) -> Any:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy
