"""The config Triton serves, written out as config.pbtxt text (what `./pants served-config`
prints).

Every field config.pbtxt leaves out and Triton fills in at load carries a comment saying who
fills it in and from what (Triton's core, the ONNX graph, the onnxruntime backend's default),
and a comment block at the top says what is left to code the checks cannot run (model.py's
`auto_complete_config`, another backend's model file). The text is in the canonical layout of
`config/format.py`; the comments of config.pbtxt itself are not kept.
"""

from __future__ import annotations

import textwrap
from typing import Any, Iterable, Sequence

from google.protobuf import text_format
from triton_mme.config.auto_complete import SETTERS
from triton_mme.config.backend import BackendFields
from triton_mme.config.completion import ServedVersion
from triton_mme.config.format import format_model_config
from triton_mme.config.onnx_graph import ONNX_BACKEND
from triton_mme.config.parse import ModelConfigFile

WIDTH = 88  # comments stay readable beside 100-column config lines
# Backends that complete configs from model files the plugin does not read.
_OWN_COMPLETION = "inputs, outputs and max_batch_size"


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH - 2, initial_indent="# ", subsequent_indent="# ")


def _filled(source: ModelConfigFile, served: ServedVersion, fields: BackendFields | None) -> dict:
    """Top-level field -> who fills it in, for the fields config.pbtxt leaves out."""
    filled: dict[str, str] = {}
    if not source.name:
        filled["name"] = (
            "filled in by Triton's core: the model name (on the endpoint, the name the model "
            "ships under)"
        )
    if fields is not None:
        filled.update(fields.filled)
    completion = served.config.completion
    if completion is not None:
        filled.update(completion.filled)
    return filled


def _header(
    source: ModelConfigFile,
    model_name: str,
    served: ServedVersion,
    versions: Sequence[int],
    fields: BackendFields | None,
) -> list[str]:
    if len(versions) > 1:
        which = f"versions {', '.join(map(str, versions))}"
    elif versions:
        which = f"version {versions[0]}"
    else:
        which = "no version folder yet"
    lines = _comment(
        f"{source.path} as Triton serves `{model_name}` ({which}). A comment above each field "
        "config.pbtxt leaves out says who fills it in at load; the comments of config.pbtxt "
        "are not kept."
    )
    config = served.config
    notes: list[str] = []
    if fields is None:
        notes.append(
            "Triton cannot tell which backend serves this model, so it refuses it: `./pants "
            "lint` says why."
        )
    notes.extend(_without_path(p) for p in served.problems)
    method = served.auto_complete
    if method is not None:
        calls = [c for c in method.calls if c in SETTERS]
        notes.append(
            f"Left to {method.where}, which Triton runs at load: it may add inputs and "
            "outputs, fill in their dims and data_type, raise max_batch_size, and set dynamic "
            "batching and `decoupled`; what it sets is not shown."
            + (f" Its body calls {', '.join(calls)}." if calls else "")
        )
    elif (
        config.completion is None
        and fields is not None
        and fields.backend
        and not served.problems
        and not config.is_ensemble
    ):
        what = (
            f"the graph of version {served.version} is missing"
            if fields.backend == ONNX_BACKEND
            else "that file is not read here"
        )
        notes.append(
            f"The {fields.backend} backend may complete {_OWN_COMPLETION} from the model file "
            f"at load; {what}, so it is not shown."
        )
    for note in notes:
        lines.extend(["#", *_comment(note)])
    return lines


def _without_path(error: Exception) -> str:
    text = str(error)
    return text.split(": ", 1)[1] if ": " in text else text


def _chunks(message: Any, filled: dict[str, str]) -> Iterable[str]:
    """Each set top-level field as protobuf text, with the comment of a filled-in field."""
    for descriptor, _ in message.ListFields():
        alone = type(message)()
        alone.CopyFrom(message)
        for other in alone.DESCRIPTOR.fields:
            if other.name != descriptor.name:
                alone.ClearField(other.name)
        text = text_format.MessageToString(alone, as_utf8=True)
        reason = filled.get(descriptor.name)
        comment = _comment(f"Not in config.pbtxt: {reason}.") if reason else []
        yield "\n".join([*comment, text.rstrip("\n")])


def served_config_text(
    source: ModelConfigFile,
    model_name: str,
    served: ServedVersion,
    fields: BackendFields | None,
    versions: Sequence[int] = (),
) -> str:
    """The config of `served` (one version, or several `versions` that are served alike)."""
    config = served.config
    filled = _filled(source, served, fields)
    body = "\n".join(_chunks(config.message, filled)) + "\n"
    header = _header(source, model_name, served, versions, fields)
    return format_model_config(source.path, "\n".join(header) + "\n\n" + body)


def served_configs_text(
    source: ModelConfigFile,
    model_name: str,
    versions: Sequence[ServedVersion],
    fields: BackendFields | None,
) -> str:
    """Every loaded version's config; versions served alike are written once."""
    groups: list[tuple[ServedVersion, list[int]]] = []
    for served in versions:
        same = next(
            (g for g in groups if _same(g[0], served)),
            None,
        )
        if same is None:
            groups.append((served, [served.version] if served.version is not None else []))
        elif served.version is not None:
            same[1].append(served.version)
    return "\n".join(
        served_config_text(source, model_name, served, fields, numbers)
        for served, numbers in groups
    )


def _same(a: ServedVersion, b: ServedVersion) -> bool:
    return (
        text_format.MessageToString(a.config.message)
        == text_format.MessageToString(b.config.message)
        and a.config.completion == b.config.completion
        and [str(p) for p in a.problems] == [str(p) for p in b.problems]
        and (a.auto_complete is None) == (b.auto_complete is None)
    )
