from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from triton_mme.scripts.triton_cases import (
    CaseFileError,
    ExpectedOutput,
    Tolerance,
    compare_output,
    load_case_file,
    parse_cases,
)


def parse(document: dict[str, Any], arrays: dict[str, Any] | None = None):
    return parse_cases("m/tests/case.json", document, lambda name: (arrays or {})[name])


def case(outputs: list[dict[str, Any]], inputs: list[dict[str, Any]] | None = None) -> dict:
    return {
        "inputs": inputs or [{"name": "X", "datatype": "FP32", "shape": [1], "data": [0]}],
        "outputs": outputs,
    }


def expected(**output: Any) -> ExpectedOutput:
    return parse(case([{"name": "Y", **output}]))[0].outputs[0]


def render(mismatch) -> str:
    assert mismatch is not None
    return mismatch.render()


def test_single_case_named_after_file() -> None:
    (parsed,) = parse(case([{"name": "Y", "datatype": "INT64", "shape": [2], "data": [1, 2]}]))
    assert parsed.name == "case"
    assert parsed.label == "m/tests/case.json [case]"
    datatype, array = parsed.inputs["X"]
    assert datatype == "FP32" and array.dtype == np.float32 and array.shape == (1,)
    assert parsed.outputs[0].data.dtype == np.int64


def test_several_cases_and_tolerance_defaults() -> None:
    document = {
        "tolerance": {"atol": 0.5},
        "cases": [
            {"name": "a", **case([{"name": "Y", "datatype": "FP32", "data": [1.0]}])},
            case([{"name": "Y", "datatype": "FP32", "data": [1.0], "rtol": 0.1}]),
        ],
    }
    first, second = parse(document)
    assert (first.name, second.name) == ("a", "case[1]")
    assert first.outputs[0].tolerance == Tolerance(atol=0.5, rtol=1e-5)
    assert second.outputs[0].tolerance == Tolerance(atol=0.5, rtol=0.1)


def test_shape_reshapes_flat_data() -> None:
    output = expected(datatype="FP32", shape=[2, 2], data=[1, 2, 3, 4])
    assert output.data is not None and output.data.shape == (2, 2)


@pytest.mark.parametrize(
    "output, message",
    [
        ({"datatype": "FLOAT32", "data": [1]}, "use one of Triton's names"),
        ({"datatype": "FP32", "shape": [3], "data": [1, 2]}, "holds 3 elements but `data` has 2"),
        ({"datatype": "INT64", "data": [1.5]}, "whole numbers"),
        ({"datatype": "UINT8", "data": [300]}, "do not fit in UINT8"),
        ({"datatype": "INT64", "data": [1], "atol": 1}, "compared exactly"),
        ({"datatype": "FP32"}, "give the expected `data`"),
        ({"datatype": "FP32", "data": ["x"]}, "must hold numbers"),
        ({"datatype": "BYTES", "data": [1]}, "BYTES elements are strings"),
        ({"datatype": "FP32", "data": [1], "file": "x.npy"}, "either `data` or `file`"),
        ({"datatype": "FP32", "data": [1], "shape": [-1]}, "sizes >= 0"),
        ({"datatype": "FP32", "top_k": {"k": 2, "indices": [1]}}, "k=2 indices"),
    ],
)
def test_invalid_outputs_name_file_case_and_tensor(output: dict, message: str) -> None:
    with pytest.raises(CaseFileError, match="m/tests/case.json \\[case\\] outputs\\[0\\]") as e:
        parse(case([{"name": "Y", **output}]))
    assert message in str(e.value)


def test_invalid_documents() -> None:
    with pytest.raises(CaseFileError, match="`inputs` must be a non-empty list"):
        parse({"outputs": [{"name": "Y", "datatype": "FP32", "data": [1]}]})
    with pytest.raises(CaseFileError, match="unknown keys \\['output'\\]"):
        parse({**case([{"name": "Y", "datatype": "FP32", "data": [1]}]), "output": []})
    with pytest.raises(CaseFileError, match="two cases are named `a`"):
        one = {"name": "a", **case([{"name": "Y", "datatype": "FP32", "data": [1]}])}
        parse({"cases": [one, one]})
    with pytest.raises(CaseFileError, match="input `X` is given twice"):
        x = {"name": "X", "datatype": "FP32", "data": [1]}
        parse(case([{"name": "Y", "datatype": "FP32", "data": [1]}], inputs=[x, x]))


