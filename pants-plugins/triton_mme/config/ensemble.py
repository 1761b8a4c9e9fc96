"""Ensembles: their own fields, their steps against the step models' configs, and the data flow
between steps (Triton core's `ValidateEnsembleSchedulingConfig` and `ValidateEnsembleConfig`).
"""

from __future__ import annotations

import dataclasses
import posixpath
from dataclasses import dataclass
from typing import Iterable, Mapping

from triton_mme.config.errors import ModelConfigError, did_you_mean
from triton_mme.config.parse import EnsembleStep, MapEntry, ModelConfigFile, TensorSpec
from triton_mme.config.tensors import data_type_name, format_shape

MODEL_TARGET_ALIAS = "triton_model"
ENSEMBLE_TARGET_ALIAS = "triton_ensemble"


def unknown_model_message(where: str, model_name: str, known_model_names: Iterable[str]) -> str:
    """The one wording for a step that calls a model no target provides."""
    return (
        f"{where} calls model `{model_name}`, but no `{MODEL_TARGET_ALIAS}` or "
        f"`{ENSEMBLE_TARGET_ALIAS}` target has that model name."
        f"{did_you_mean(model_name, known_model_names)} Fix the step's `model_name` or add the "
        "model's directory and BUILD file."
    )


def check_ensemble_fields(config: ModelConfigFile) -> list[ModelConfigError]:
    """Fields Triton refuses in an ensemble, which runs no instance of its own."""
    message = config.message
    errors = [
        ModelConfigError(
            config.path,
            f"an ensemble cannot have `{field}` (it runs no model instance itself): remove it, "
            "and set it on the step models instead.",
            line=config.line(field),
        )
        for field, present in (
            ("instance_group", len(message.instance_group) > 0),
            ("optimization", message.HasField("optimization")),
            ("model_warmup", len(message.model_warmup) > 0),
        )
        if present
    ]
    if not config.steps:
        errors.append(
            ModelConfigError(
                config.path,
                "an ensemble needs `ensemble_scheduling { step [...] }` with at least one step.",
            )
        )
    return errors


def full_shape(dims: Iterable[int], max_batch_size: int) -> tuple[int, ...]:
    """A tensor's shape as Triton sees it in a request: a batch dim first when batching is on."""
    return ((-1,) if max_batch_size > 0 else ()) + tuple(dims)


