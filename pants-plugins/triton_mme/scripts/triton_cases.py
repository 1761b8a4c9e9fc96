"""Test case files for Triton models: parse them, and compare a server's answer with them.

Pure functions (stdlib + numpy). They run inside the `triton-client` PEX (Python 3.11, numpy),
never inside Pants, which has no numpy. See docs/testing.md for the format; in short, a case file
`tests/<case>.json` beside a model holds one case or a list under `"cases"`:

    {
      "inputs": [
        {"name": "INPUT0", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0]},
        {"name": "IMAGE", "datatype": "UINT8", "file": "cat.npy"},
        {"name": "BATCH", "datatype": "FP32", "file": "batch.npz", "key": "x"}
      ],
      "outputs": [
        {"name": "OUTPUT0", "datatype": "FP32", "shape": [2], "data": [2.0, 3.0], "atol": 1e-6},
        {"name": "LABEL", "datatype": "BYTES", "shape": [1], "data": ["cat"]},
        {"name": "SCORES", "datatype": "FP32", "argmax": [3]},
        {"name": "LOGITS", "datatype": "FP32", "top_k": {"k": 2, "indices": [3, 1]}}
      ]
    }
"""

from __future__ import annotations

import base64
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

# Triton's datatype names (KServe v2 protocol) and the numpy dtypes tritonclient uses for them.
TRITON_DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
FLOAT_DTYPES = frozenset({"FP16", "FP32", "FP64"})
DEFAULT_ATOL = 1e-6
DEFAULT_RTOL = 1e-5
# How many differing elements a failure lists (besides the worst one).
SHOWN_DIFFERENCES = 5


class CaseFileError(ValueError):
    """A case file that cannot be read: the message names the file, the case and the tensor."""


@dataclass(frozen=True)
class Tolerance:
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL


@dataclass(frozen=True)
class TopK:
    k: int
    indices: np.ndarray  # shape (..., k): expected indices of the k largest values, any order


@dataclass(frozen=True)
class ExpectedOutput:
    name: str
    datatype: str
    data: np.ndarray | None  # None when only argmax/top_k is checked
    shape: tuple[int, ...] | None
    tolerance: Tolerance
    argmax: np.ndarray | None = None
    top_k: TopK | None = None


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    inputs: dict[str, tuple[str, np.ndarray]]  # name -> (Triton datatype, tensor)
    outputs: tuple[ExpectedOutput, ...]

    @property
    def label(self) -> str:
        return f"{self.file} [{self.name}]"


@dataclass(frozen=True)
class Mismatch:
    """Why one output differs from its expectation: lines a data scientist can act on."""

    case: str
    output: str
    lines: tuple[str, ...] = field(default_factory=tuple)

    def render(self) -> str:
        body = "".join(f"\n    {line}" for line in self.lines)
        return f"{self.case} output `{self.output}`:{body}"


# ---------------------------------------------------------------------------------------------
# Parsing


def load_case_file(path: str, read_array: Callable[[str], Any] | None = None) -> list[Case]:
    """Parse one JSON case file. `.npy`/`.npz` files it names are relative to its directory."""
    document = read_case_document(path)
    return parse_cases(path, document, read_array or case_file_arrays(path))


