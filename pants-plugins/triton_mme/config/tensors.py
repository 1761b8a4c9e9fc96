"""Inputs, outputs, batch inputs and batch outputs: Triton core's `ValidateModelIOConfig`.

Triton checks every model's tensors this way (ensembles included) before any backend sees them.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

from triton_mme.config.errors import ModelConfigError, did_you_mean
from triton_mme.config.parse import ModelConfigFile, TensorSpec
from triton_mme.proto import model_config_pb2

TENSORRT_PLATFORM = "tensorrt_plan"
TYPE_INVALID = 0
BATCH_INPUT_DATA_TYPES = ("TYPE_INT32", "TYPE_FP32")
_FORMATS_WITH_3_DIMS = ("FORMAT_NHWC", "FORMAT_NCHW")


def data_type_name(data_type: int) -> str:
    return str(model_config_pb2.DataType.Name(data_type))  # type: ignore[attr-defined]


def format_shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def check_tensors(config: ModelConfigFile) -> list[ModelConfigError]:
    errors: list[ModelConfigError] = []
    for kind, specs, messages in (
        ("input", config.inputs, config.message.input),
        ("output", config.outputs, config.message.output),
    ):
        for spec, message in zip(specs, messages):
            problems = [*_shape_problems(kind, spec, config)]
            problems.extend(_tensorrt_only_problems(kind, message, config.platform))
            if kind == "input" and message.format in _formats(_FORMATS_WITH_3_DIMS):
                if len(spec.dims) != 3:
                    problems.append(
                        f"has `format: {_format_name(message.format)}`, which needs exactly 3 "
                        f"dims (channels, height, width, without the batch dimension), but dims "
                        f"is {format_shape(spec.dims)}: fix the dims or drop `format`."
                    )
            errors.extend(
                ModelConfigError(config.path, f"{spec.label(kind)} {problem}", line=spec.line)
                for problem in problems
            )
    return errors


def _formats(names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(model_config_pb2.ModelInput.Format.Value(n) for n in names)  # type: ignore


def _format_name(value: int) -> str:
    return str(model_config_pb2.ModelInput.Format.Name(value))  # type: ignore[attr-defined]


def _element_count(shape: tuple[int, ...]) -> int:
    """Triton's count: -1 when any dim is variable, 0 for an empty shape."""
    if not shape:
        return 0
    return -1 if -1 in shape else math.prod(shape)


def _variable_groups(shape: tuple[int, ...]) -> list[int]:
    """The products of the fixed dims between the -1s (`[2,4,-1,6]` -> `[8, 6]`)."""
    groups, product = [], 1
    for dim in shape:
        if dim == -1:
            groups.append(product)
            product = 1
        else:
            product *= dim
    return [*groups, product]


def _shape_problems(kind: str, spec: TensorSpec, config: ModelConfigFile) -> Iterator[str]:
    # model.py's auto_complete_config may fill in a listed tensor's data_type and dims; a
    # graph's tensor of a type Triton cannot serve is reported with the graph.
    open_ = config.is_open(kind)
    if not spec.name:
        yield f'has no `name`: add `name: "..."` (the name clients send the {kind} under).'
    if spec.data_type == TYPE_INVALID and not open_ and not spec.from_graph:
        yield "has no `data_type`: add one, e.g. `data_type: TYPE_FP32`."
    if not spec.dims and open_:
        return
    if not spec.dims:
        yield (
            "has no `dims`: add them, without the batch dimension (a scalar is `dims: [1]`, "
            "with `reshape: { shape: [] }` when max_batch_size > 0)."
        )
        return
    if any(d < 1 and d != -1 for d in spec.dims):
        yield (
            f"has dims {format_shape(spec.dims)}: every dimension must be >= 1, or -1 for a "
            "variable size."
        )
        return
    if spec.reshape is None:
        return
    if not spec.reshape and config.max_batch_size == 0 and config.batching_decided:
        yield (
            "has an empty `reshape` in a model with max_batch_size 0: Triton does not support "
            "scalar tensors there. Remove the reshape, or set max_batch_size > 0."
        )
    elif any(d < 1 and d != -1 for d in spec.reshape):
        yield (
            f"has reshape {format_shape(spec.reshape)}: every dimension must be >= 1, or -1 "
            "for a variable size."
        )
    elif _element_count(spec.dims) != _element_count(spec.reshape) and not (
        not spec.reshape and _element_count(spec.dims) == 1
    ):
        yield (
            f"has dims {format_shape(spec.dims)} but reshape {format_shape(spec.reshape)}: they "
            "must hold the same number of elements (and both be fixed or both be variable)."
        )
    elif -1 in spec.dims and len(_variable_groups(spec.dims)) != len(
        _variable_groups(spec.reshape)
    ):
        yield (
            f"has dims {format_shape(spec.dims)} but reshape {format_shape(spec.reshape)}: "
            "they must have the same number of variable (-1) dimensions."
        )
    elif -1 in spec.dims and _variable_groups(spec.dims) != _variable_groups(spec.reshape):
        yield (
            f"has dims {format_shape(spec.dims)} but reshape {format_shape(spec.reshape)}: the "
            "fixed dimensions between the -1s must hold the same number of elements."
        )


def _tensorrt_only_problems(kind: str, message: Any, platform: str) -> Iterator[str]:
    if platform == TENSORRT_PLATFORM:
        return
    for field in ("is_shape_tensor", "is_non_linear_format_io"):
        if getattr(message, field):
            yield (
                f'sets `{field}: true`, which only TensorRT models (`platform: "'
                f'{TENSORRT_PLATFORM}"`) support: remove it.'
            )


def check_batch_tensors(config: ModelConfigFile) -> list[ModelConfigError]:
    """`batch_input` and `batch_output` (Triton core's `ValidateBatchIO`)."""
    inputs = [spec.name for spec in config.inputs]
    outputs = [spec.name for spec in config.outputs]
    errors: list[ModelConfigError] = []
    for kind, entries in (
        ("batch_input", config.message.batch_input),
        ("batch_output", config.message.batch_output),
    ):
        for index, entry in enumerate(entries):
            problems = list(_batch_sources(kind, entry, inputs))
            if kind == "batch_input" and data_type_name(entry.data_type) not in (
                BATCH_INPUT_DATA_TYPES
            ):
                problems.append(
                    f"has data_type {data_type_name(entry.data_type)}: a batch input must be "
                    f"{' or '.join(BATCH_INPUT_DATA_TYPES)}."
                )
            if kind == "batch_output":
                problems.extend(_batch_output_targets(entry, outputs))
            errors.extend(
                ModelConfigError(
                    config.path,
                    f"{kind} {index + 1} {problem}",
                    line=config.line(f"{kind}[{index}]"),
                )
                for problem in problems
            )
    return errors


def _batch_sources(kind: str, entry: Any, inputs: list[str]) -> Iterator[str]:
    kind_name = type(entry).Kind.Name(entry.kind)
    if len(entry.source_input) != 1:
        yield (
            f"(`{kind_name}`) has {len(entry.source_input)} `source_input`s; this kind takes "
            "exactly one: the name of one of the model's inputs."
        )
    for source in entry.source_input:
        if source not in inputs:
            yield (
                f"names `source_input` `{source}`, which is not an input of this model."
                f"{did_you_mean(source, inputs)}"
            )


def _batch_output_targets(entry: Any, outputs: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for target in entry.target_name:
        if target in seen:
            yield f"names `target_name` `{target}` twice: name each output once."
        seen.add(target)
        if target not in outputs:
            yield (
                f"names `target_name` `{target}`, which is not an output of this model."
                f"{did_you_mean(target, outputs)}"
            )