def shapes_compatible(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Same rank and equal dims, where -1 (variable size) matches any size."""
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b))


@dataclass(frozen=True)
class _Tensor:
    """A tensor flowing through an ensemble: who writes it, its dtype and full shape."""

    origin: str
    # -1: unknown (written by a step whose model is unknown, which is reported already, or left
    # to the model's auto_complete_config).
    data_type: int
    shape: tuple[int, ...] | None  # None: unknown (left to the model's auto_complete_config)


@dataclass(frozen=True)
class EnsembleMembers:
    """What an ensemble's checks know of its step models, by model name.

    A step model's config is the one Triton serves (`config/completion.py`) when the caller
    knows it, else the parsed file: then a model that lists no inputs (or no outputs) is taken
    to leave them to its backend, and they are not checked.
    """

    configs: Mapping[str, ModelConfigFile]  # the version a step without a pinned version calls
    versions: Mapping[str, tuple[int, ...]]  # the versions each step model loads
    known_model_names: tuple[str, ...] = ()
    # Each loaded version's config, for steps that pin a version (versions may be completed from
    # different graphs).
    version_configs: Mapping[str, Mapping[int, ModelConfigFile]] = dataclasses.field(
        default_factory=dict
    )

    def config_for(self, step: EnsembleStep) -> ModelConfigFile | None:
        if step.model_version > 0:
            pinned = self.version_configs.get(step.model_name, {}).get(step.model_version)
            if pinned is not None:
                return pinned
        return self.configs.get(step.model_name)


def _member_tensor(origin: str, member: ModelConfigFile, kind: str, spec: TensorSpec) -> _Tensor:
    """A step model's tensor as the ensemble sees it; what auto_complete_config may still fill
    in is unknown."""
    open_ = member.is_open(kind)
    data_type = -1 if open_ and spec.data_type == 0 else spec.data_type
    unknown_shape = (open_ and not spec.dims) or member.is_open("max_batch_size")
    shape = None if unknown_shape else full_shape(spec.dims, member.max_batch_size)
    return _Tensor(origin, data_type, shape)


def _from_graph(member: ModelConfigFile, spec: TensorSpec) -> str:
    """ "; graph: models/net/1/model.onnx" for a tensor Triton takes from the graph."""
    if not spec.from_graph:
        return ""
    return f"; graph: {posixpath.join(posixpath.dirname(member.path), spec.from_graph)}"


def _graph_note(member: ModelConfigFile, spec: TensorSpec) -> str:
    """ " (the graph's, which config.pbtxt leaves to Triton; graph: ...)" for a graph's tensor."""
    if not spec.from_graph:
        return ""
    return f" (the graph's, which config.pbtxt leaves to Triton{_from_graph(member, spec)})"


def _tensor_names(member: ModelConfigFile, kind: str, specs: Iterable[TensorSpec]) -> str:
    """The names of a step model's inputs or outputs, saying when they are the graph's."""
    specs = sorted(specs, key=lambda s: s.name)
    if not specs:
        return "none"
    if not specs[0].from_graph:
        return ", ".join(s.name for s in specs)
    plural = "s" if len(specs) > 1 else ""
    return (
        f"the graph's {kind}{plural} {', '.join(f'`{s.name}`' for s in specs)}, which "
        f"config.pbtxt leaves to Triton{_from_graph(member, specs[0])}"
    )


def check_ensemble_steps(
    config: ModelConfigFile, members: EnsembleMembers
) -> list[ModelConfigError]:
    """Checks an ensemble's steps against the configs of its step models (by model name)."""
    errors = [error for step in config.steps for error in _check_step(config, step, members)]
    tensors = _written_tensors(config, members, errors)
    for step in config.steps:
        errors.extend(_check_step_inputs(config, step, members, tensors))
    errors.extend(_check_ensemble_io(config, tensors))
    if not errors:  # The data flow makes sense only once every step is wired.
        errors.extend(_check_data_flow(config, members))
    return errors


def _check_step(
    config: ModelConfigFile, step: EnsembleStep, members: EnsembleMembers
) -> list[ModelConfigError]:
    def error(message: str, line: int | None = step.line) -> ModelConfigError:
        return ModelConfigError(config.path, message, line=line)

    errors = []
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
        errors.append(
            error(
                f"{step.where} has no {', no '.join(f'`{m}`' for m in missing)}: every step "
                "names its model and maps its inputs and outputs to ensemble tensors."
            )
        )
    for field, entries in (("input_map", step.input_map), ("output_map", step.output_map)):
        seen: dict[str, MapEntry] = {}
        for entry in entries:
            first = seen.setdefault(entry.key, entry)
            if first is not entry:
                errors.append(
                    error(
                        f"{step.where}: {field} key `{entry.key}` is given twice (`{first.value}`"
                        f" on line {first.line}, `{entry.value}` here); Triton silently keeps "
                        "only the last: map each key once.",
                        entry.line,
                    )
                )
    member = members.config_for(step)
    if step.model_name and member is None:
        errors.append(
            error(unknown_model_message(step.where, step.model_name, members.known_model_names))
        )
    if member is None:
        return errors
    batch = config.max_batch_size
    filled = member.completion.filled.get("max_batch_size") if member.completion else None
    if member.is_open("max_batch_size"):
        pass  # auto_complete_config may raise it.
    elif filled and member.max_batch_size < batch:
        errors.append(
            error(
                f"{step.where}: model `{step.model_name}` has max_batch_size "
                f"{member.max_batch_size} ({filled}), smaller than the ensemble's {batch}: set "
                f"`max_batch_size: {batch}` (or more) in the model's config.pbtxt, or lower the "
                "ensemble's."
            )
        )
    elif member.max_batch_size != 0 and member.max_batch_size < batch:
        errors.append(
            error(
                f"{step.where}: model `{step.model_name}` has max_batch_size "
                f"{member.max_batch_size}, smaller than the ensemble's {batch}: raise the "
                "model's max_batch_size (or set it to 0), or lower the ensemble's."
            )
        )
    versions = members.versions.get(step.model_name)
    if step.model_version > 0 and versions is not None and step.model_version not in versions:
        errors.append(
            error(
                f"{step.where} pins `model_version: {step.model_version}`, but model "
                f"`{step.model_name}` loads version(s) {', '.join(map(str, versions)) or 'none'}"
                ": pin one of those, or use `model_version: -1` (the latest).",
            )
        )
    return errors


def _written_tensors(
    config: ModelConfigFile, members: EnsembleMembers, errors: list[ModelConfigError]
) -> dict[str, _Tensor]:
    """Every ensemble tensor and its writer; reports output_map keys and second writers."""
    tensors = {
        t.name: _Tensor("ensemble input", t.data_type, full_shape(t.dims, config.max_batch_size))
        for t in config.inputs
    }
    inputs = set(tensors)
    for step in config.steps:
        member = members.config_for(step)
        outputs = {t.name: t for t in member.outputs} if member else {}
        # A parsed config without outputs leaves them to its backend.
        unknown = member is None or (member.completion is None and not outputs)
        for entry in sorted(step.output_map, key=lambda e: e.key):
            if unknown or (entry.key not in outputs and member and member.is_open("output")):
                tensors.setdefault(entry.value, _Tensor(step.where, -1, None))
                continue
            assert member is not None
            if entry.key not in outputs:
                errors.append(
                    ModelConfigError(
                        config.path,
                        f"{step.where}: output_map key `{entry.key}` is not an output of model "
                        f"`{step.model_name}` (its outputs: "
                        f"{_tensor_names(member, 'output', outputs.values())})."
                        + did_you_mean(entry.key, outputs),
                        line=entry.line,
                    )
                )
                continue
            if entry.value in tensors:
                first = (
                    "it is an ensemble input"
                    if entry.value in inputs
                    else f"{tensors[entry.value].origin} writes it too"
                )
                errors.append(
                    ModelConfigError(
                        config.path,
                        f"{step.where}: ensemble tensor `{entry.value}` is written a second time "
                        f"({first}); every ensemble tensor must have exactly one producer: "
                        "rename one of them.",
                        line=entry.line,
                    )
                )
                continue
            spec = outputs[entry.key]
            origin = f"{step.where} output `{entry.key}`{_graph_note(member, spec)}"
            tensors[entry.value] = _member_tensor(origin, member, "output", spec)
    return tensors


def _check_step_inputs(
    config: ModelConfigFile,
    step: EnsembleStep,
    members: EnsembleMembers,
    tensors: Mapping[str, _Tensor],
) -> list[ModelConfigError]:
    member = members.config_for(step)
    # Unknown, or a parsed config without inputs, which leaves them to its backend.
    if member is None or (member.completion is None and not member.inputs):
        return []
    errors = []
    inputs = {t.name: t for t in member.inputs}
    where = f"step {step.index + 1} (`{step.model_name}`)"
    for entry in sorted(step.input_map, key=lambda e: e.key):
        if entry.key not in inputs and member.is_open("input"):
            continue  # auto_complete_config may add it.
        if entry.key not in inputs:
            errors.append(
                ModelConfigError(
                    config.path,
                    f"{where}: input_map key `{entry.key}` is not an input of model "
                    f"`{step.model_name}` (its inputs: "
                    f"{_tensor_names(member, 'input', inputs.values())})."
                    f"{did_you_mean(entry.key, inputs)}",
                    line=entry.line,
                )
            )
            continue
        source = tensors.get(entry.value)
        if source is None:
            errors.append(
                ModelConfigError(
                    config.path,
                    f"{where}: input `{entry.key}` reads ensemble tensor `{entry.value}`, which "
                    "is neither an ensemble input nor written by any step: map it to one of "
                    f"those.{did_you_mean(entry.value, tensors)}",
                    line=entry.line,
                )
            )
            continue
        spec = inputs[entry.key]
        errors.extend(
            _mismatches(
                config.path,
                entry.line,
                f"{where}: input `{entry.key}` of `{step.model_name}`{_graph_note(member, spec)} "
                f"reads `{entry.value}`",
                source,
                _member_tensor("", member, "input", spec),
            )
        )
    mapped = step.inputs()
    errors.extend(
        ModelConfigError(
            config.path,
            f"{where}: required input `{name}` of model `{step.model_name}`"
            f"{_graph_note(member, spec)} is not in the step's input_map: add "
            f'`input_map {{ key: "{name}" value: "<tensor>" }}`'
            + (
                "."
                if spec.from_graph
                else " (or mark the input `optional: true` in the model's config)."
            ),
            line=step.line,
        )
        for name, spec in sorted(inputs.items())
        if name not in mapped and not spec.optional
    )
    return errors


def _check_ensemble_io(
    config: ModelConfigFile, tensors: Mapping[str, _Tensor]
) -> list[ModelConfigError]:
    read = {entry.value for step in config.steps for entry in step.input_map}
    ensemble_inputs = {t.name for t in config.inputs}
    errors = [
        ModelConfigError(
            config.path,
            f"ensemble input `{spec.name}` is not read by any step: map it in a step's "
            "input_map or remove it.",
            line=spec.line,
        )
        for spec in config.inputs
        if spec.name not in read
    ]
    for spec in config.outputs:
        source = tensors.get(spec.name)
        if source is None or spec.name in ensemble_inputs:
            errors.append(
                ModelConfigError(
                    config.path,
                    f"ensemble output `{spec.name}` is not written by any step: map a step "
                    f'output to it (`output_map {{ key: "<output>" value: "{spec.name}" }}`).',
                    line=spec.line,
                )
            )
            continue
        errors.extend(
            _mismatches(
                config.path,
                spec.line,
                f"ensemble output `{spec.name}`",
                source,
                _Tensor("", spec.data_type, full_shape(spec.dims, config.max_batch_size)),
            )
        )
    return errors


def _mismatches(
    path: str, line: int | None, what: str, source: _Tensor, target: _Tensor
) -> list[ModelConfigError]:
    if source.data_type < 0:  # Written by a step whose model is unknown (reported already).
        return []
    errors = []
    if target.data_type >= 0 and source.data_type != target.data_type:
        errors.append(
            ModelConfigError(
                path,
                f"{what}: data type mismatch: {source.origin} is "
                f"{data_type_name(source.data_type)}, but {data_type_name(target.data_type)} is "
                "expected. Make both configs use the same data_type.",
                line=line,
            )
        )
    if (
        source.shape is not None
        and target.shape is not None
        and not shapes_compatible(source.shape, target.shape)
    ):
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


def _check_data_flow(config: ModelConfigFile, members: EnsembleMembers) -> list[ModelConfigError]:
    """What Triton finds by running the steps in dependency order: tensors nobody reads, outputs
    that wait on themselves, and steps fed by different decoupled models."""
    read = {entry.value for step in config.steps for entry in step.input_map}
    outputs = {spec.name for spec in config.outputs}
    errors = [
        ModelConfigError(
            config.path,
            f"{step.where} writes ensemble tensor `{entry.value}`, but no step reads it and it "
            f"is not an ensemble output: drop `{entry.key}` from the step's output_map (a step "
            "may leave model outputs unmapped), or read or return it.",
            line=entry.line,
        )
        for step in config.steps
        for entry in step.output_map
        if entry.value not in read and entry.value not in outputs
    ]
    # Labels: which decoupled step (or the ensemble's inputs, 0) a tensor's responses come from.
    labels = {spec.name: 0 for spec in config.inputs}
    pending = list(config.steps)
    while pending:
        ready = [s for s in pending if all(e.value in labels for e in s.input_map)]
        if not ready:
            break
        for step in ready:
            pending.remove(step)
            sources = {labels[e.value] for e in step.input_map}
            if len(sources) > 1:
                errors.append(_decoupled_error(config, f"{step.where} reads", step.line))
            member = members.config_for(step)
            label = step.index + 1 if member and member.decoupled else min(sources, default=0)
            labels.update((entry.value, label) for entry in step.output_map)
    for step in pending:
        waiting = sorted({e.value for e in step.input_map if e.value not in labels})
        errors.append(
            ModelConfigError(
                config.path,
                f"{step.where} can never run: it reads {', '.join(f'`{w}`' for w in waiting)}, "
                "which only this step or a step after it (waiting on it) writes. Break the "
                "cycle: a step must only read ensemble inputs and outputs of steps that do not "
                "depend on it.",
                line=step.line,
            )
        )
    if len({labels[o] for o in outputs if o in labels}) > 1:
        errors.append(_decoupled_error(config, "the ensemble's outputs are", config.line("output")))
    return errors


def _decoupled_error(config: ModelConfigFile, where: str, line: int | None) -> ModelConfigError:
    return ModelConfigError(
        config.path,
        f"{where} tensors that come from different decoupled models (or from a decoupled "
        "model and the ensemble's inputs); Triton refuses this, since their responses cannot be "
        "matched up. Feed it from one decoupled step only.",
        line=line,
    )


def find_cycle(start: str, step_models: Mapping[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    """A chain of ensembles from `start` back to itself (`("a", "b", "a")`), if there is one.

    `step_models` maps each ensemble's model name to the model names its steps call.
    """
    stack: list[tuple[str, ...]] = [(start,)]
    seen: set[str] = set()
    while stack:
        path = stack.pop()
        for name in step_models.get(path[-1], ()):
            if name == start:
                return (*path, start)
            if name not in seen:
                seen.add(name)
                stack.append((*path, name))
    return None
