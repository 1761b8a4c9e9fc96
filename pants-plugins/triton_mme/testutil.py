"""Helpers for the plugin's RuleRunner tests: small model configs, ONNX files, and the local
`pex` tool."""

from __future__ import annotations

import glob
import hashlib
import os
from textwrap import dedent
from typing import Sequence, Union

PEX_VERSION = "v2.1.137"

# A python-backend model, and an ensemble with one step over it.
ADD_ONE_CONFIG = dedent(
    """\
    name: "add_one"
    backend: "python"
    max_batch_size: 0
    input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1] }]
    """
)

PIPELINE_CONFIG = dedent(
    """\
    name: "pipeline"
    platform: "ensemble"
    max_batch_size: 0
    input [{ name: "X", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "Y", data_type: TYPE_FP32, dims: [-1] }]
    ensemble_scheduling {
      step [{
        model_name: "add_one"
        model_version: -1
        input_map { key: "INPUT0", value: "X" }
        output_map { key: "OUTPUT0", value: "Y" }
      }]
    }
    """
)


def local_pex_cli_options() -> list[str] | None:
    """`[pex-cli]` options that point a RuleRunner at the `pex` tool `./pants` built locally.

    Pants would download it from GitHub otherwise, which these machines cannot reach. `None`
    when `./pants` has not built it on this machine (the caller should skip). The test target
    needs `extra_env_vars=["HOME", "PATH", "PYENV_ROOT", "TRITON_MME_BOOTSTRAP_CACHE"]`.
    """
    cache = os.environ.get("TRITON_MME_BOOTSTRAP_CACHE") or os.path.join(
        os.environ.get("HOME", "/nonexistent"), ".cache", "triton-mme-bootstrap"
    )
    candidates = sorted(glob.glob(os.path.join(cache, f"pex-{PEX_VERSION}-*")))
    if not candidates:
        return None
    path = candidates[0]
    with open(path, "rb") as f:
        content = f.read()
    digest = hashlib.sha256(content).hexdigest()
    return [
        f"--pex-cli-version={PEX_VERSION}",
        f"--pex-cli-known-versions=['{PEX_VERSION}|linux_x86_64|{digest}|{len(content)}']",
        f"--pex-cli-url-template=file://{path}",
    ]


# --- ONNX files, written without the `onnx` package (the plugin's resolve does not have it) ---

FLOAT, INT64 = 1, 7  # ONNX TensorProto.DataType
Dim = Union[int, str, None]  # a size, a symbolic name (dim_param), or unknown


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: Union[int, str, bytes]) -> bytes:
    """One protobuf field: a varint for an int, length-delimited for text and messages."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, dims: Sequence[Dim]) -> bytes:
    shape = b"".join(
        _field(1, b"" if d is None else _field(1, d) if isinstance(d, int) else _field(2, d))
        for d in dims
    )
    tensor_type = _field(1, elem_type) + _field(2, shape)
    return _field(1, name) + _field(2, _field(1, tensor_type))


def onnx_model_bytes(
    inputs: Sequence[tuple[str, int, Sequence[Dim]]],
    outputs: Sequence[tuple[str, int, Sequence[Dim]]],
    *,
    ir_version: int = 8,
    opset: int = 13,
) -> bytes:
    """A serialized ONNX `ModelProto` whose graph has these inputs and outputs (name, element
    type, dims) and no nodes: what the `[onnx-graph]` tool reads of a model, nothing more."""
    graph = _field(2, "g")
    graph += b"".join(_field(11, _value_info(*tensor)) for tensor in inputs)
    graph += b"".join(_field(12, _value_info(*tensor)) for tensor in outputs)
    opset_import = _field(1, "") + _field(2, opset)
    return _field(1, ir_version) + _field(8, opset_import) + _field(7, graph)


# The model.py Triton's qa copies into autofill_noplatform_success/python/incomplete_output/1/
# (and empty_config, unknown_input, ...): qa/python_models/auto_complete/model.py of
# triton-inference-server/server, without its licence header and execute().
QA_AUTO_COMPLETE = dedent(
    """\
    import json

    import numpy as np
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        @staticmethod
        def auto_complete_config(auto_complete_model_config):
            input0 = {"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [4]}
            input1 = {"name": "INPUT1", "data_type": "TYPE_FP32", "dims": [4]}
            output0 = {"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [4]}
            output1 = {"name": "OUTPUT1", "data_type": "TYPE_FP32", "dims": [4]}

            auto_complete_model_config.set_max_batch_size(0)
            auto_complete_model_config.add_input(input0)
            auto_complete_model_config.add_input(input1)
            auto_complete_model_config.add_output(output0)
            auto_complete_model_config.add_output(output1)

            return auto_complete_model_config

        def initialize(self, args):
            self.model_config = model_config = json.loads(args["model_config"])
    """
)

# Triton's qa case autofill_noplatform_success/python/incomplete_input: its config.pbtxt (from
# qa/L0_model_config/ of triton-inference-server/server).
QA_INCOMPLETE_INPUT = dedent(
    """\
    name: "incomplete_input"
    input [
      {
        name: "INPUT1"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]
    """
)
