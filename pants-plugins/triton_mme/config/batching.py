"""`dynamic_batching` and `sequence_batching`: the rules of Triton core's `ValidateModelConfig`."""

from __future__ import annotations

import posixpath
from typing import Any, Iterator

from triton_mme.config.errors import ModelConfigError
from triton_mme.config.parse import ModelConfigFile
from triton_mme.config.tensors import data_type_name

BATCH_STRATEGY_PATH = "TRITON_BATCH_STRATEGY_PATH"
_BOOLEAN_VALUES = ("int32_false_true", "fp32_false_true", "bool_false_true")
_CORRID_TYPES = ("TYPE_UINT64", "TYPE_INT64", "TYPE_UINT32", "TYPE_INT32", "TYPE_STRING")


def check_batching(config: ModelConfigFile) -> list[ModelConfigError]:
    message = config.message
    if message.HasField("dynamic_batching"):
        field, problems = "dynamic_batching", _dynamic(message.dynamic_batching, config)
    elif message.HasField("sequence_batching"):
        field, problems = "sequence_batching", _sequence(message.sequence_batching, config)
    else:
        return []
    line = config.line(field)
    return [ModelConfigError(config.path, f"{field}: {p}", line=line) for p in problems]


def _preferred_sizes(sizes: Any, config: ModelConfigFile, triton_says: str) -> Iterator[str]:
    """Triton's core checks preferred sizes against config.pbtxt's max_batch_size when it reads
    the file, before any backend completes the config (`ValidateModelConfig`, called by the
    model repository manager right after `GetNormalizedModelConfig`): a max_batch_size that a
    backend or `auto_complete_config` would fill in comes too late."""
    max_batch_size = config.max_batch_size
    name = config.name or posixpath.basename(posixpath.dirname(config.path))
    for size in sizes:
        if size <= 0:
            yield f"preferred_batch_size {size} must be positive."
        elif size > max_batch_size and config.line("max_batch_size") is None:
            yield (
                f"preferred_batch_size {size} needs a max_batch_size of at least {size}, but "
                "config.pbtxt sets none, and Triton checks preferred sizes against the file "
                f'before any backend fills one in, so it refuses the model ("{triton_says} '
                f'{name}"): set `max_batch_size: {size}` (or more) in config.pbtxt.'
            )
        elif size > max_batch_size:
            yield (
                f"preferred_batch_size {size} is larger than max_batch_size "
                f"{max_batch_size}: lower it, or raise max_batch_size."
            )


def _dynamic(batching: Any, config: ModelConfigFile) -> Iterator[str]:
    yield from _preferred_sizes(
        batching.preferred_batch_size,
        config,
        "dynamic batching preferred size must be <= max batch size for",
    )
    levels = batching.priority_levels
    if levels:
        if not 1 <= batching.default_priority_level <= levels:
            yield (
                f"default_priority_level {batching.default_priority_level} is outside 1 to "
                f"{levels} (priority_levels {levels}): set it in that range."
            )
        for level in sorted(batching.priority_queue_policy):
            if not 1 <= level <= levels:
                yield (
                    f"priority_queue_policy has key {level}, outside 1 to {levels} "
                    f"(priority_levels {levels}): use a level in that range."
                )
    if not batching.preserve_ordering:
        return
    if levels > 1:
        yield (
            f"`preserve_ordering: true` allows only one priority level, but priority_levels is "
            f"{levels}: drop one of the two."
        )
    policies = [batching.default_queue_policy, *batching.priority_queue_policy.values()]
    if any(p.timeout_action == p.DELAY and p.default_timeout_microseconds for p in policies):
        yield (
            "`preserve_ordering: true` cannot go with a queue policy whose timeout_action is "
            "DELAY (and a timeout): use `timeout_action: REJECT`, or no timeout."
        )


def _sequence(batching: Any, config: ModelConfigFile) -> Iterator[str]:
    if config.message.response_cache.enable:
        yield (
            "Triton's response cache does not work with sequence batching: remove "
            "`response_cache { enable: true }`."
        )
    if BATCH_STRATEGY_PATH in config.parameters:
        yield f"the parameter {BATCH_STRATEGY_PATH} cannot be used with sequence batching."
    yield from _controls(batching.control_input)
    if batching.HasField("oldest"):
        yield from _preferred_sizes(
            batching.oldest.preferred_batch_size,
            config,
            "sequence batching preferred batch size must be <= max batch size for",
        )
    if batching.HasField("direct") and not 0.0 <= batching.direct.minimum_slot_utilization <= 1.0:
        yield "direct.minimum_slot_utilization must be between 0.0 and 1.0."


def _controls(control_inputs: Any) -> Iterator[str]:
    names: set[str] = set()
    kinds: set[str] = set()
    for control_input in control_inputs:
        if not control_input.name:
            yield "a control_input has no `name`: name the tensor the control is sent in."
        elif control_input.name in names:
            yield (
                f"control_input `{control_input.name}` is given twice: each control tensor "
                "carries one control kind, so give the second one its own name."
            )
        names.add(control_input.name)
        for control in control_input.control:
            kind = type(control).Kind.Name(control.kind)
            if kind in kinds:
                yield f"the control kind {kind} is given twice: keep one."
            kinds.add(kind)
            yield from _control_values(kind, control)


def _control_values(kind: str, control: Any) -> Iterator[str]:
    given = [field for field in _BOOLEAN_VALUES if len(getattr(control, field))]
    if kind == "CONTROL_SEQUENCE_CORRID":
        if given:
            yield f"the CONTROL_SEQUENCE_CORRID control takes no `{given[0]}`: remove it."
        if data_type_name(control.data_type) not in _CORRID_TYPES:
            yield (
                "the CONTROL_SEQUENCE_CORRID control needs a `data_type`, one of "
                f"{', '.join(_CORRID_TYPES)}."
            )
        return
    if kind not in ("CONTROL_SEQUENCE_START", "CONTROL_SEQUENCE_END", "CONTROL_SEQUENCE_READY"):
        return
    if not given:
        yield (
            f"the {kind} control has no value: add `int32_false_true: [0, 1]` (or "
            "`fp32_false_true` or `bool_false_true`)."
        )
    elif len(given) > 1:
        yield f"the {kind} control sets {' and '.join(given)}: keep only one of them."
    elif len(getattr(control, given[0])) != 2:
        yield (
            f"the {kind} control's `{given[0]}` must have exactly 2 entries (false, then true), "
            "e.g. `[0, 1]`."
        )
