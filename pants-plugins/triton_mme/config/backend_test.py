from __future__ import annotations

import pytest
from triton_mme.config.backend import (
    NoBackendError,
    check_backend,
    complete_backend_fields,
    first_version_folder,
)
from triton_mme.config.parse import parse_model_config

# Triton's qa case qa/L0_model_config/autofill_noplatform/common/no_version/config.pbtxt
# (triton-inference-server/server); Triton refuses it (`expected` in the same folder):
NO_VERSION = """\
name: "no_version"
max_batch_size: 1
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 16 ]
  }
]
output [
  {
    name: "output"
    data_type: TYPE_FP32
    dims: [ 16 ]
  }
]
"""


def fields(text: str, shipped: tuple[str, ...] = (), name: str = "m", tracked=()) -> tuple:
    config = parse_model_config(f"models/{name}/config.pbtxt", text)
    found = complete_backend_fields(config, name, shipped, tracked)
    return (found.platform, found.backend, found.default_model_filename, found.decided_by)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('platform: "onnxruntime_onnx"', ("onnxruntime_onnx", "onnxruntime", "model.onnx")),
        ('backend: "onnxruntime"', ("onnxruntime_onnx", "onnxruntime", "model.onnx")),
        ('default_model_filename: "model.onnx"', ("onnxruntime_onnx", "onnxruntime", "model.onnx")),
        ('backend: "python"', ("", "python", "model.py")),
        ('default_model_filename: "model.py"', ("", "python", "model.py")),
        ('platform: "tensorrt_plan"', ("tensorrt_plan", "tensorrt", "model.plan")),
        (
            'platform: "tensorflow_savedmodel"',
            ("tensorflow_savedmodel", "tensorflow", "model.savedmodel"),
        ),
        (
            'default_model_filename: "model.graphdef"',
            ("tensorflow_graphdef", "tensorflow", "model.graphdef"),
        ),
        ('backend: "pytorch"', ("pytorch_libtorch", "pytorch", "model.pt")),
        # With the platform set, Triton leaves default_model_filename to the backend.
        ('platform: "pytorch_libtorch"', ("pytorch_libtorch", "pytorch", "")),
        ('platform: "torch_aoti"', ("torch_aoti", "pytorch", "model.pt2")),
        ('backend: "openvino"', ("", "openvino", "model.xml")),
        ('backend: "identity"', ("", "identity", "")),
        ('platform: "ensemble"', ("ensemble", "", "")),
    ],
)
def test_the_config_decides(text: str, expected: tuple[str, str, str]) -> None:
    # A model file in the version folder changes nothing once the config decides.
    assert fields(text, ("1/model.py",)) == (*expected, "config.pbtxt")


@pytest.mark.parametrize(
    "shipped, expected",
    [
        (("1/model.onnx",), ("onnxruntime_onnx", "onnxruntime", "model.onnx", "1/model.onnx")),
        (
            ("1/model.onnx/model.onnx", "1/model.onnx/w.bin"),
            ("onnxruntime_onnx", "onnxruntime", "model.onnx", "1/model.onnx"),
        ),
        (("1/model.py",), ("", "python", "model.py", "1/model.py")),
        (("1/model.plan",), ("tensorrt_plan", "tensorrt", "model.plan", "1/model.plan")),
        # Found by its file, the platform is set, so default_model_filename stays the backend's.
        (("1/model.pt",), ("pytorch_libtorch", "pytorch", "", "1/model.pt")),
        (("1/model.pt2",), ("torch_aoti", "pytorch", "model.pt2", "1/model.pt2")),
        (("1/model.xml", "1/model.bin"), ("", "openvino", "model.xml", "1/model.xml")),
        (
            ("1/model.savedmodel/saved_model.pb",),
            ("tensorflow_savedmodel", "tensorflow", "model.savedmodel", "1/model.savedmodel"),
        ),
        (
            ("1/model.graphdef",),
            ("tensorflow_graphdef", "tensorflow", "model.graphdef", "1/model.graphdef"),
        ),
        # Triton's order: TensorRT before ONNX before python.
        (
            ("1/model.py", "1/model.onnx", "1/model.plan"),
            ("tensorrt_plan", "tensorrt", "model.plan", "1/model.plan"),
        ),
        (
            ("1/model.py", "1/model.onnx"),
            ("onnxruntime_onnx", "onnxruntime", "model.onnx", "1/model.onnx"),
        ),
        # Only the first folder by name is read: `10/` sorts before `2/`.
        (
            ("10/model.onnx", "2/model.py"),
            ("onnxruntime_onnx", "onnxruntime", "model.onnx", "10/model.onnx"),
        ),
    ],
)
def test_the_first_version_folder_decides(
    shipped: tuple[str, ...], expected: tuple[str, str, str, str]
) -> None:
    platform, backend, filename, file = expected
    assert fields("", shipped) == (platform, backend, filename, f"the file {file}")


