"""CPU stand-in for Triton's C++ onnxruntime backend, used only in the local/CI stand-in image.

Triton's python backend serves every model whose config names a backend that has a ``model.py``
under ``<backend-directory>/<backend-name>/``. The stand-in image installs this file as
``/opt/tritonserver/backends/onnxruntime/model.py``, so configs with ``platform:
"onnxruntime_onnx"`` (or ``backend: "onnxruntime"``) load unchanged and run real ONNX inference
with the onnxruntime Python package on CPU.

At load it refuses what the real backend refuses (``ModelInstanceState::ValidateInputs`` and
``ValidateOutputs`` in onnxruntime_backend's ``src/onnxruntime.cc``): config inputs and outputs
are compared with what the onnxruntime session reports (graph inputs that are not initializers,
overridable initializers, graph outputs) by count, name, data type and shape, with the batch
dimension checked against ``max_batch_size``, and with Triton's own messages.

Like the real backend it auto-completes a config that lists no inputs (nor batch inputs) or no
outputs (``ModelState::AutoCompleteConfig``, ``AutoCompleteMaxBatch`` and ``AutoCompleteIO``):
``auto_complete_config`` takes the missing ones from the session, sets ``max_batch_size`` to
Triton's default-max-batch-size (4) when every input and output has a variable first dimension
and the config sets none, turns on dynamic batching for a ``max_batch_size`` above 1 without a
scheduler, and refuses a model that cannot batch with a non-zero ``max_batch_size``. The Pants
plugin's static completion (``config/completion.py``) does the same from the graph; a test
compares the two on the same graphs (``tests/standin_backend/``).

Differences from the real backend: no GPU or TensorRT execution providers, the default max
batch size is always 4 (``--backend-config=default-max-batch-size`` is not read), completed
tensors keep the session's order (the real backend's is a hash map's), and requests are run one
by one (a dynamic batcher still works, it only brings no speed-up). Supported config parameters:
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


def _onnx_file(version_dir: str, config: dict[str, Any], who: str) -> str:
    filename = config.get("default_model_filename") or "model.onnx"
    path = os.path.join(version_dir, filename)
    if os.path.isdir(path):  # The real backend also accepts a directory holding model.onnx.
        path = os.path.join(path, "model.onnx")
    if not os.path.isfile(path):
        raise pb_utils.TritonModelException(f"unable to find '{path}' for {who}")
    return path


def _model_path(args: dict[str, str], config: dict[str, Any]) -> str:
    version_dir = os.path.join(args["model_repository"], args["model_version"])
    return _onnx_file(version_dir, config, f"model instance '{args['model_instance_name']}'")


def _int_parameter(config: dict[str, Any], key: str) -> int | None:
    value = config.get("parameters", {}).get(key, {}).get("string_value")
    return int(value) if value else None


# Config data type -> the onnxruntime session's type string, and the name Triton prints for the
# model's side of a mismatch (`ConvertFromOnnxDataType`: ONNX strings are Triton's BYTES).
_ORT_TYPES = {
    "TYPE_BOOL": "tensor(bool)",
    "TYPE_UINT8": "tensor(uint8)",
    "TYPE_UINT16": "tensor(uint16)",
    "TYPE_UINT32": "tensor(uint32)",
    "TYPE_UINT64": "tensor(uint64)",
    "TYPE_INT8": "tensor(int8)",
    "TYPE_INT16": "tensor(int16)",
    "TYPE_INT32": "tensor(int32)",
    "TYPE_INT64": "tensor(int64)",
    "TYPE_FP16": "tensor(float16)",
    "TYPE_FP32": "tensor(float)",
    "TYPE_FP64": "tensor(double)",
    "TYPE_STRING": "tensor(string)",
    "TYPE_BF16": "tensor(bfloat16)",
}
_TRITON_NAMES = {ort: cfg[len("TYPE_") :] for cfg, ort in _ORT_TYPES.items()}
_TRITON_NAMES["tensor(string)"] = "BYTES"
_ONNX_KINDS = {
    "seq": "ONNX_TYPE_SEQUENCE",
    "map": "ONNX_TYPE_MAP",
    "sparse_tensor": "ONNX_TYPE_SPARSETENSOR",
}
_SEQUENCE_CONTROLS = (
    "CONTROL_SEQUENCE_START",
    "CONTROL_SEQUENCE_END",
    "CONTROL_SEQUENCE_READY",
    "CONTROL_SEQUENCE_CORRID",
)


class LoadError(Exception):
    """The model is refused at load, with the real onnxruntime backend's message."""


