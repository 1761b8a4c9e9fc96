"""Which backend serves a model: Triton core's `AutoCompleteBackendFields`, in its order.

Before any backend sees a model, Triton's core fills in `platform`, `backend` and
`default_model_filename` (triton-inference-server/core `src/model_config_utils.cc`):

1. from `platform`, `backend` or `default_model_filename` when config.pbtxt sets them;
2. else from the model file in the *first* sub-folder of the model directory (sorted by name),
   one backend after the other: TensorFlow (`model.savedmodel/` folder, `model.graphdef` file),
   TensorRT (`model.plan` file), ONNX Runtime (`model.onnx`, file or folder), OpenVINO
   (`model.xml`), PyTorch (`model.pt` file, then `model.pt2` file), python (`model.py`);
3. else, for a config that sets none of the three, from the model name's `.<backend>` suffix (a
   custom backend: `model.identity` runs on `libtriton_identity.so`);
4. else it refuses the model: "Could not determine backend ...".

What a model directory ships is given as paths relative to it (`1/model.onnx`); a path a DVC
pointer fills in may be a file or a folder, so it counts as both.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Iterable

from pants.util.frozendict import FrozenDict
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.parse import ModelConfigFile

TENSORFLOW_SAVEDMODEL = "tensorflow_savedmodel"
TENSORFLOW_GRAPHDEF = "tensorflow_graphdef"
SAVEDMODEL_FILE = "model.savedmodel"
GRAPHDEF_FILE = "model.graphdef"
TENSORRT_PLATFORM = "tensorrt_plan"
PLAN_FILE = "model.plan"
ONNX_PLATFORM = "onnxruntime_onnx"
ONNX_FILE = "model.onnx"
OPENVINO_FILE = "model.xml"
LIBTORCH_PLATFORMS = ("pytorch_libtorch", "libtorch")
LIBTORCH_FILE = "model.pt"
AOTI_PLATFORM = "torch_aoti"
AOTI_FILE = "model.pt2"
PYTHON_FILE = "model.py"

# The model files Triton recognizes in a version folder, in the order it looks for them.
RECOGNIZED_FILES = (
    f"{SAVEDMODEL_FILE}/",
    GRAPHDEF_FILE,
    PLAN_FILE,
    ONNX_FILE,
    OPENVINO_FILE,
    LIBTORCH_FILE,
    AOTI_FILE,
    PYTHON_FILE,
)
_NO_BACKEND = (
    "Could not determine backend for model '{name}' with no backend in model configuration. "
    "Expected model name of the form 'model.<backend_name>'."
)


@dataclass(frozen=True)
class BackendFields:
    """`platform`, `backend` and `default_model_filename` as Triton's core completes them."""

    platform: str
    backend: str
    default_model_filename: str
    # How the backend was decided, for messages: `config.pbtxt`, `the file 1/model.onnx` or
    # `the model name`.
    decided_by: str
    # The fields config.pbtxt leaves out that the core fills in -> why (for the printout).
    filled: FrozenDict[str, str]

    @property
    def from_file(self) -> str | None:
        """The version-folder file the backend was taken from (`1/model.py`), if it was."""
        prefix = "the file "
        return self.decided_by[len(prefix) :] if self.decided_by.startswith(prefix) else None


class NoBackendError(ModelConfigError):
    """Triton cannot tell which backend serves the model."""


def first_version_folder(
    shipped: Iterable[str], tracked: Iterable[str] = ()
) -> tuple[str | None, dict[str, set[str]]]:
    """The folder Triton inspects (the first sub-folder of the model directory, by name) and
    what it holds: entry name -> {"file"}, {"folder"} or both (a DVC-tracked path)."""
    shipped, tracked = tuple(shipped), set(tracked)
    folders = sorted({path.split("/", 1)[0] for path in shipped if "/" in path})
    if not folders:
        return None, {}
    first = folders[0]
    entries: dict[str, set[str]] = {}
    for path in shipped:
        if not path.startswith(f"{first}/"):
            continue
        name, _, rest = path[len(first) + 1 :].partition("/")
        kinds = entries.setdefault(name, set())
        if rest:
            kinds.add("folder")
        else:
            kinds.update(("file", "folder") if path in tracked else ("file",))
    return first, entries


