"""Record expected outputs: a case file's inputs go to the model, its answers become `outputs`.

Runs inside the `triton-client` PEX, as the `record` mode of `run_triton_tests.py`, which sends
the requests (`send`). Pure functions here: which cases to record, the rewritten case file.

A case that already has `outputs` keeps them unless `overwrite` is set. Re-recorded outputs keep
their place in the list and their `atol`/`rtol`; outputs the model returns that the case did not
list are added after them. Everything else in the file (other keys, their order, the inputs as
written) stays; the file is written in the layout of `triton_cases.case_file_json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from triton_mme.scripts.triton_cases import (
    Case,
    case_file_arrays,
    case_file_json,
    parse_cases,
    read_case_document,
    tensor_json,
)

# What a request returns: each output's name -> (Triton datatype, tensor), in the model's order.
Outputs = Mapping[str, tuple[str, np.ndarray]]
# Keys of an expected output that recording keeps: the reviewer's tolerances.
KEPT_KEYS = ("atol", "rtol")


class RecordError(Exception):
    """A case whose request failed: the message says why (Triton's own words)."""


@dataclass
class RecordedFile:
    path: str
    text: str  # the case file with its recorded outputs
    recorded: list[str] = field(default_factory=list)  # case names
    kept: list[str] = field(default_factory=list)  # cases with outputs, left as they were
    errors: list[str] = field(default_factory=list)  # "<case label>: <why>"


def record_case_file(
    path: str,
    send: Callable[[Case], Outputs],
    overwrite: bool,
    read_array: Callable[[str], Any] | None = None,
) -> RecordedFile:
    """The case file at `path` with the outputs `send` returns for each case to record."""
    document = read_case_document(path)
    cases = parse_cases(
        path, document, read_array or case_file_arrays(path), outputs_required=False
    )
    entries = document["cases"] if "cases" in document else [document]
    result = RecordedFile(path=path, text="")
    for case, entry in zip(cases, entries):
        if entry.get("outputs") and not overwrite:
            result.kept.append(case.name)
            continue
        try:
            outputs = send(case)
        except RecordError as e:
            result.errors.append(f"{case.label}: {e}")
            continue
        entry["outputs"] = recorded_outputs(entry.get("outputs") or [], outputs)
        result.recorded.append(case.name)
    result.text = case_file_json(document) + "\n"
    return result


def recorded_outputs(listed: list[Any], outputs: Outputs) -> list[dict[str, Any]]:
    """The expected outputs to write: those listed first (with their tolerances), then the rest.

    An output the case listed but the model does not return is dropped (the diff shows it).
    """
    written = []
    listed_names = []
    for entry in listed:
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name in outputs:
            kept = {key: entry[key] for key in KEPT_KEYS if key in entry}
            written.append({**tensor_json(name, *outputs[name]), **kept})
            listed_names.append(name)
    for name, (datatype, array) in outputs.items():
        if name not in listed_names:
            written.append(tensor_json(name, datatype, array))
    return written


def record_lines(recorded: RecordedFile) -> list[str]:
    """What recording did to one case file: the cases recorded, kept, and those that failed."""
    lines = []
    if recorded.recorded:
        lines.append(f"recorded {recorded.path}: {', '.join(recorded.recorded)}")
    if recorded.kept:
        lines.append(
            f"kept {recorded.path}: {', '.join(recorded.kept)} (they have expected outputs; "
            "`./pants record-outputs --overwrite` records them again)"
        )
    return lines + [f"FAILED {error}" for error in recorded.errors]
