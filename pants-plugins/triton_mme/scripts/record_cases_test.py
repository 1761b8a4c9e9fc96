from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from triton_mme.scripts.record_cases import (
    Outputs,
    RecordError,
    record_case_file,
    record_lines,
    recorded_outputs,
)
from triton_mme.scripts.triton_cases import (
    TRITON_DTYPES,
    Case,
    CaseFileError,
    load_case_file,
    parse_cases,
)

X: dict[str, Any] = {"name": "X", "datatype": "FP32", "shape": [2], "data": [1.0, 2.5]}


def add_tenth(case: Case) -> Outputs:
    """What a model computing `Y = X + 0.1` (float32) and `LABEL` answers."""
    x = case.inputs["X"][1]
    return {
        "Y": ("FP32", (x + np.float32(0.1)).astype(np.float32)),
        "LABEL": ("BYTES", np.array([b"big" if x.sum() > 3 else b"small"], dtype=object)),
    }


def write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "tests" / "case.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return str(path)


def test_records_outputs_that_the_comparison_then_accepts(tmp_path: Path) -> None:
    path = write(tmp_path, {"description": "adds a tenth", "inputs": [X]})
    recorded = record_case_file(path, add_tenth, overwrite=False)
    assert recorded.recorded == ["case"]
    # The layout of the example case files: one short tensor per line; floats in the fewest
    # digits that give back the same float32.
    assert recorded.text == (
        "{\n"
        '  "description": "adds a tenth",\n'
        '  "inputs": [{"name": "X", "datatype": "FP32", "shape": [2], "data": [1.0, 2.5]}],\n'
        '  "outputs": [\n'
        '    {"name": "Y", "datatype": "FP32", "shape": [2], "data": [1.1, 2.6]},\n'
        '    {"name": "LABEL", "datatype": "BYTES", "shape": [1], "data": ["big"]}\n'
        "  ]\n"
        "}\n"
    )
    Path(path).write_text(recorded.text)
    (case,) = load_case_file(path)
    y = np.array([1.0, 2.5], dtype=np.float32) + np.float32(0.1)
    assert case.outputs[0].data is not None
    assert np.array_equal(case.outputs[0].data, y)  # exactly, not only within tolerance
    # Recording again changes nothing: the file keeps its outputs.
    again = record_case_file(path, add_tenth, overwrite=False)
    assert again.text == recorded.text and again.kept == ["case"]


def test_existing_outputs_are_kept_unless_overwritten(tmp_path: Path) -> None:
    old_y: dict[str, Any] = {
        "name": "Y",
        "datatype": "FP32",
        "shape": [2],
        "data": [0, 0],
        "atol": 0.01,
    }
    document = {
        "tolerance": {"rtol": 0.001},
        "cases": [
            {
                "name": "done",
                "inputs": [X],
                "outputs": [old_y, {"name": "GONE", "datatype": "INT8", "data": [1]}],
            },
            {"name": "new", "inputs": [{**X, "data": [0.0, 0.0]}]},
        ],
    }
    path = write(tmp_path, document)
    kept = record_case_file(path, add_tenth, overwrite=False)
    assert kept.kept == ["done"] and kept.recorded == ["new"]
    result = json.loads(kept.text)
    assert result["tolerance"] == {"rtol": 0.001}
    assert result["cases"][0]["outputs"][0] == old_y
    assert result["cases"][1]["outputs"][1]["data"] == ["small"]
    assert record_lines(kept) == [
        f"recorded {path}: new",
        f"kept {path}: done (they have expected outputs; `./pants record-outputs --overwrite` "
        "records them again)",
    ]

    overwritten = json.loads(record_case_file(path, add_tenth, overwrite=True).text)
    # The listed output keeps its place and its tolerance; one the model lacks is dropped.
    assert overwritten["cases"][0]["outputs"] == [
        {"name": "Y", "datatype": "FP32", "shape": [2], "data": [1.1, 2.6], "atol": 0.01},
        {"name": "LABEL", "datatype": "BYTES", "shape": [1], "data": ["big"]},
    ]


def test_a_rejected_request_leaves_its_case_alone(tmp_path: Path) -> None:
    path = write(tmp_path, {"inputs": [X]})

    def rejects(case: Case) -> Outputs:
        raise RecordError("Triton rejected the request: unexpected shape for input 'X'")

    recorded = record_case_file(path, rejects, overwrite=False)
    assert recorded.errors == [
        f"{path} [case]: Triton rejected the request: unexpected shape for input 'X'"
    ]
    assert "outputs" not in json.loads(recorded.text)
    assert record_lines(recorded) == [f"FAILED {recorded.errors[0]}"]


def test_a_case_file_with_bad_inputs_is_refused_as_in_tests(tmp_path: Path) -> None:
    path = write(tmp_path, {"inputs": [{**X, "datatype": "FLOAT"}]})
    with pytest.raises(CaseFileError, match="`datatype` is 'FLOAT'"):
        record_case_file(path, add_tenth, overwrite=False)


@pytest.mark.parametrize(
    "datatype, values, written",
    [
        ("FP32", [0.1, np.nan, -np.inf, 1e-8], [0.1, "nan", "-inf", 1e-08]),
        ("FP16", [0.1, 65504.0], [0.1, 65500.0]),
        ("FP64", [0.1 + 0.2], [0.30000000000000004]),
        ("INT64", [-3, 2**40], [-3, 2**40]),
        ("BOOL", [True, False], [True, False]),
    ],
)
def test_values_are_written_so_they_read_back_the_same(
    datatype: str, values: list[Any], written: list[Any]
) -> None:
    array = np.array(values, dtype=TRITON_DTYPES[datatype])
    (entry,) = recorded_outputs([], {"Y": (datatype, array)})
    assert entry["data"] == written
    (case,) = parse_cases("case.json", {"inputs": [X], "outputs": [entry]}, lambda name: None)
    assert case.outputs[0].data is not None
    assert np.array_equal(case.outputs[0].data, array, equal_nan=datatype.startswith("FP"))


def test_bytes_that_are_not_utf8_are_written_as_base64() -> None:
    array = np.array([b"caf\xc3\xa9", b"\xff\x00"], dtype=object)
    (entry,) = recorded_outputs([], {"Y": ("BYTES", array)})
    assert entry["data"] == ["café", {"base64": "/wA="}]
