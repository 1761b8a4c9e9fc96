"""Parsing config.pbtxt once: Triton's schema, a typed summary, and the line of every field.

Triton parses config.pbtxt as protobuf text format into `inference.ModelConfig`; we use the same
generated schema, strictly, so a config that parses here parses in Triton. The parsed message
keeps no positions, so a second pass walks the text with protobuf's own tokenizer and records
the line of every field occurrence by its path (`input[1]`, `ensemble_scheduling[0].step[2]`).
Repeated fields are indexed by occurrence, so `input [...]` given twice indexes like the message,
and map entries (`input_map`) keep their file order and their duplicates, which the message
(last one wins) loses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from google.protobuf import text_format
from pants.util.frozendict import FrozenDict
from triton_mme.config.errors import ModelConfigError, did_you_mean
from triton_mme.proto import model_config_pb2
from triton_mme.scripts.config_platform import is_ensemble_platform

MODEL_CONFIG_PROTO = (
    "https://github.com/triton-inference-server/common/blob/main/protobuf/model_config.proto"
)


@dataclass(frozen=True)
class TensorSpec:
    """An `input`, `output` or ensemble tensor as config.pbtxt declares it."""

    name: str
    data_type: int
    dims: tuple[int, ...]
    reshape: tuple[int, ...] | None  # None when the tensor has no `reshape`
    optional: bool
    line: int | None
    # The ONNX graph (`1/model.onnx`) Triton's onnxruntime backend takes this tensor from, when
    # config.pbtxt leaves its inputs or outputs to Triton (see `config/completion.py`).
    from_graph: str = ""

    def label(self, kind: str) -> str:
        """How messages name it: "input `X`", or "the graph's input `X`, which config.pbtxt
        leaves to Triton"."""
        if self.from_graph:
            return f"the graph's {kind} `{self.name}`, which config.pbtxt leaves to Triton"
        return f"{kind} `{self.name}`" if self.name else f"an {kind} without a name"


@dataclass(frozen=True)
class Completion:
    """What Triton's backend does to a config at load, beyond config.pbtxt (`config/completion.py`).

    A parsed config has none: the checks then decide only what the file decides, as before any
    backend runs. A completed one says which fields the backend filled in, and which ones model
    code may still fill in where the checks cannot see it (python's `auto_complete_config`).
    """

    # Top-level field -> where its value comes from, e.g. "max_batch_size" -> "Triton's
    # onnxruntime backend, ...".
    filled: FrozenDict[str, str] = FrozenDict()
    # Fields model code may still fill in at load ("input", "output", "max_batch_size", ...).
    left_open: tuple[str, ...] = ()
    # Who fills those in, e.g. "model.py's auto_complete_config (models/m/1/model.py:12)".
    left_to: str = ""

    def is_open(self, field: str) -> bool:
        return field in self.left_open


@dataclass(frozen=True)
class MapEntry:
    """One `input_map`/`output_map` entry of an ensemble step, in file order."""

    key: str
    value: str
    line: int | None


@dataclass(frozen=True)
class EnsembleStep:
    index: int  # 0-based, as in the file
    model_name: str
    model_version: int
    input_map: tuple[MapEntry, ...]  # every entry, duplicates included
    output_map: tuple[MapEntry, ...]
    line: int | None

    @property
    def where(self) -> str:
        return f"step {self.index + 1}" + (f" (`{self.model_name}`)" if self.model_name else "")

    def inputs(self) -> dict[str, str]:
        """input_map as Triton reads it (for a duplicated key, the last entry wins)."""
        return {entry.key: entry.value for entry in self.input_map}

    def outputs(self) -> dict[str, str]:
        return {entry.key: entry.value for entry in self.output_map}


