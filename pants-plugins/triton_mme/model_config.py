"""Reading and validating config.pbtxt with Triton's own schema (pure functions; no rules).

Triton parses config.pbtxt as protobuf text format into `inference.ModelConfig`; we use the same
generated schema, strictly, so a config that parses here parses in Triton. The checks below are
the ones Triton makes when it loads a model (or an ensemble), done before a server ever runs, with
messages that name the file, the line, the tensor or step, and the fix.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from typing import Any, Iterable, Mapping

from google.protobuf import text_format
from triton_mme.proto import model_config_pb2

ENSEMBLE_PLATFORM = "ensemble"


class ModelConfigError(ValueError):
    """A config.pbtxt problem, phrased for the person who wrote the file."""

    def __init__(self, path: str, message: str, *, line: int | None = None) -> None:
        location = f"{path}:{line}" if line else path
        super().__init__(f"{location}: {message}")
        self.path = path
        self.line = line


def parse_model_config(path: str, text: str) -> Any:
    """Parses config.pbtxt text into a `ModelConfig` message; unknown fields are errors."""
    config = model_config_pb2.ModelConfig()  # type: ignore[attr-defined]
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        line = e.GetLine()
        column = e.GetColumn()
        # The parser's message starts with "line:column : "; we print the location ourselves.
        reason = str(e).split(" : ", 1)[-1]
        raise ModelConfigError(
            path,
            f"{reason} (column {column}).{_field_name_hint(config, reason)} Field names and "
            "values must follow Triton's "
            "model_config.proto: "
            "https://github.com/triton-inference-server/common/blob/main/protobuf/model_config.proto",
            line=line,
        ) from e
    return config


_UNKNOWN_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(\w+)"')


def _field_name_hint(config: Any, reason: str) -> str:
    """A "Did you mean `x`?" hint for a misspelt field name, from its message's field names."""
    unknown = _UNKNOWN_FIELD.search(reason)
    if not unknown:
        return ""
    try:
        message = config.DESCRIPTOR.file.pool.FindMessageTypeByName(unknown.group(1))
    except KeyError:
        return ""
    close = difflib.get_close_matches(unknown.group(2), [f.name for f in message.fields], n=3)
    return f" Did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""


def is_ensemble(config: Any) -> bool:
    return bool(config.platform == ENSEMBLE_PLATFORM)


def ensemble_step_model_names(config: Any) -> tuple[str, ...]:
    """The model names an ensemble's steps call, in order, each once."""
    names = (step.model_name for step in config.ensemble_scheduling.step)
    return tuple(dict.fromkeys(names))


EXECUTION_ENV_PATH = "EXECUTION_ENV_PATH"
MODEL_DIRECTORY_VARIABLE = "$$TRITON_MODEL_DIRECTORY/"
MODEL_TARGET_ALIAS = "triton_model"
ENSEMBLE_TARGET_ALIAS = "triton_ensemble"


def line_of(text: str, pattern: str, *, after: int = 1) -> int | None:
    """The 1-based number of the first line at or after `after` that matches the regex `pattern`.

    The text-format parser keeps no positions once parsing succeeded, so checks on a parsed
    config find their line by searching the text; `None` when nothing matches.
    """
    regex = re.compile(pattern)
    for number, line in enumerate(text.splitlines()[after - 1 :], start=after):
        if regex.search(line.split("#", 1)[0]):
            return number
    return None


def _quoted(name: str) -> str:
    return '"' + re.escape(name) + '"'


def tensor_line(text: str, name: str) -> int | None:
    """The line declaring the input or output tensor `name` (`name: "X"`)."""
    return line_of(text, r"\bname\s*:\s*" + _quoted(name))


def step_lines(text: str) -> list[int | None]:
    """The line of each ensemble step's `model_name`, in order."""
    start = line_of(text, r"\bensemble_scheduling\b")
    lines: list[int | None] = []
    if start is None:
        return lines
    found = line_of(text, r"\bmodel_name\s*:", after=start)
    while found is not None:
        lines.append(found)
        found = line_of(text, r"\bmodel_name\s*:", after=found + 1)
    return lines


def data_type_name(data_type: int) -> str:
    return str(model_config_pb2.DataType.Name(data_type))  # type: ignore[attr-defined]


def full_shape(dims: Iterable[int], max_batch_size: int) -> tuple[int, ...]:
    """A tensor's shape as Triton sees it in a request: a batch dim first when batching is on."""
    return ((-1,) if max_batch_size > 0 else ()) + tuple(dims)