def read_case_document(path: str) -> Any:
    """A case file's JSON document, keys in the file's order."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise CaseFileError(f"{path}: not a readable JSON case file: {e}") from e


def case_file_arrays(path: str) -> Callable[[str], Any]:
    """Reads the `.npy`/`.npz` files a case file names, relative to its directory."""
    return lambda name: _read_array(os.path.dirname(path), path, name)


def parse_cases(
    path: str, document: Any, read_array: Callable[[str], Any], outputs_required: bool = True
) -> list[Case]:
    """Parse a decoded case document: one case, or `{"cases": [...]}` (each may have a `name`).

    With `outputs_required=False`, a case may leave out `outputs` (its `Case.outputs` is empty):
    the cases whose outputs are still to be recorded.
    """
    if not isinstance(document, dict):
        raise CaseFileError(f"{path}: a case file holds a JSON object with `inputs` and `outputs`")
    default_tolerance = _tolerance(path, document.get("tolerance", {}), Tolerance())
    stem = os.path.splitext(os.path.basename(path))[0]
    if "cases" in document:
        entries = document["cases"]
        if not isinstance(entries, list) or not entries:
            raise CaseFileError(f"{path}: `cases` must be a non-empty list of cases")
        names = [entry.get("name", f"{stem}[{i}]") for i, entry in enumerate(entries)]
    else:
        entries, names = [document], [document.get("name", stem)]
    cases = [
        _parse_case(path, str(name), entry, default_tolerance, read_array, outputs_required)
        for name, entry in zip(names, entries)
    ]
    seen: set[str] = set()
    for case in cases:
        if case.name in seen:
            raise CaseFileError(f"{path}: two cases are named `{case.name}`: names must be unique")
        seen.add(case.name)
    return cases


def _parse_case(
    path: str,
    name: str,
    entry: Any,
    default_tolerance: Tolerance,
    read_array: Callable[[str], Any],
    outputs_required: bool = True,
) -> Case:
    where = f"{path} [{name}]"
    if not isinstance(entry, dict):
        raise CaseFileError(f"{where}: a case is a JSON object with `inputs` and `outputs`")
    unknown = set(entry) - {"name", "description", "inputs", "outputs", "tolerance"}
    if unknown:
        raise CaseFileError(f"{where}: unknown keys {sorted(unknown)}; see docs/testing.md")
    tolerance = _tolerance(where, entry.get("tolerance", {}), default_tolerance)
    raw_inputs, raw_outputs = entry.get("inputs"), entry.get("outputs")
    if raw_outputs is None and not outputs_required:
        raw_outputs = []
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise CaseFileError(f"{where}: `inputs` must be a non-empty list of tensors")
    if not isinstance(raw_outputs, list) or (outputs_required and not raw_outputs):
        raise CaseFileError(f"{where}: `outputs` must be a non-empty list of expected tensors")
    inputs: dict[str, tuple[str, np.ndarray]] = {}
    for i, raw in enumerate(raw_inputs):
        tensor_name, datatype, array = _parse_tensor(f"{where} inputs[{i}]", raw, read_array)
        if array is None:
            raise CaseFileError(f"{where} input `{tensor_name}`: give `data` or `file`")
        if tensor_name in inputs:
            raise CaseFileError(f"{where}: input `{tensor_name}` is given twice")
        inputs[tensor_name] = (datatype, array)
    outputs = tuple(
        _parse_expected_output(f"{where} outputs[{i}]", raw, tolerance, read_array)
        for i, raw in enumerate(raw_outputs)
    )
    names = [output.name for output in outputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CaseFileError(f"{where}: outputs {duplicates} are given more than once")
    return Case(file=path, name=name, inputs=inputs, outputs=outputs)


def _parse_tensor(
    where: str, raw: Any, read_array: Callable[[str], Any]
) -> tuple[str, str, np.ndarray | None]:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise CaseFileError(f"{where}: a tensor is an object with `name` and `datatype`")
    name = raw["name"]
    where = f"{where} `{name}`"
    datatype = raw.get("datatype")
    if datatype not in TRITON_DTYPES:
        raise CaseFileError(
            f"{where}: `datatype` is {datatype!r}; use one of Triton's names "
            f"{', '.join(TRITON_DTYPES)} (as in the model's config.pbtxt, without `TYPE_`; "
            "`TYPE_STRING` is `BYTES`)"
        )
    shape = _shape(where, raw["shape"]) if "shape" in raw else None
    if "data" in raw and "file" in raw:
        raise CaseFileError(f"{where}: give either `data` or `file`, not both")
    if "data" in raw:
        array = _array_from_json(where, datatype, raw["data"], shape)
    elif "file" in raw:
        array = _array_from_file(where, datatype, raw, read_array, shape)
    else:
        array = None
    return name, datatype, array


def _parse_expected_output(
    where: str, raw: Any, tolerance: Tolerance, read_array: Callable[[str], Any]
) -> ExpectedOutput:
    name, datatype, data = _parse_tensor(where, raw, read_array)
    where = f"{where} `{name}`"
    argmax = raw.get("argmax")
    top_k = raw.get("top_k")
    if data is None and argmax is None and top_k is None:
        raise CaseFileError(f"{where}: give the expected `data` (or `file`), `argmax` or `top_k`")
    if (argmax is not None or top_k is not None) and datatype == "BYTES":
        raise CaseFileError(f"{where}: `argmax`/`top_k` need a numeric output, not BYTES")
    is_float = datatype in FLOAT_DTYPES
    if not is_float and ("atol" in raw or "rtol" in raw):
        raise CaseFileError(
            f"{where}: `atol`/`rtol` apply to FP16/FP32/FP64 outputs; {datatype} outputs are "
            "compared exactly"
        )
    return ExpectedOutput(
        name=name,
        datatype=datatype,
        data=data,
        shape=tuple(raw["shape"]) if "shape" in raw else None,
        tolerance=_tolerance(where, raw, tolerance),
        argmax=None if argmax is None else _int_array(f"{where} argmax", argmax),
        top_k=None if top_k is None else _top_k(f"{where} top_k", top_k),
    )


def _tolerance(where: str, raw: Any, default: Tolerance) -> Tolerance:
    if not isinstance(raw, dict):
        raise CaseFileError(f"{where}: `tolerance` is an object like {{'atol': 1e-5}}")
    values = {}
    for key in ("atol", "rtol"):
        value = raw.get(key, getattr(default, key))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise CaseFileError(f"{where}: `{key}` must be a number >= 0, not {value!r}")
        values[key] = float(value)
    return Tolerance(**values)


def _shape(where: str, raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw
    ):
        raise CaseFileError(f"{where}: `shape` must be a list of sizes >= 0, not {raw!r}")
    return tuple(raw)


def _int_array(where: str, raw: Any) -> np.ndarray:
    array = np.asarray(raw)
    if array.dtype.kind not in "iu":
        raise CaseFileError(f"{where}: expected integer indices, not {raw!r}")
    return array


def _top_k(where: str, raw: Any) -> TopK:
    if not isinstance(raw, dict) or "indices" not in raw:
        raise CaseFileError(f"{where}: `top_k` is an object like {{'k': 3, 'indices': [4, 0, 7]}}")
    indices = _int_array(where, raw["indices"])
    k = raw.get("k", indices.shape[-1] if indices.ndim else 0)
    if not isinstance(k, int) or k < 1 or indices.ndim == 0 or indices.shape[-1] != k:
        raise CaseFileError(
            f"{where}: `indices` must list k={k} indices per row (its last axis has "
            f"{indices.shape[-1] if indices.ndim else 0})"
        )
    return TopK(k=k, indices=indices)


def _decode_element(where: str, element: Any) -> bytes:
    if isinstance(element, str):
        return element.encode("utf-8")
    if isinstance(element, dict) and set(element) == {"base64"}:
        return base64.b64decode(element["base64"])
    raise CaseFileError(
        f'{where}: BYTES elements are strings or {{"base64": "..."}} objects, not {element!r}'
    )


def _float_element(element: Any) -> Any:
    # JSON has no NaN/Infinity literals: accept Python's extension and strings like "nan".
    if isinstance(element, str) and element.lower() in ("nan", "inf", "+inf", "-inf"):
        return float(element)
    return element


def _array_from_json(
    where: str, datatype: str, data: Any, shape: tuple[int, ...] | None
) -> np.ndarray:
    dtype = TRITON_DTYPES[datatype]
    try:
        if datatype == "BYTES":
            flat = np.asarray(data, dtype=np.object_).reshape(-1)
            array = np.array([_decode_element(where, e) for e in flat], dtype=np.object_)
            array = array.reshape(np.shape(np.asarray(data, dtype=np.object_)))
        else:
            nested = _map_nested(data, _float_element) if datatype in FLOAT_DTYPES else data
            array = _numeric_array(where, datatype, nested)
    except (ValueError, TypeError) as e:
        raise CaseFileError(f"{where}: `data` is not a {datatype} tensor: {e}") from e
    if shape is not None:
        if math.prod(shape) != array.size:
            raise CaseFileError(
                f"{where}: `shape` {list(shape)} holds {math.prod(shape)} elements but `data` "
                f"has {array.size}"
            )
        array = array.reshape(shape)
    return array.astype(dtype, copy=False)


def _numeric_array(where: str, datatype: str, data: Any) -> np.ndarray:
    raw = np.asarray(data)
    if raw.dtype.kind in "US" or raw.dtype == np.object_:
        raise CaseFileError(f"{where}: `data` of a {datatype} tensor must hold numbers")
    if datatype not in FLOAT_DTYPES and raw.size and raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
            raise CaseFileError(f"{where}: {datatype} data must be whole numbers")
    if datatype == "BOOL" and raw.size and not np.all(np.isin(raw, (0, 1))):
        raise CaseFileError(f"{where}: BOOL data must be true/false")
    array = raw.astype(TRITON_DTYPES[datatype])
    if datatype not in FLOAT_DTYPES and datatype != "BOOL" and raw.size:
        if not np.array_equal(array.astype(np.float64), raw.astype(np.float64)):
            raise CaseFileError(f"{where}: values do not fit in {datatype}")
    return array


def _map_nested(data: Any, function: Callable[[Any], Any]) -> Any:
    if isinstance(data, list):
        return [_map_nested(item, function) for item in data]
    return function(data)


def _array_from_file(
    where: str,
    datatype: str,
    raw: dict[str, Any],
    read_array: Callable[[str], Any],
    shape: tuple[int, ...] | None,
) -> np.ndarray:
    file_name = raw["file"]
    loaded = read_array(file_name)
    if hasattr(loaded, "keys"):  # an .npz archive
        keys = list(loaded.keys())
        key = raw.get("key", keys[0] if len(keys) == 1 else None)
        if key not in keys:
            raise CaseFileError(
                f"{where}: `{file_name}` holds arrays {keys}: name one with `key`"
                if key is None
                else f"{where}: `{file_name}` has no array `{key}` (it holds {keys})"
            )
        array = np.asarray(loaded[key])
    else:
        array = np.asarray(loaded)
    expected = np.dtype(TRITON_DTYPES[datatype])
    if datatype == "BYTES":
        if array.dtype.kind not in "US":
            raise CaseFileError(
                f"{where}: `{file_name}` holds {array.dtype} data; a BYTES tensor file holds "
                "strings (numpy dtype `U` or `S`)"
            )
        flat = [_as_bytes(element) for element in array.reshape(-1)]
        array = np.array(flat, dtype=object).reshape(array.shape)
    elif array.dtype != expected:
        raise CaseFileError(
            f"{where}: `{file_name}` holds {array.dtype} data but the datatype is {datatype} "
            f"({expected}); save it as {expected} (e.g. `np.save(path, x.astype(np.{expected}))`)"
        )
    if shape is not None and tuple(array.shape) != shape:
        raise CaseFileError(
            f"{where}: `{file_name}` has shape {list(array.shape)}, `shape` says {list(shape)}"
        )
    return array


def _read_array(base: str, case_file: str, name: str) -> Any:
    if os.path.isabs(name) or ".." in name.split("/"):
        raise CaseFileError(
            f"{case_file}: `file` {name!r} must be a path relative to the case file"
        )
    path = os.path.join(base, name)
    if not os.path.exists(path):
        raise CaseFileError(
            f"{case_file}: `{name}` not found beside it (looked for {path}). Tensor files must "
            "match the test target's `sources` (default `tests/*.npy`, `tests/*.npz`)."
        )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        raise CaseFileError(f"{path}: not a .npy/.npz file numpy can read: {e}") from e


# ---------------------------------------------------------------------------------------------
# Writing


def tensor_json(name: str, datatype: str, array: np.ndarray) -> dict[str, Any]:
    """A tensor as a case file gives it inline, that parses back to exactly `array`.

    Floats are written with the fewest digits that give back the same value in `datatype`
    (`0.1`, not `0.100000001`), non-finite ones as `"nan"`, `"inf"`, `"-inf"`; BYTES elements as
    UTF-8 strings, or `{"base64": ...}` when they are not UTF-8.
    """
    if datatype == "BYTES":
        values = [_bytes_json(_as_bytes(e)) for e in array.reshape(-1)]
        data: Any = np.array(values, dtype=object).reshape(array.shape).tolist()
    elif datatype in FLOAT_DTYPES:
        typed = array.astype(TRITON_DTYPES[datatype])
        data = _map_nested(typed.tolist(), lambda v: _float_json(typed.dtype.type(v)))
    else:
        data = array.tolist()
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def _float_json(value: np.floating) -> Any:
    if not np.isfinite(value):
        return str(float(value))  # "nan", "inf", "-inf": JSON has no literal for them
    # numpy prints the shortest repr that reads back to the same value of its own type.
    return float(np.format_float_positional(value, unique=True, trim="-"))


def _bytes_json(value: bytes) -> Any:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def case_file_json(value: Any, indent: str = "") -> str:
    """JSON with a row of a tensor per line at most: case files that read and diff well."""
    flat = json.dumps(value)
    if _depth(value) <= 3 or len(indent) + len(flat) <= 90:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {case_file_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    rows = ",\n".join(inner + case_file_json(v, inner) for v in value)
    return "[\n" + rows + "\n" + indent + "]"


def _depth(value: Any) -> int:
    """1 for a scalar, 2 for a list of scalars, 3 for a row of pixels... (dicts: 99)."""
    if isinstance(value, dict):
        return 99
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=1)
    return 1


# ---------------------------------------------------------------------------------------------
# Comparison


def compare_output(
    case: str, expected: ExpectedOutput, actual: np.ndarray | None, actual_datatype: str | None
) -> Mismatch | None:
    """None when `actual` satisfies `expected`, else the reasons why not."""

    def mismatch(*lines: str) -> Mismatch:
        return Mismatch(case=case, output=expected.name, lines=tuple(lines))

    if actual is None:
        return mismatch("missing from the response (check the output name in config.pbtxt)")
    got = f"got {actual_datatype} shape {list(actual.shape)}"
    want_shape = expected.shape if expected.shape is not None else _shape_of(expected.data)
    want = f"expected {expected.datatype} shape {list(want_shape) if want_shape else '?'}"
    if actual_datatype != expected.datatype:
        return mismatch(f"wrong datatype: {want}, {got}")
    if want_shape is not None and tuple(actual.shape) != tuple(want_shape):
        return mismatch(f"wrong shape: {want}, {got}")
    if expected.data is not None:
        if expected.datatype in FLOAT_DTYPES:
            lines = _compare_floats(expected.data, actual, expected.tolerance)
        else:
            lines = _compare_exact(expected.data, actual)
        if lines:
            return mismatch(f"{want}, {got}", *lines)
    if expected.argmax is not None:
        lines = _compare_argmax(expected.argmax, actual)
        if lines:
            return mismatch(*lines)
    if expected.top_k is not None:
        lines = _compare_top_k(expected.top_k, actual)
        if lines:
            return mismatch(*lines)
    return None


def _shape_of(data: np.ndarray | None) -> tuple[int, ...] | None:
    return None if data is None else tuple(data.shape)


def _index(flat_index: int, shape: Sequence[int]) -> str:
    if not shape:
        return "()"
    return str(tuple(int(i) for i in np.unravel_index(flat_index, tuple(shape))))


def _compare_floats(expected: np.ndarray, actual: np.ndarray, tolerance: Tolerance) -> list[str]:
    want = expected.astype(np.float64)
    got = actual.astype(np.float64)
    if want.size == 0:
        return []
    close = np.isclose(got, want, atol=tolerance.atol, rtol=tolerance.rtol, equal_nan=True)
    if np.all(close):
        return []
    with np.errstate(invalid="ignore", over="ignore"):
        abs_error = np.abs(got - want)
        rel_error = abs_error / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
    # A NaN (or inf) where a number was expected counts as the worst error.
    worst_abs = np.where(~close & ~np.isfinite(abs_error), np.inf, np.nan_to_num(abs_error))
    worst_abs = np.where(close, 0.0, worst_abs)
    worst_rel = np.where(close, 0.0, np.nan_to_num(rel_error, nan=np.inf))
    i_abs = int(np.argmax(worst_abs))
    i_rel = int(np.argmax(worst_rel))
    shape = want.shape
    lines = [
        f"{int(np.count_nonzero(~close))} of {want.size} elements differ beyond "
        f"atol={tolerance.atol:g}, rtol={tolerance.rtol:g}",
        f"max abs error {_num(worst_abs.flat[i_abs])} at index {_index(i_abs, shape)}: "
        f"expected {_num(want.flat[i_abs])}, actual {_num(got.flat[i_abs])}",
        f"max rel error {_num(worst_rel.flat[i_rel])} at index {_index(i_rel, shape)}: "
        f"expected {_num(want.flat[i_rel])}, actual {_num(got.flat[i_rel])}",
    ]
    return lines + _first_differences(~close, want, got)


def _compare_exact(expected: np.ndarray, actual: np.ndarray) -> list[str]:
    if expected.dtype == np.object_:
        want = np.array([_as_bytes(e) for e in expected.reshape(-1)], dtype=object)
        got = np.array([_as_bytes(e) for e in actual.reshape(-1)], dtype=object)
        differ = np.array([w != g for w, g in zip(want, got)], dtype=bool).reshape(expected.shape)
        want, got = want.reshape(expected.shape), got.reshape(actual.shape)
    else:
        want, got = expected, actual
        differ = want != got
    if not np.any(differ):
        return []
    lines = [f"{int(np.count_nonzero(differ))} of {want.size} elements differ (compared exactly)"]
    if want.dtype != np.object_:
        with np.errstate(over="ignore"):
            abs_error = np.abs(got.astype(np.float64) - want.astype(np.float64))
        i = int(np.argmax(abs_error))
        lines.append(
            f"max abs error {_num(abs_error.flat[i])} at index {_index(i, want.shape)}: "
            f"expected {_num(want.flat[i])}, actual {_num(got.flat[i])}"
        )
    return lines + _first_differences(differ, want, got)


def _compare_argmax(expected: np.ndarray, actual: np.ndarray) -> list[str]:
    if actual.ndim == 0 or actual.shape[-1] == 0:
        return [f"argmax needs a non-empty last axis; the output has shape {list(actual.shape)}"]
    got = np.argmax(actual, axis=-1)
    if got.shape != expected.shape:
        return [
            f"argmax over the last axis has shape {list(got.shape)}, the expected `argmax` has "
            f"{list(expected.shape)}"
        ]
    differ = got != expected
    if not np.any(differ):
        return []
    return [f"argmax differs in {int(np.count_nonzero(differ))} of {got.size} rows"] + (
        _first_differences(differ, expected, got)
    )


def _compare_top_k(top_k: TopK, actual: np.ndarray) -> list[str]:
    if actual.ndim == 0 or actual.shape[-1] < top_k.k:
        return [
            f"top_k needs at least k={top_k.k} values on the last axis, output is {actual.shape}"
        ]
    # Stable sort of the negated values: ties keep the lower index first, like argmax.
    got = np.argsort(-actual.astype(np.float64), axis=-1, kind="stable")[..., : top_k.k]
    if got.shape != top_k.indices.shape:
        return [f"top_k indices have shape {list(got.shape)}, expected {list(top_k.indices.shape)}"]
    rows_got = got.reshape(-1, top_k.k)
    rows_want = top_k.indices.reshape(-1, top_k.k)
    lines = []
    for row, (g, w) in enumerate(zip(rows_got, rows_want)):
        if set(g.tolist()) != set(w.tolist()):
            where = _index(row, got.shape[:-1]) if got.ndim > 1 else "()"
            lines.append(f"row {where}: top-{top_k.k} indices {g.tolist()}, expected {w.tolist()}")
    if not lines:
        return []
    return [f"top-{top_k.k} indices differ in {len(lines)} of {len(rows_got)} rows"] + lines[
        :SHOWN_DIFFERENCES
    ]


def _first_differences(differ: np.ndarray, want: np.ndarray, got: np.ndarray) -> list[str]:
    indices = np.flatnonzero(differ)
    lines = [
        f"  at {_index(int(i), want.shape)}: expected {_num(want.flat[i])}, "
        f"actual {_num(got.flat[i])}"
        for i in indices[:SHOWN_DIFFERENCES]
    ]
    if len(indices) > SHOWN_DIFFERENCES:
        lines.append(f"  ... and {len(indices) - SHOWN_DIFFERENCES} more")
    return lines


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, np.bytes_):
        return bytes(value)
    return str(value).encode("utf-8")


def _num(value: Any) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return repr(bytes(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.7g}"
    return str(value)