@dataclass(frozen=True)
class ModelConfigFile:
    """A parsed config.pbtxt: what the checks read. Parse it with `parse_model_config`."""

    path: str
    text: str
    name: str
    platform: str
    backend: str
    max_batch_size: int
    default_model_filename: str
    runtime: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    steps: tuple[EnsembleStep, ...]
    parameters: FrozenDict[str, str]
    decoupled: bool
    lines: FrozenDict[str, int]  # field path -> 1-based line
    values: FrozenDict[str, str]  # scalar field path -> its value as written
    # The full message for the rarer fields; it is derived from `text`, so it takes no part in
    # equality. Treat it as read-only.
    message: Any = field(compare=False, hash=False, repr=False)
    # None for a config as parsed; set on the config Triton serves (`config/completion.py`).
    completion: Completion | None = None

    @property
    def is_ensemble(self) -> bool:
        # The parsed `platform`, decided by the function that also reads raw config text where
        # protobuf is missing (tool PEXes) or the config does not parse yet (tailor).
        return is_ensemble_platform(self.platform)

    @property
    def batching_decided(self) -> bool:
        """Whether max_batch_size is known. In a parsed config, when the file sets it: otherwise
        a backend may fill it in (python's `auto_complete_config`, ONNX Runtime's default), so
        rules that compare with it cannot be decided from the file. In a completed config,
        unless model code may still set it."""
        if self.completion is None:
            return "max_batch_size[0]" in self.lines
        return not self.completion.is_open("max_batch_size")

    def is_open(self, field: str) -> bool:
        """Whether model code may still fill in `field` ("input", "output", ...) at load."""
        return self.completion is not None and self.completion.is_open(field)

    def line(self, *path: str) -> int | None:
        """The line of a field, e.g. `line("input[1]", "dims")`; a part without `[i]` is `[0]`."""
        return self.lines.get(_key(path))

    def map_entry_line(self, field: str, key: str) -> int | None:
        """The line of the key of the `field { key: "<key>" ... }` entry Triton uses (the last)."""
        lines = [
            self.lines[f"{entry}.key[0]"]
            for entry in _indexed(self.lines, field)
            if self.values.get(f"{entry}.key[0]") == key
        ]
        return lines[-1] if lines else None

    def step_model_names(self) -> tuple[str, ...]:
        """The model names an ensemble's steps call, in order, each once."""
        return tuple(dict.fromkeys(step.model_name for step in self.steps if step.model_name))


def _key(path: tuple[str, ...]) -> str:
    return ".".join(part if part.endswith("]") else f"{part}[0]" for part in path)


def parse_model_config(path: str, text: str) -> ModelConfigFile:
    """Parses config.pbtxt text; unknown fields, bad values and syntax are errors."""
    message = _parse_message(path, text)
    lines, values = _positions(text)
    tensors = (
        tuple(_tensor(t, lines.get(f"input[{i}]")) for i, t in enumerate(message.input)),
        tuple(_tensor(t, lines.get(f"output[{i}]")) for i, t in enumerate(message.output)),
    )
    return ModelConfigFile(
        path=path,
        text=text,
        name=message.name,
        platform=message.platform,
        backend=message.backend,
        max_batch_size=message.max_batch_size,
        default_model_filename=message.default_model_filename,
        runtime=message.runtime,
        inputs=tensors[0],
        outputs=tensors[1],
        steps=tuple(_steps(message, lines, values)),
        parameters=FrozenDict(
            {key: parameter.string_value for key, parameter in message.parameters.items()}
        ),
        decoupled=message.model_transaction_policy.decoupled,
        lines=FrozenDict(lines),
        values=FrozenDict(values),
        message=message,
    )


def _parse_message(path: str, text: str) -> Any:
    message = model_config_pb2.ModelConfig()  # type: ignore[attr-defined]
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        # The parser's message starts with "line:column : "; we print the location ourselves.
        reason = str(e).split(" : ", 1)[-1]
        raise ModelConfigError(
            path,
            f"{reason} (column {e.GetColumn()}).{_field_name_hint(message, reason)} Field names "
            f"and values must follow Triton's model_config.proto: {MODEL_CONFIG_PROTO}",
            line=e.GetLine(),
        ) from e
    return message


_UNKNOWN_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(\w+)"')


