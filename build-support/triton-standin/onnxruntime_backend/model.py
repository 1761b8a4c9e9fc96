"""CPU stand-in for Triton's C++ onnxruntime backend, used only in the local/CI stand-in image.

Triton's python backend serves every model whose config names a backend that has a ``model.py``
under ``<backend-directory>/<backend-name>/``. The stand-in image installs this file as
``/opt/tritonserver/backends/onnxruntime/model.py``, so configs with ``platform:
"onnxruntime_onnx"`` (or ``backend: "onnxruntime"``) load unchanged and run real ONNX inference
with the onnxruntime Python package on CPU.

Differences from the real backend: no GPU or TensorRT execution providers, no config
auto-complete (the config must list its inputs and outputs), and requests are run one by one
(a dynamic batcher still works, it only brings no speed-up). Supported config parameters:
``intra_op_thread_count`` and ``inter_op_thread_count``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class _TensorSpec:
    """One input or output of the model config, with the numpy dtype it maps to."""

    def __init__(self, config: dict[str, Any], max_batch_size: int) -> None:
        self.name: str = config["name"]
        self.dtype: np.dtype = np.dtype(pb_utils.triton_string_to_numpy(config["data_type"]))
        self.optional: bool = bool(config.get("optional", False))
        reshape = config.get("reshape")
        # Shape of the tensor as the ONNX model sees it (without the batch dimension), if the
        # config asks for a reshape; the dims in the config are then the shape Triton sees.
        self.model_dims: list[int] | None = None
        if reshape is not None:
            self.model_dims = [int(d) for d in reshape.get("shape", [])]
        self.dims: list[int] = [int(d) for d in config.get("dims", [])]
        self.batched: bool = max_batch_size > 0


def _model_path(args: dict[str, str], config: dict[str, Any]) -> str:
    filename = config.get("default_model_filename") or "model.onnx"
    path = os.path.join(args["model_repository"], args["model_version"], filename)
    if os.path.isdir(path):  # The real backend also accepts a directory holding model.onnx.
        path = os.path.join(path, "model.onnx")
    if not os.path.isfile(path):
        raise pb_utils.TritonModelException(f"ONNX model file not found: {path}")
    return path


def _int_parameter(config: dict[str, Any], key: str) -> int | None:
    value = config.get("parameters", {}).get(key, {}).get("string_value")
    return int(value) if value else None


class TritonPythonModel:
    """Runs one ONNX model with an onnxruntime InferenceSession on CPU."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.model_name: str = args["model_name"]
        max_batch_size = int(config.get("max_batch_size", 0))
        self.inputs = [_TensorSpec(c, max_batch_size) for c in config.get("input", [])]
        self.outputs = [_TensorSpec(c, max_batch_size) for c in config.get("output", [])]
        if not self.outputs:
            raise pb_utils.TritonModelException(
                f"model '{self.model_name}': the stand-in onnxruntime backend needs the outputs"
                " listed in config.pbtxt (it does not auto-complete configs)"
            )

        options = ort.SessionOptions()
        intra = _int_parameter(config, "intra_op_thread_count")
        inter = _int_parameter(config, "inter_op_thread_count")
        if intra:
            options.intra_op_num_threads = intra
        if inter:
            options.inter_op_num_threads = inter
        path = _model_path(args, config)
        self.session = ort.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )

        model_inputs = {i.name for i in self.session.get_inputs()}
        model_outputs = {o.name for o in self.session.get_outputs()}
        unknown = [s.name for s in self.inputs if s.name not in model_inputs]
        unknown += [s.name for s in self.outputs if s.name not in model_outputs]
        if unknown:
            raise pb_utils.TritonModelException(
                f"model '{self.model_name}': config names {unknown} not found in {path};"
                f" the ONNX model has inputs {sorted(model_inputs)}"
                f" and outputs {sorted(model_outputs)}"
            )
        self.output_names: list[str] = [s.name for s in self.outputs]

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                responses.append(self._run(request))
            except Exception as e:  # One bad request must not fail the others.
                error = pb_utils.TritonError(f"model '{self.model_name}': {e}")
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
        return responses

    def _run(self, request: Any) -> Any:
        feeds: dict[str, np.ndarray] = {}
        for spec in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, spec.name)
            if tensor is None:
                if spec.optional:
                    continue
                raise ValueError(f"missing input '{spec.name}'")
            array = tensor.as_numpy()
            if spec.dtype == np.object_:  # onnxruntime wants str, Triton gives bytes.
                array = np.vectorize(_to_str, otypes=[np.object_])(array)
            if spec.model_dims is not None:
                batch = list(array.shape[:1]) if spec.batched else []
                array = array.reshape(batch + spec.model_dims)
            feeds[spec.name] = array

        results = self.session.run(self.output_names, feeds)

        tensors = []
        for spec, result in zip(self.outputs, results):
            array = np.asarray(result)
            if spec.model_dims is not None:
                batch = list(array.shape[:1]) if spec.batched else []
                array = array.reshape(batch + spec.dims)
            if array.dtype != spec.dtype:
                array = array.astype(spec.dtype)
            tensors.append(pb_utils.Tensor(spec.name, array))
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def finalize(self) -> None:
        del self.session


def _to_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