def test_files_of_the_wrong_kind_decide_nothing() -> None:
    # `model.plan` must be a file and `model.savedmodel` a folder; a folder `model.pt` stops
    # the PyTorch search before `model.pt2`.
    for shipped in (("1/model.plan/x",), ("1/model.savedmodel",), ("1/model.pt/x", "1/model.pt2")):
        with pytest.raises(NoBackendError):
            fields("", shipped)


def test_a_dvc_tracked_path_may_be_a_folder() -> None:
    assert fields("", ("1/model.savedmodel",), tracked=("1/model.savedmodel",))[:2] == (
        "tensorflow_savedmodel",
        "tensorflow",
    )


def test_the_model_name_names_a_custom_backend() -> None:
    assert fields("", (), name="no_backend.identity") == (
        "",
        "identity",
        "model.identity",
        "the model name",
    )
    # A config that names its backend in any way is not read for a suffix.
    assert fields('default_model_filename: "m.bin"', (), name="x.identity")[1] == ""


def test_first_version_folder() -> None:
    folder, entries = first_version_folder(
        ("labels.txt", "2/model.py", "1/model.onnx", "1/tok/vocab.txt", "1/w"), tracked=("1/w",)
    )
    assert folder == "1"
    assert entries == {"model.onnx": {"file"}, "tok": {"folder"}, "w": {"file", "folder"}}
    assert first_version_folder(("config.pbtxt",)) == (None, {})


def test_triton_qa_no_version_is_refused() -> None:
    config = parse_model_config("models/no_version/config.pbtxt", NO_VERSION)
    assert [str(e) for e in check_backend(config, "no_version", ())] == [
        'models/no_version/config.pbtxt:1: Triton refuses this model: "Could not determine '
        "backend for model 'no_version' with no backend in model configuration. Expected model "
        "name of the form 'model.<backend_name>'.\" config.pbtxt sets no `platform`, `backend` "
        "or `default_model_filename`, `models/no_version/` has no version folder to take it "
        "from, and the model name has no `.<backend>` suffix. Name the backend, e.g. "
        '`backend: "python"` or `platform: "onnxruntime_onnx"`, or put the model file in the '
        "version folder (`1/model.py`, `1/model.onnx`, ...)."
    ]
    # With a `1/` that holds no model file, Triton refuses it the same way.
    (message,) = [str(e) for e in check_backend(config, "no_version", ("1/notes.md",))]
    assert (
        "`models/no_version/1/`, the first folder Triton looks in, holds none of the model files "
        "it recognizes (model.savedmodel/, model.graphdef, model.plan, model.onnx, model.xml, "
        "model.pt, model.pt2, model.py), and the model name has no `.<backend>` suffix."
    ) in message


def test_triton_qa_no_delimiter_is_refused() -> None:
    # qa/L0_model_config/autofill_noplatform/custom/no_delimiter: an empty config.pbtxt and
    # an empty `1/` (made by the qa's test.sh).
    config = parse_model_config("models/no_delimiter/config.pbtxt", "")
    (message,) = [str(e) for e in check_backend(config, "no_delimiter", ())]
    assert message.startswith(
        'models/no_delimiter/config.pbtxt:1: Triton refuses this model: "Could not determine '
        "backend for model 'no_delimiter' with no backend in model configuration."
    )


# qa/L0_model_config/autofill_noplatform_success/custom/no_backend.identity/config.pbtxt
NO_BACKEND_IDENTITY = """\
max_batch_size: 64
input [
 {
    name: "INPUT0"
    data_type: TYPE_INT32
    dims: [ 1000 ]
  }
]
output [
  {
    name: "OUTPUT0"
    data_type: TYPE_INT32
    dims: [ 1000 ]
  }
]
"""


@pytest.mark.parametrize(
    "name, text",
    [
        # qa/L0_model_config/autofill_noplatform_success/custom/empty_config.identity: an empty
        # config.pbtxt (and an empty `1/`).
        ("empty_config.identity", ""),
        ("no_backend.identity", NO_BACKEND_IDENTITY),
    ],
)
def test_triton_qa_custom_backend_from_the_model_name(name: str, text: str) -> None:
    config = parse_model_config(f"models/{name}/config.pbtxt", text)
    assert check_backend(config, name, ()) == []
    assert complete_backend_fields(config, name, ()).backend == "identity"