def complete_backend_fields(
    config: ModelConfigFile,
    model_name: str,
    shipped: Iterable[str],
    tracked: Iterable[str] = (),
) -> BackendFields:
    """Triton core's `AutoCompleteBackendFields`; raises `NoBackendError` where Triton refuses."""
    platform, backend, filename = config.platform, config.backend, config.default_model_filename
    folder, entries = first_version_folder(shipped, tracked)
    found: list[str] = []

    def look_for(name: str, kind: str | None = None) -> bool:
        """Whether the first version folder holds `name` (of `kind`, when given)."""
        present = name in entries and (kind is None or kind in entries[name])
        if present:
            found.append(f"{folder}/{name}")
        return present

    def result(platform: str, backend: str, filename: str) -> BackendFields:
        decided_by = f"the file {found[-1]}" if found else "config.pbtxt"
        filled = {}
        for key, before, after in (
            ("platform", config.platform, platform),
            ("backend", config.backend, backend),
            ("default_model_filename", config.default_model_filename, filename),
        ):
            if after and not before:
                filled[key] = (
                    f"filled in by Triton's core, from the file {found[-1]}"
                    if found
                    else f"filled in by Triton's core, from `{_set_fields(config)}`"
                )
        return BackendFields(platform, backend, filename, decided_by, FrozenDict(filled))

    # TensorFlow: the platform decides (set, or taken from the file name or the folder).
    if not platform and backend in ("", "tensorflow"):
        if filename == SAVEDMODEL_FILE:
            platform = TENSORFLOW_SAVEDMODEL
        elif filename == GRAPHDEF_FILE:
            platform = TENSORFLOW_GRAPHDEF
        elif not filename and folder is not None:
            if look_for(SAVEDMODEL_FILE, "folder"):
                platform = TENSORFLOW_SAVEDMODEL
            if look_for(GRAPHDEF_FILE, "file"):
                platform = TENSORFLOW_GRAPHDEF
    if platform in (TENSORFLOW_SAVEDMODEL, TENSORFLOW_GRAPHDEF):
        default = SAVEDMODEL_FILE if platform == TENSORFLOW_SAVEDMODEL else GRAPHDEF_FILE
        return result(platform, backend or "tensorflow", filename or default)
    undecided = not platform and not filename and folder is not None
    # TensorRT
    if not backend:
        if platform == TENSORRT_PLATFORM or filename == PLAN_FILE:
            backend = "tensorrt"
        elif undecided and look_for(PLAN_FILE, "file"):
            backend = "tensorrt"
    if backend == "tensorrt":
        return result(platform or TENSORRT_PLATFORM, backend, filename or PLAN_FILE)
    # ONNX Runtime (a large model may be a folder `model.onnx/`)
    if not backend:
        if platform == ONNX_PLATFORM or filename == ONNX_FILE:
            backend = "onnxruntime"
        elif undecided and look_for(ONNX_FILE):
            backend = "onnxruntime"
    if backend == "onnxruntime":
        return result(platform or ONNX_PLATFORM, backend, filename or ONNX_FILE)
    # OpenVINO
    if not backend:
        if filename == OPENVINO_FILE or (undecided and look_for(OPENVINO_FILE)):
            backend = "openvino"
    if backend == "openvino":
        return result(platform, backend, filename or OPENVINO_FILE)
    # PyTorch: `model.pt` is looked for first; a folder of that name stops the search.
    if not backend:
        if platform in LIBTORCH_PLATFORMS or filename == LIBTORCH_FILE:
            backend = "pytorch"
        elif platform == AOTI_PLATFORM or filename == AOTI_FILE:
            backend = "pytorch"
        elif undecided:
            if LIBTORCH_FILE in entries:
                if look_for(LIBTORCH_FILE, "file"):
                    backend, platform = "pytorch", LIBTORCH_PLATFORMS[0]
            elif look_for(AOTI_FILE, "file"):
                backend, platform = "pytorch", AOTI_PLATFORM
    if backend == "pytorch":
        if not platform:
            return result(LIBTORCH_PLATFORMS[0], backend, filename or LIBTORCH_FILE)
        if platform == AOTI_PLATFORM:
            return result(platform, backend, filename or AOTI_FILE)
        return result(platform, backend, filename)
    # Python
    if not backend:
        if filename == PYTHON_FILE or (undecided and look_for(PYTHON_FILE)):
            backend = "python"
    if backend == "python":
        return result(platform, backend, filename or PYTHON_FILE)
    # A custom backend, named by the model name's suffix, when the config says nothing at all.
    if not backend and not platform and not filename:
        if "." not in model_name:
            raise NoBackendError(
                config.path, _no_backend_message(model_name, config, folder), line=_line(config)
            )
        backend = model_name.split(".", 1)[1]
        reason = f"filled in by Triton's core, from the model name `{model_name}`"
        return BackendFields(
            "",
            backend,
            f"model.{backend}",
            "the model name",
            FrozenDict({"backend": reason, "default_model_filename": reason}),
        )
    return result(platform, backend, filename)


def _set_fields(config: ModelConfigFile) -> str:
    for key in ("platform", "backend", "default_model_filename"):
        value = getattr(config, key)
        if value:
            return f'{key}: "{value}"'
    return ""


def _line(config: ModelConfigFile) -> int:
    return config.line("name") or 1


def _no_backend_message(model_name: str, config: ModelConfigFile, folder: str | None) -> str:
    directory = posixpath.dirname(config.path) or "."
    if folder is None:
        where = f"`{directory}/` has no version folder to take it from"
    else:
        where = (
            f"`{directory}/{folder}/`, the first folder Triton looks in, holds none of the model "
            f"files it recognizes ({', '.join(RECOGNIZED_FILES)})"
        )
    return (
        f'Triton refuses this model: "{_NO_BACKEND.format(name=model_name)}" config.pbtxt sets '
        f"no `platform`, `backend` or `default_model_filename`, {where}, and the model name has "
        'no `.<backend>` suffix. Name the backend, e.g. `backend: "python"` or `platform: '
        '"onnxruntime_onnx"`, or put the model file in the version folder (`1/model.py`, '
        "`1/model.onnx`, ...)."
    )


def check_backend(
    config: ModelConfigFile,
    model_name: str,
    shipped: Iterable[str],
    tracked: Iterable[str] = (),
) -> list[ModelConfigError]:
    """Triton refuses a model whose backend nothing decides (see the module docstring)."""
    try:
        complete_backend_fields(config, model_name, shipped, tracked)
    except NoBackendError as e:
        return [e]
    return []
