from __future__ import annotations

import pytest
from pants.engine.addresses import Address
from triton_mme.util_rules.env.checks import (
    EXECUTION_ENV_LINE,
    EnvCheckError,
    check_env_declared,
    check_stub_python,
    execution_env_path,
    stub_python_of,
)
from triton_mme.config.parse import ModelConfigFile, parse_model_config

MODEL = Address("models/detector")
ENV = Address("models/detector/python_env")
CONFIG = "models/detector/config.pbtxt"


def config_with_env(value: str | None) -> ModelConfigFile:
    text = 'name: "detector"\nbackend: "python"\n'
    if value is not None:
        text += (
            f'parameters: {{ key: "EXECUTION_ENV_PATH", value: {{ string_value: "{value}" }} }}\n'
        )
    return parse_model_config(CONFIG, text)


def test_execution_env_path_is_relative_to_the_model_directory() -> None:
    config = config_with_env("$$TRITON_MODEL_DIRECTORY/python_env.tar.gz")
    assert execution_env_path(config) == "python_env.tar.gz"
    assert execution_env_path(config_with_env(None)) is None


@pytest.mark.parametrize(
    "value", ["/opt/envs/python_env.tar.gz", "$$TRITON_MODEL_DIRECTORY/../env.tar.gz"]
)
def test_execution_env_path_outside_the_model_directory(value: str) -> None:
    with pytest.raises(EnvCheckError, match="ships inside the model directory"):
        execution_env_path(config_with_env(value))


def test_env_path_without_env_target() -> None:
    with pytest.raises(EnvCheckError) as e:
        check_env_declared(MODEL, CONFIG, "python_env.tar.gz", None)
    assert "sets EXECUTION_ENV_PATH, but models/detector:detector has no env" in str(e.value)
    assert "triton_python_env" in str(e.value)


def test_env_target_without_env_path_names_the_line_to_add() -> None:
    with pytest.raises(EnvCheckError) as e:
        check_env_declared(MODEL, CONFIG, None, ENV)
    assert f"Add this line to {CONFIG}" in str(e.value)
    assert EXECUTION_ENV_LINE in str(e.value)
    assert (
        'parameters: { key: "EXECUTION_ENV_PATH", value: { string_value: '
        '"$$TRITON_MODEL_DIRECTORY/python_env.tar.gz" } }' == EXECUTION_ENV_LINE
    )


def test_both_or_neither_is_fine() -> None:
    assert check_env_declared(MODEL, CONFIG, "python_env.tar.gz", ENV) is True
    assert check_env_declared(MODEL, CONFIG, None, None) is False


def test_stub_version_by_reference_or_repository() -> None:
    versions = {"nvcr.io/nvidia/tritonserver:25.01-py3": "3.12", "triton-mme-standin": "3.11"}
    assert stub_python_of("nvcr.io/nvidia/tritonserver:25.01-py3", versions) == "3.12"
    assert stub_python_of("triton-mme-standin:0123abcd", versions) == "3.11"
    assert stub_python_of("localhost:5000/other", versions) is None


def test_stub_version_mismatch_is_an_error() -> None:
    versions = {"nvcr.io/nvidia/tritonserver:25.01-py3": "3.12"}
    with pytest.raises(EnvCheckError) as e:
        check_stub_python(ENV, "3.11", "nvcr.io/nvidia/tritonserver:25.01-py3", versions)
    message = str(e.value)
    assert "Python 3.11 env" in message and "stub" in message and "Python 3.12" in message
    assert 'Set python="3.12"' in message
    matched = check_stub_python(ENV, "3.12", "nvcr.io/nvidia/tritonserver:25.01-py3", versions)
    assert matched == "3.12"
    # An image `image_python_versions` does not know is not checked: nothing to compare with.
    assert check_stub_python(ENV, "3.11", "unknown-image:1", versions) is None
