from __future__ import annotations

import pytest
from triton_mme.config.files import (
    ModelDirectoryListing,
    check_label_files,
    check_model_files,
    check_version_folders,
    loaded_versions,
)
from triton_mme.config.parse import parse_model_config

PATH = "models/m/config.pbtxt"


def model_file_errors(
    text: str, shipped: tuple[str, ...], folders: tuple[str, ...] = ("1",), on_disk=()
) -> list[str]:
    config = parse_model_config(PATH, text + "\n")
    listing = ModelDirectoryListing(
        folders=folders, files=("config.pbtxt",), shipped=shipped, on_disk=tuple(on_disk)
    )
    return [str(e) for e in check_model_files(config, listing)]


@pytest.mark.parametrize(
    "config, expected",
    [
        ('backend: "python"', ("1/model.py",)),
        ('backend: "python"\ndefault_model_filename: "main.py"', ("1/main.py",)),
        ('platform: "onnxruntime_onnx"', ("1/model.onnx",)),
        ('backend: "onnxruntime"', ("1/model.onnx",)),
        ('platform: "pytorch_libtorch"', ("1/model.pt",)),
        ('platform: "tensorrt_plan"', ("1/model.plan",)),
        ('backend: "openvino"', ("1/model.xml", "1/model.bin")),
        ('platform: "tensorflow_graphdef"', ("1/model.graphdef",)),
        ('platform: "tensorflow_savedmodel"', ("1/model.savedmodel/saved_model.pb",)),
    ],
)
def test_each_backend_needs_its_model_file(config: str, expected: tuple[str, ...]) -> None:
    assert model_file_errors(config, expected) == []
    missing = model_file_errors(config, ("1/other.bin",))
    assert len(missing) == len(expected)
    assert "is missing: add it (or its DVC pointer" in missing[0]
    assert missing[0].startswith(f"{PATH}: `models/m/1/")


def test_file_on_disk_but_not_owned_by_the_target() -> None:
    (message,) = model_file_errors('backend: "python"', (), on_disk=("1/model.py",))
    assert message == (
        f"{PATH}: `models/m/1/model.py` exists but the model's BUILD target does not own it: add "
        "it to the target's `sources` (or remove what excludes it). Triton loads it from "
        'version 1 of this model (`backend: "python"`).'
    )


def test_only_loaded_versions_need_the_file() -> None:
    assert model_file_errors('backend: "python"', ("2/model.py",), folders=("1", "2")) == []
    policy = 'backend: "python"\nversion_policy { all {} }'
    assert len(model_file_errors(policy, ("2/model.py",), folders=("1", "2"))) == 1


@pytest.mark.parametrize(
    "config",
    [
        'backend: "identity"',  # A custom backend: its files are its own business.
        'platform: "tensorrt_plan"\ncc_model_filenames { key: "8.6" value: "a.plan" }',
        'platform: "ensemble"',
    ],
)
def test_undecidable_model_files_are_not_refused(config: str) -> None:
    assert model_file_errors(config, ()) == []


def test_version_policy_that_selects_nothing() -> None:
    config = parse_model_config(PATH, 'backend: "python"\nversion_policy { latest {} }\n')
    (message,) = [str(e) for e in check_version_folders(config, ("1",))]
    assert message.startswith(f"{PATH}:2: `version_policy` selects none of the version folders")
    accepted = parse_model_config(
        PATH, 'backend: "python"\nversion_policy { latest { num_versions: 1 } }\n'
    )
    assert check_version_folders(accepted, ("1",)) == []


def test_loaded_versions() -> None:
    def versions(policy: str) -> tuple[int, ...]:
        config = parse_model_config(PATH, f"version_policy {{ {policy} }}\n" if policy else "")
        return loaded_versions(config, ("1", "2", "3", "01", "tests"))

    assert versions("") == (3,)
    assert versions("all {}") == (1, 2, 3)
    assert versions("latest { num_versions: 2 }") == (2, 3)
    assert versions("specific { versions: [1, 5] }") == (1,)


def test_label_file_outside_the_model_directory() -> None:
    config = parse_model_config(
        PATH,
        'output [{ name: "Y", data_type: TYPE_FP32, dims: [1], label_filename: "../l.txt" }]\n',
    )
    (message,) = [str(e) for e in check_label_files(config, ("l.txt",))]
    assert "names the label file `../l.txt`, which is outside the model directory" in message
