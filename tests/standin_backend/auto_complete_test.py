"""The stand-in's onnxruntime backend completes configs as the plugin's `lint` does.

Each case of pants-plugins/triton_mme/config/testdata/onnx_auto_complete.json (which
config/completion_test.py checks the plugin's static completion against) is built as a real ONNX
graph with the onnx package, loaded in an onnxruntime session, and completed by the stand-in's
`auto_complete_config` (with a stand-in for Triton's `triton_python_backend_utils`).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import onnx
from onnx import helper

BACKEND = "build-support/triton-standin/onnxruntime_backend/model.py"
CASES = "pants-plugins/triton_mme/config/testdata/onnx_auto_complete.json"


class _ModelConfig:
    """The part of python_backend's `pb_utils.ModelConfig` the backend uses."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._model_config = config

    def as_dict(self) -> dict[str, Any]:
        return self._model_config


@functools.lru_cache(maxsize=None)
def load_backend() -> tuple[Any, Any]:
    """The backend module, and the `triton_python_backend_utils` it imports (a stand-in)."""
    pb_utils = types.ModuleType("triton_python_backend_utils")
    setattr(pb_utils, "TritonModelException", type("TritonModelException", (Exception,), {}))
    setattr(pb_utils, "get_model_dir", lambda: "")  # each test points it at its model
    sys.modules["triton_python_backend_utils"] = pb_utils
    spec = importlib.util.spec_from_file_location("standin_onnxruntime_backend", BACKEND)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, pb_utils


def cases() -> list[dict[str, Any]]:
    return list(json.loads(Path(CASES).read_text())["cases"])


def write_graph(case: dict[str, Any], path: Path) -> None:
    """Output i computed from input i, with the dims and element types the case declares."""
    graph = case["graph"]
    inputs = [helper.make_tensor_value_info(n, t, d) for n, t, d in graph["inputs"]]
    outputs = [helper.make_tensor_value_info(n, t, d) for n, t, d in graph["outputs"]]
    nodes = [
        helper.make_node("Identity", [i[0]], [o[0]])
        if i[1] == o[1]
        else helper.make_node("Cast", [i[0]], [o[0]], to=o[1])
        for i, o in zip(graph["inputs"], graph["outputs"])
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs), opset_imports=[helper.make_opsetid("", 13)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def triton_json(config: dict[str, Any]) -> dict[str, Any]:
    """The config as the python backend hands it over: Triton prints every scalar and list."""
    return {
        "name": "net",
        "max_batch_size": 0,
        "input": [],
        "output": [],
        "batch_input": [],
        **copy.deepcopy(config),
    }


def test_auto_complete_config(tmp_path: Path) -> None:
    backend, pb_utils = load_backend()
    for index, case in enumerate(cases()):
        version_dir = tmp_path / str(index) / "1"
        version_dir.mkdir(parents=True)
        write_graph(case, version_dir / "model.onnx")
        setattr(pb_utils, "get_model_dir", lambda: str(version_dir))
        config = _ModelConfig(triton_json(case["config"]))
        if "error" in case:
            try:
                backend.TritonPythonModel.auto_complete_config(config)
            except pb_utils.TritonModelException as e:
                assert case["error"] in str(e), case["name"]
            else:
                raise AssertionError(f"{case['name']}: not refused")
            continue
        completed = backend.TritonPythonModel.auto_complete_config(config).as_dict()
        assert {
            "max_batch_size": completed["max_batch_size"],
            "dynamic_batching": "dynamic_batching" in completed,
            "input": completed["input"],
            "output": completed["output"],
        } == case["completed"], case["name"]


def test_a_missing_model_file(tmp_path: Path) -> None:
    backend, pb_utils = load_backend()
    setattr(pb_utils, "get_model_dir", lambda: str(tmp_path))
    try:
        backend.TritonPythonModel.auto_complete_config(_ModelConfig(triton_json({})))
    except pb_utils.TritonModelException as e:
        assert str(e).startswith(f"unable to find '{tmp_path}/model.onnx' for model 'net'")
    else:
        raise AssertionError("a missing model.onnx was not refused")