def test_tensor_files(tmp_path: Path) -> None:
    np.save(tmp_path / "image.npy", np.zeros((2, 3), dtype=np.uint8))
    np.savez(tmp_path / "batch.npz", x=np.ones(4, dtype=np.float32), y=np.ones(2))
    np.save(tmp_path / "labels.npy", np.array(["cat", "dog"]))
    document: dict[str, Any] = {
        "inputs": [
            {"name": "IMAGE", "datatype": "UINT8", "file": "image.npy", "shape": [2, 3]},
            {"name": "X", "datatype": "FP32", "file": "batch.npz", "key": "x"},
        ],
        "outputs": [{"name": "LABELS", "datatype": "BYTES", "file": "labels.npy"}],
    }
    path = tmp_path / "case.json"
    path.write_text(json.dumps(document))
    (parsed,) = load_case_file(str(path))
    assert parsed.inputs["IMAGE"][1].shape == (2, 3)
    assert parsed.inputs["X"][1].dtype == np.float32
    labels = parsed.outputs[0].data
    assert labels is not None and labels.tolist() == [b"cat", b"dog"]

    document["inputs"][0]["datatype"] = "FP32"
    path.write_text(json.dumps(document))
    with pytest.raises(CaseFileError, match="holds uint8 data but the datatype is FP32"):
        load_case_file(str(path))
    document["inputs"][0] = {"name": "X", "datatype": "FP32", "file": "batch.npz"}
    path.write_text(json.dumps(document))
    with pytest.raises(CaseFileError, match="holds arrays \\['x', 'y'\\]: name one with `key`"):
        load_case_file(str(path))
    document["inputs"][0] = {"name": "X", "datatype": "FP32", "file": "missing.npy"}
    path.write_text(json.dumps(document))
    with pytest.raises(CaseFileError, match="`missing.npy` not found beside it"):
        load_case_file(str(path))
    document["inputs"][0] = {"name": "X", "datatype": "FP32", "file": "../escape.npy"}
    path.write_text(json.dumps(document))
    with pytest.raises(CaseFileError, match="must be a path relative to the case file"):
        load_case_file(str(path))


def test_unreadable_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(CaseFileError, match="broken.json: not a readable JSON case file"):
        load_case_file(str(path))


# ---------------------------------------------------------------------------------------------


def test_floats_within_tolerance_pass() -> None:
    output = expected(datatype="FP32", shape=[3], data=[1.0, 2.0, 3.0], atol=1e-3)
    actual = np.array([1.0005, 2.0, 2.9995], dtype=np.float32)
    assert compare_output("c", output, actual, "FP32") is None


def test_float_mismatch_reports_max_errors_and_where() -> None:
    output = expected(datatype="FP32", shape=[2, 2], data=[[1, 2], [3, 4]])
    actual = np.array([[1, 2], [3, 6]], dtype=np.float32)
    text = render(compare_output("m/tests/a.json [a]", output, actual, "FP32"))
    assert text.startswith("m/tests/a.json [a] output `Y`:")
    assert "expected FP32 shape [2, 2], got FP32 shape [2, 2]" in text
    assert "1 of 4 elements differ beyond atol=1e-06, rtol=1e-05" in text
    assert "max abs error 2 at index (1, 1): expected 4, actual 6" in text
    assert "max rel error 0.5 at index (1, 1)" in text


def test_nan_matches_nan_but_not_numbers() -> None:
    output = expected(datatype="FP32", data=["nan", 1.0])
    assert compare_output("c", output, np.array([np.nan, 1.0], dtype=np.float32), "FP32") is None
    text = render(compare_output("c", output, np.array([0.0, np.nan], dtype=np.float32), "FP32"))
    assert "2 of 2 elements differ" in text
    assert "max abs error inf at index (0,): expected nan, actual 0" in text
    assert "at (1,): expected 1, actual nan" in text


def test_empty_tensors() -> None:
    output = expected(datatype="FP32", shape=[0, 3], data=[])
    assert compare_output("c", output, np.zeros((0, 3), dtype=np.float32), "FP32") is None
    text = render(compare_output("c", output, np.zeros((1, 3), dtype=np.float32), "FP32"))
    assert "wrong shape: expected FP32 shape [0, 3], got FP32 shape [1, 3]" in text


def test_wrong_dtype_and_missing_output() -> None:
    output = expected(datatype="INT64", data=[1])
    text = render(compare_output("c", output, np.array([1.0], dtype=np.float32), "FP32"))
    assert "wrong datatype: expected INT64 shape [1], got FP32 shape [1]" in text
    assert "missing from the response" in render(compare_output("c", output, None, None))


def test_ints_are_exact() -> None:
    output = expected(datatype="INT32", data=[1, 2, 3])
    assert compare_output("c", output, np.array([1, 2, 3], dtype=np.int32), "INT32") is None
    text = render(compare_output("c", output, np.array([1, 2, 4], dtype=np.int32), "INT32"))
    assert "1 of 3 elements differ (compared exactly)" in text
    assert "at (2,): expected 3, actual 4" in text


def test_strings_and_bytes() -> None:
    output = expected(datatype="BYTES", data=["cat", {"base64": "AAE="}])
    good = np.array([b"cat", b"\x00\x01"], dtype=object)
    assert compare_output("c", output, good, "BYTES") is None
    bad = np.array([b"dog", b"\x00\x01"], dtype=object)
    text = render(compare_output("c", output, bad, "BYTES"))
    assert "at (0,): expected b'cat', actual b'dog'" in text


def test_argmax_and_top_k() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4]], dtype=np.float32)
    assert compare_output("c", expected(datatype="FP32", argmax=[1, 0]), scores, "FP32") is None
    text = render(compare_output("c", expected(datatype="FP32", argmax=[1, 2]), scores, "FP32"))
    assert "argmax differs in 1 of 2 rows" in text and "at (1,): expected 2, actual 0" in text
    top2 = expected(datatype="FP32", top_k={"k": 2, "indices": [[2, 1], [0, 2]]})
    assert compare_output("c", top2, scores, "FP32") is None
    wrong = expected(datatype="FP32", top_k={"k": 2, "indices": [[0, 1], [0, 2]]})
    text = render(compare_output("c", wrong, scores, "FP32"))
    assert "row (0,): top-2 indices [1, 2], expected [0, 1]" in text