# Triton's `default-max-batch-size` backend setting (core's src/backend_model.cc), which the
# real backend gives a model that can batch and whose config sets no max_batch_size.
DEFAULT_MAX_BATCH_SIZE = 4
# The session's type string -> the config data type (`OnnxDataTypeToModelConfigDataType`).
_CONFIG_TYPES = {ort_type: config_type for config_type, ort_type in _ORT_TYPES.items()}


def _complete_io(
    infos: dict[str, tuple[str, list[int]]], max_batch: int
) -> list[dict[str, Any]]:
    """`AutoCompleteIO`: each tensor without the batch dimension; a scalar as dims [1], with an
    empty reshape when the model batches."""
    tensors = []
    for name, (model_type, model_dims) in infos.items():
        dims = model_dims[1:] if max_batch > 0 else list(model_dims)
        io: dict[str, Any] = {"name": name, "data_type": _CONFIG_TYPES.get(model_type, "TYPE_INVALID")}
        if not dims:
            dims = [1]
            if max_batch > 0:
                io["reshape"] = {"shape": []}
        io["dims"] = dims
        tensors.append(io)
    return tensors


def complete_config(
    config: dict[str, Any],
    inputs: dict[str, tuple[str, list[int]]],
    outputs: dict[str, tuple[str, list[int]]],
    default_max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> None:
    """Completes `config` in place as the real backend's `AutoCompleteConfig` does, from the
    session's inputs and outputs (`_tensor_infos`); raises LoadError where it refuses."""
    listed_inputs = len(config.get("input") or []) + len(config.get("batch_input") or [])
    listed_outputs = len(config.get("output") or [])
    if listed_inputs and listed_outputs:
        return  # "skipping model configuration auto-complete ...: inputs and outputs already specified"
    batchable = all(dims and dims[0] == -1 for _, dims in (*inputs.values(), *outputs.values()))
    max_batch = int(config.get("max_batch_size", 0))
    if batchable:
        if max_batch == 0:
            max_batch = default_max_batch_size
            config["max_batch_size"] = max_batch
        if max_batch > 1 and "sequence_batching" not in config and "dynamic_batching" not in config:
            config["dynamic_batching"] = {}
    elif max_batch != 0:
        raise LoadError(
            f"autofill failed for model '{config.get('name', '')}': model does not support "
            "batching while non-zero max_batch_size is specified"
        )
    if not listed_inputs:
        config["input"] = _complete_io(inputs, max_batch)
    if not listed_outputs:
        config["output"] = _complete_io(outputs, max_batch)


def _shape(dims: list[int]) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


def _tensor_infos(args: Any) -> dict[str, tuple[str, list[int]]]:
    """name -> (type string, dims) of session NodeArgs; -1 for a symbolic or unknown dim."""
    infos = {}
    for arg in args:
        if not arg.type.startswith("tensor("):
            kind = _ONNX_KINDS.get(arg.type.split("(", 1)[0], "ONNX_TYPE_UNKNOWN")
            raise LoadError(
                f"Unsupported ONNX Type '{kind}' for I/O '{arg.name}', expected 'ONNX_TYPE_TENSOR'."
            )
        infos[arg.name] = (arg.type, [d if isinstance(d, int) else -1 for d in arg.shape or []])
    return infos


def _config_dims(io: dict[str, Any]) -> list[int]:
    reshape = io.get("reshape")
    return [int(d) for d in (reshape.get("shape", []) if reshape is not None else io["dims"])]


def _compare_dims(
    model: str, name: str, model_dims: list[int], dims: list[int], max_batch: int, exact: bool
) -> None:
    """`CompareDimsSupported` of onnxruntime_backend's src/onnxruntime_utils.cc."""
    where = f"model '{model}', tensor '{name}'"
    if not model_dims:  # a scalar, or a tensor without shape
        if any(d != 1 for d in dims):
            raise LoadError(
                f"unable to load model '{model}', scalar tensor '{name}', should only provide 1 in "
                "the model configuration when the model doesn't support batching. Model "
                f"configuration provided: {_shape(dims)}."
            )
        return
    full = [-1, *dims] if max_batch > 0 else dims
    if max_batch > 0 and model_dims[0] != -1:
        raise LoadError(
            f"{where}: for the model to support batching the shape should have at least 1 "
            "dimension and the first dimension must be -1; but shape expected by the model is "
            f"{_shape(model_dims)}"
        )
    same = len(model_dims) == len(full) and all(
        m == c for m, c in zip(model_dims, full) if exact or m != -1
    )
    if not same:
        specified = (
            f"{len(full)} dimensions (an initial batch dimension because max_batch_size > 0 "
            f"followed by the explicit tensor shape, making complete shape {_shape(full)})"
            if max_batch > 0
            else f"{len(dims)} dimensions (shape {_shape(dims)})"
        )
        raise LoadError(
            f"{where}: the model expects {len(model_dims)} dimensions (shape "
            f"{_shape(model_dims)}) but the model configuration specifies {specified}"
        )


def _check_data_type(model: str, io: dict[str, Any], kind: str, model_type: str) -> None:
    data_type = io["data_type"]
    if data_type not in _ORT_TYPES:
        raise LoadError(
            f"unsupported datatype {data_type} for {kind} '{io['name']}' for model '{model}'"
        )
    if _ORT_TYPES[data_type] != model_type:
        provides = _TRITON_NAMES.get(model_type, "<invalid>")
        raise LoadError(
            f"unable to load model '{model}', configuration expects datatype {data_type} for "
            f"{kind} '{io['name']}', model provides TYPE_{provides}"
        )


def _check_sequence_controls(
    model: str, config: dict[str, Any], inputs: dict[str, tuple[str, list[int]]]
) -> int:
    """The sequence controls' tensors (`ValidateBooleanSequenceControl` and friends); their count."""
    batching = config.get("sequence_batching")
    if not batching:
        return 0
    count = len(batching.get("state", []))
    max_batch = int(config.get("max_batch_size", 0))
    for wanted in _SEQUENCE_CONTROLS:
        for control_input in batching.get("control_input", []):
            control = next(
                (c for c in control_input.get("control", []) if c["kind"] == wanted), None
            )
            if control is None:
                continue
            name, count = control_input["name"], count + 1
            if name not in inputs:
                raise LoadError(
                    f"configuration specified sequence control '{name}', but model does not "
                    "provide that input"
                )
            model_type, model_dims = inputs[name]
            dims = model_dims[1:] if max_batch > 0 else model_dims
            if dims != [1]:
                raise LoadError(
                    f"unable to load model '{model}', sequence control '{name}' in model has dims "
                    f"{_shape(dims)} but dims [1] is expected"
                )
            data_type = control.get("data_type", "TYPE_INVALID")
            for field, implied in (
                ("int32_false_true", "TYPE_INT32"),
                ("fp32_false_true", "TYPE_FP32"),
                ("bool_false_true", "TYPE_BOOL"),
            ):
                if control.get(field):
                    data_type = implied
            if _ORT_TYPES.get(data_type) != model_type:
                onnx_name = model_type[len("tensor(") : -1].upper()
                raise LoadError(
                    f"unable to load model '{model}', sequence control '{name}', the model expects "
                    f"data-type {onnx_name} but the model configuration specifies data-type "
                    f"{data_type}"
                )
    return count


def check_config_against_session(model: str, config: dict[str, Any], session: Any) -> None:
    """Raises LoadError where the real onnxruntime backend refuses the config at load."""
    max_batch = int(config.get("max_batch_size", 0))
    inputs = _tensor_infos(session.get_inputs())
    overridable = _tensor_infos(session.get_overridable_initializers())
    expected = _check_sequence_controls(model, config, inputs)
    config_inputs = config.get("input", [])
    expected += sum(not io.get("optional", False) for io in config_inputs)
    expected += len(config.get("batch_input", []))
    if len(inputs) != expected:
        raise LoadError(
            f"unable to load model '{model}', configuration expects {expected} inputs, model "
            f"provides {len(inputs)}"
        )
    allowed = {**inputs, **overridable}
    for io in config_inputs:
        name, optional = io["name"], io.get("optional", False)
        if optional and max_batch != 0:
            raise LoadError(
                f"unable to load model '{model}', optional input '{name}' is not supported for "
                "models that support batching"
            )
        if name not in allowed:
            raise LoadError(
                f"unexpected inference input '{name}', allowed inputs are: {', '.join(sorted(allowed))}"
            )
        model_type, model_dims = allowed[name]
        _check_data_type(model, io, "input", model_type)
        if io.get("allow_ragged_batch", False):
            if optional:
                raise LoadError(
                    f"unable to load model '{model}', configuration expects model provides input "
                    f"with shape [-1] for ragged input '{name}', which is not supported for "
                    "optional input"
                )
            if model_dims != [-1]:
                raise LoadError(
                    f"unable to load model '{model}', configuration expects model provides input "
                    f"with shape [-1]  for ragged input '{name}', model provides {_shape(model_dims)}"
                )
            continue
        _compare_dims(model, name, model_dims, _config_dims(io), max_batch, exact=False)
    outputs = _tensor_infos(session.get_outputs())
    batch_outputs = {t for b in config.get("batch_output", []) for t in b.get("target_name", [])}
    for io in config.get("output", []):
        name = io["name"]
        if name not in outputs:
            raise LoadError(
                f"unexpected inference output '{name}', allowed outputs are: {', '.join(sorted(outputs))}"
            )
        model_type, model_dims = outputs[name]
        _check_data_type(model, io, "output", model_type)
        if name not in batch_outputs:
            _compare_dims(model, name, model_dims, _config_dims(io), max_batch, exact=True)


class TritonPythonModel:
    """Runs one ONNX model with an onnxruntime InferenceSession on CPU."""

    @staticmethod
    def auto_complete_config(auto_complete_model_config: Any) -> Any:
        """Triton calls this at load (unless `--disable-auto-complete-config`), in the version's
        folder (`pb_utils.get_model_dir()`), before `initialize`."""
        config = auto_complete_model_config.as_dict()  # the config itself, completed in place
        if (config.get("input") or config.get("batch_input")) and config.get("output"):
            return auto_complete_model_config
        name = config.get("name", "")
        path = _onnx_file(pb_utils.get_model_dir(), config, f"model '{name}'")
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        try:
            complete_config(
                config, _tensor_infos(session.get_inputs()), _tensor_infos(session.get_outputs())
            )
        except LoadError as e:
            raise pb_utils.TritonModelException(str(e)) from None
        return auto_complete_model_config

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.model_name: str = args["model_name"]
        max_batch_size = int(config.get("max_batch_size", 0))
        self.inputs = [_TensorSpec(c, max_batch_size) for c in config.get("input", [])]
        self.outputs = [_TensorSpec(c, max_batch_size) for c in config.get("output", [])]
        if not self.outputs:
            raise pb_utils.TritonModelException(
                f"model '{self.model_name}': config.pbtxt lists no outputs and nothing completed "
                "them (does Triton run with --disable-auto-complete-config?)"
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

        try:
            check_config_against_session(self.model_name, config, self.session)
        except LoadError as e:
            raise pb_utils.TritonModelException(str(e)) from None
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