def shapes_compatible(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Same rank and equal dims, where -1 (variable size) matches any size."""
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b))


def format_shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def check_model_directory(
    path: str,
    text: str,
    config: Any,
    *,
    model_name: str,
    target_alias: str,
    folder_names: Iterable[str],
    file_names: Iterable[str],
) -> list[ModelConfigError]:
    """Checks one model directory on its own: name, target type, version folders, label files,
    env path.

    `folder_names` and `file_names` are the names of the model directory's sub-folders and files.
    """
    errors: list[ModelConfigError] = []
    ensemble = is_ensemble(config)
    if config.name and config.name != model_name:
        errors.append(
            ModelConfigError(
                path,
                f'`name: "{config.name}"` differs from the model name `{model_name}` (the '
                "directory name, or the target's `model_name`). Triton refuses such a model: "
                f'set `name: "{model_name}"` or remove the `name` line.',
                line=line_of(text, r"^\s*name\s*:"),
            )
        )
    if target_alias == MODEL_TARGET_ALIAS and ensemble:
        errors.append(
            ModelConfigError(
                path,
                f'this config has `platform: "{ENSEMBLE_PLATFORM}"` but its BUILD file declares '
                f"`{MODEL_TARGET_ALIAS}()`: use `{ENSEMBLE_TARGET_ALIAS}()` for an ensemble.",
                line=line_of(text, r"^\s*platform\s*:"),
            )
        )
    if target_alias == ENSEMBLE_TARGET_ALIAS and not ensemble:
        errors.append(
            ModelConfigError(
                path,
                f"the BUILD file declares `{ENSEMBLE_TARGET_ALIAS}()` but this config does not "
                f'have `platform: "{ENSEMBLE_PLATFORM}"`: add that line if this is an ensemble, '
                f"otherwise use `{MODEL_TARGET_ALIAS}()`.",
            )
        )
    errors.extend(check_version_folders(path, folder_names, ensemble=ensemble))
    errors.extend(check_label_files(path, text, config, file_names))
    errors.extend(check_execution_env_path(path, text, config))
    if ensemble:
        errors.extend(check_ensemble_fields(path, text, config))
    return errors


def check_version_folders(
    path: str, folder_names: Iterable[str], *, ensemble: bool
) -> list[ModelConfigError]:
    """Version folders are positive integers without a leading 0 (Triton ignores `01/`)."""
    directory = posixpath.dirname(path) or "."
    errors: list[ModelConfigError] = []
    versions = []
    for folder in sorted(folder_names):
        if not folder[:1].isdigit():
            continue  # Not meant as a version folder (e.g. `tests/`): Triton ignores it too.
        if not folder.isdigit():
            errors.append(
                ModelConfigError(
                    path,
                    f"version folder `{directory}/{folder}/` is not a number; Triton only loads "
                    "folders named by a positive integer: rename it (e.g. `1/`).",
                )
            )
        elif folder.startswith("0"):
            errors.append(
                ModelConfigError(
                    path,
                    f"version folder `{directory}/{folder}/` starts with 0, so Triton ignores "
                    f"it: rename it to `{int(folder) or 1}/`.",
                )
            )
        else:
            versions.append(folder)
    if not versions and not errors and not ensemble:
        errors.append(
            ModelConfigError(
                path,
                f"`{directory}/` has no numeric version folder, so Triton would serve nothing: "
                "put the model's files in `1/` (e.g. `1/model.py` or `1/model.onnx`).",
            )
        )
    return errors


def check_label_files(
    path: str, text: str, config: Any, file_names: Iterable[str]
) -> list[ModelConfigError]:
    """Each output's `label_filename` names a file beside config.pbtxt."""
    present = set(file_names)
    directory = posixpath.dirname(path) or "."
    return [
        ModelConfigError(
            path,
            f"output `{output.name}` names the label file `{output.label_filename}`, which is not "
            f"in `{directory}/`: add it beside config.pbtxt or remove `label_filename`.",
            line=line_of(text, _quoted(output.label_filename)),
        )
        for output in config.output
        if output.label_filename and output.label_filename not in present
    ]


def check_execution_env_path(path: str, text: str, config: Any) -> list[ModelConfigError]:
    """`EXECUTION_ENV_PATH` must name a file inside the model directory (each model ships its
    own env archive; SageMaker extracts every tarball into its own directory)."""
    if EXECUTION_ENV_PATH not in config.parameters:
        return []
    value = config.parameters[EXECUTION_ENV_PATH].string_value
    line = line_of(text, _quoted(EXECUTION_ENV_PATH))
    fix = f'use e.g. `string_value: "{MODEL_DIRECTORY_VARIABLE}python_env.tar.gz"`.'
    if not value.startswith(MODEL_DIRECTORY_VARIABLE):
        return [
            ModelConfigError(
                path,
                f'{EXECUTION_ENV_PATH} "{value}" does not start with '
                f"`{MODEL_DIRECTORY_VARIABLE}`: the env archive must ship inside the model "
                f"directory; {fix}",
                line=line,
            )
        ]
    relative = value[len(MODEL_DIRECTORY_VARIABLE) :]
    normalized = posixpath.normpath(relative) if relative else ""
    if not relative or normalized == ".." or normalized.startswith(("../", "/")):
        return [
            ModelConfigError(
                path,
                f'{EXECUTION_ENV_PATH} "{value}" points outside the model directory: the env '
                f"archive must ship inside it; {fix}",
                line=line,
            )
        ]
    return []


def check_ensemble_fields(path: str, text: str, config: Any) -> list[ModelConfigError]:
    """Fields Triton refuses in an ensemble, which runs no instance of its own."""
    errors = []
    forbidden = {
        "instance_group": len(config.instance_group) > 0,
        "optimization": config.HasField("optimization"),
        "model_warmup": len(config.model_warmup) > 0,
    }
    for field, present in forbidden.items():
        if present:
            errors.append(
                ModelConfigError(
                    path,
                    f"an ensemble cannot have `{field}` (it runs no model instance itself): "
                    f"remove it, and set it on the step models instead.",
                    line=line_of(text, rf"^\s*{field}\b"),
                )
            )
    if not config.HasField("ensemble_scheduling") or not config.ensemble_scheduling.step:
        errors.append(
            ModelConfigError(
                path,
                "an ensemble needs `ensemble_scheduling { step [...] }` with at least one step.",
            )
        )
    return errors


class _Tensor:
    """A tensor flowing through an ensemble: who writes it, its dtype and full shape."""

    def __init__(self, origin: str, data_type: int, shape: tuple[int, ...]) -> None:
        self.origin = origin
        self.data_type = data_type
        self.shape = shape


def check_ensemble_steps(
    path: str,
    text: str,
    config: Any,
    member_configs: Mapping[str, Any],
    *,
    known_model_names: Iterable[str] = (),
) -> list[ModelConfigError]:
    """Checks an ensemble's steps against the configs of its step models (by model name).

    `member_configs` holds the parsed config of every step model that exists; a step naming a
    model not in it is reported with the close matches from `known_model_names`.
    """
    errors: list[ModelConfigError] = []
    lines = step_lines(text)

    def error(message: str, line: int | None = None) -> None:
        errors.append(ModelConfigError(path, message, line=line))

    def matching_line(step_line: int | None, name: str) -> int | None:
        return line_of(text, _quoted(name), after=step_line) if step_line else step_line

    batch = config.max_batch_size
    tensors: dict[str, _Tensor] = {
        t.name: _Tensor("ensemble input", t.data_type, full_shape(t.dims, batch))
        for t in config.input
    }
    ensemble_inputs = set(tensors)
    used: set[str] = set()
    steps = list(config.ensemble_scheduling.step)
    members: list[Any] = []
    for index, step in enumerate(steps):
        line = lines[index] if index < len(lines) else None
        where = f"step {index + 1}" + (f" (`{step.model_name}`)" if step.model_name else "")
        member = None
        missing = [
            field
            for field, present in (
                ("model_name", bool(step.model_name)),
                ("input_map", bool(step.input_map)),
                ("output_map", bool(step.output_map)),
            )
            if not present
        ]
        if missing:
            error(
                f"{where} has no {', no '.join(f'`{m}`' for m in missing)}: every step names "
                "its model and maps its inputs and outputs to ensemble tensors.",
                line,
            )
        if step.model_name:
            member = member_configs.get(step.model_name)
            if member is None:
                close = difflib.get_close_matches(step.model_name, list(known_model_names))
                hint = f" Did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""
                error(
                    f"{where} calls model `{step.model_name}`, but no `triton_model` or "
                    f"`triton_ensemble` target has that model name.{hint} Fix the step's "
                    "`model_name` or add the model's directory and BUILD file.",
                    line,
                )
            elif member.max_batch_size != 0 and member.max_batch_size < batch:
                error(
                    f"{where}: model `{step.model_name}` has max_batch_size "
                    f"{member.max_batch_size}, smaller than the ensemble's {batch}: raise the "
                    "model's max_batch_size (or set it to 0), or lower the ensemble's.",
                    line,
                )
        members.append(member)
        if member is None:
            for tensor in step.output_map.values():
                tensors.setdefault(tensor, _Tensor(where, -1, ()))
            continue
        outputs = {t.name: t for t in member.output}
        for key, tensor in sorted(step.output_map.items()):
            if key not in outputs:
                error(
                    f"{where}: output_map key `{key}` is not an output of model "
                    f"`{step.model_name}` (its outputs: {', '.join(sorted(outputs)) or 'none'}).",
                    matching_line(line, key),
                )
                continue
            if tensor in tensors:
                first = (
                    "it is an ensemble input"
                    if tensor in ensemble_inputs
                    else (f"{tensors[tensor].origin} writes it too")
                )
                error(
                    f"{where}: ensemble tensor `{tensor}` is written a second time ({first}); "
                    "every ensemble tensor must have exactly one producer: rename one of them.",
                    matching_line(line, tensor),
                )
                continue
            spec = outputs[key]
            tensors[tensor] = _Tensor(
                f"{where} output `{key}`",
                spec.data_type,
                full_shape(spec.dims, member.max_batch_size),
            )

    for index, (step, member) in enumerate(zip(steps, members)):
        line = lines[index] if index < len(lines) else None
        where = f"step {index + 1} (`{step.model_name}`)"
        used.update(step.input_map.values())
        if member is None:
            continue
        inputs = {t.name: t for t in member.input}
        for key, tensor in sorted(step.input_map.items()):
            if key not in inputs:
                error(
                    f"{where}: input_map key `{key}` is not an input of model "
                    f"`{step.model_name}` (its inputs: {', '.join(sorted(inputs)) or 'none'}).",
                    matching_line(line, key),
                )
                continue
            source = tensors.get(tensor)
            if source is None:
                error(
                    f"{where}: input `{key}` reads ensemble tensor `{tensor}`, which is neither "
                    "an ensemble input nor written by any step: map it to one of those.",
                    matching_line(line, tensor),
                )
                continue
            spec = inputs[key]
            errors.extend(
                _mismatches(
                    path,
                    matching_line(line, tensor),
                    f"{where}: input `{key}` of `{step.model_name}` reads `{tensor}`",
                    source,
                    _Tensor("", spec.data_type, full_shape(spec.dims, member.max_batch_size)),
                )
            )
        for name, spec in sorted(inputs.items()):
            if name not in step.input_map and not spec.optional:
                error(
                    f"{where}: required input `{name}` of model `{step.model_name}` is not in "
                    f'the step\'s input_map: add `input_map {{ key: "{name}" value: "<tensor>" }}`'
                    " (or mark the input `optional: true` in the model's config).",
                    line,
                )

    for name in sorted(ensemble_inputs - used):
        error(
            f"ensemble input `{name}` is not read by any step: map it in a step's input_map or "
            "remove it.",
            tensor_line(text, name),
        )
    for spec in config.output:
        source = tensors.get(spec.name)
        if source is None or spec.name in ensemble_inputs:
            error(
                f"ensemble output `{spec.name}` is not written by any step: map a step output "
                f'to it (`output_map {{ key: "<output>" value: "{spec.name}" }}`).',
                tensor_line(text, spec.name),
            )
            continue
        errors.extend(
            _mismatches(
                path,
                tensor_line(text, spec.name),
                f"ensemble output `{spec.name}`",
                source,
                _Tensor("", spec.data_type, full_shape(spec.dims, batch)),
            )
        )
    return errors


def _mismatches(
    path: str, line: int | None, what: str, source: _Tensor, target: _Tensor
) -> list[ModelConfigError]:
    if source.data_type < 0:  # Written by a step whose model is unknown (reported already).
        return []
    errors = []
    if source.data_type != target.data_type:
        errors.append(
            ModelConfigError(
                path,
                f"{what}: data type mismatch: {source.origin} is "
                f"{data_type_name(source.data_type)}, but {data_type_name(target.data_type)} is "
                "expected. Make both configs use the same data_type.",
                line=line,
            )
        )
    if not shapes_compatible(source.shape, target.shape):
        errors.append(
            ModelConfigError(
                path,
                f"{what}: shape mismatch: {source.origin} has shape "
                f"{format_shape(source.shape)}, but {format_shape(target.shape)} is expected "
                "(shapes include the batch dimension -1 when max_batch_size > 0; -1 matches any "
                "size). Make the dims agree.",
                line=line,
            )
        )
    return errors