def _field_name_hint(message: Any, reason: str) -> str:
    """A "Did you mean `x`?" hint for a misspelt field name, from its message's field names."""
    unknown = _UNKNOWN_FIELD.search(reason)
    if not unknown:
        return ""
    try:
        descriptor = message.DESCRIPTOR.file.pool.FindMessageTypeByName(unknown.group(1))
    except KeyError:
        return ""
    return did_you_mean(unknown.group(2), (f.name for f in descriptor.fields))


def _positions(text: str) -> tuple[dict[str, int], dict[str, str]]:
    """The line of every field occurrence, and the value of every scalar, by field path."""
    lines: dict[str, int] = {}
    values: dict[str, str] = {}
    tokenizer = text_format.Tokenizer(text.splitlines())
    _walk_message(tokenizer, "", lines, values)
    return lines, values


def _walk_message(
    tokenizer: Any, prefix: str, lines: dict[str, int], values: dict[str, str]
) -> None:
    counts: dict[str, int] = {}
    while not tokenizer.AtEnd() and tokenizer.token not in ("}", ">"):
        name = tokenizer.token
        line = tokenizer._line + 1
        tokenizer.NextToken()
        tokenizer.TryConsume(":")
        if tokenizer.TryConsume("["):
            while not tokenizer.AtEnd() and not tokenizer.TryConsume("]"):
                _walk_value(tokenizer, prefix, name, counts, lines, values)
                tokenizer.TryConsume(",")
        else:
            _walk_value(tokenizer, prefix, name, counts, lines, values, line=line)
        if not tokenizer.TryConsume(","):
            tokenizer.TryConsume(";")


def _walk_value(
    tokenizer: Any,
    prefix: str,
    name: str,
    counts: dict[str, int],
    lines: dict[str, int],
    values: dict[str, str],
    *,
    line: int | None = None,
) -> None:
    index = counts.get(name, 0)
    counts[name] = index + 1
    path = f"{prefix}{name}[{index}]"
    lines[path] = line or tokenizer._line + 1
    if tokenizer.token in ("{", "<"):
        tokenizer.NextToken()
        _walk_message(tokenizer, f"{path}.", lines, values)
        tokenizer.NextToken()  # the closing brace
    elif tokenizer.token[:1] in ("'", '"'):
        values[path] = tokenizer.ConsumeString()
    else:
        values[path] = tokenizer.token
        tokenizer.NextToken()


def _tensor(tensor: Any, line: int | None) -> TensorSpec:
    return TensorSpec(
        name=tensor.name,
        data_type=tensor.data_type,
        dims=tuple(tensor.dims),
        reshape=tuple(tensor.reshape.shape) if tensor.HasField("reshape") else None,
        optional="optional" in tensor.DESCRIPTOR.fields_by_name and tensor.optional,
        line=line,
    )


def _map_entries(prefix: str, lines: dict[str, int], values: dict[str, str]) -> Iterator[MapEntry]:
    for entry in _indexed(lines, prefix):
        yield MapEntry(
            key=values.get(f"{entry}.key[0]", ""),
            value=values.get(f"{entry}.value[0]", ""),
            line=lines[entry],
        )


def _indexed(lines: Mapping[str, int], prefix: str) -> Iterator[str]:
    """The paths `prefix[0]`, `prefix[1]`, ... that occur in the file."""
    index = 0
    while f"{prefix}[{index}]" in lines:
        yield f"{prefix}[{index}]"
        index += 1


def _steps(message: Any, lines: dict[str, int], values: dict[str, str]) -> Iterator[EnsembleStep]:
    # `ensemble_scheduling { ... }` given twice merges into one: its steps count on.
    paths = [
        step
        for block in _indexed(lines, "ensemble_scheduling")
        for step in _indexed(lines, f"{block}.step")
    ]
    for index, (step, path) in enumerate(zip(message.ensemble_scheduling.step, paths)):
        yield EnsembleStep(
            index=index,
            model_name=step.model_name,
            model_version=step.model_version,
            input_map=tuple(_map_entries(f"{path}.input_map", lines, values)),
            output_map=tuple(_map_entries(f"{path}.output_map", lines, values)),
            # The step's `model_name` line, or where the step starts when it has none.
            line=lines.get(f"{path}.model_name[0]", lines[path]),
        )
