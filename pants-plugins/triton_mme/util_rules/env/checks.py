"""Checks that stop a broken env before any Triton starts (pure functions; no rules).

Triton loads an env archive only when the model's config.pbtxt points `EXECUTION_ENV_PATH` at it,
and only runs it when its Python is the python backend stub's. Both mistakes otherwise surface as
a model that fails to load on the endpoint.
"""

from __future__ import annotations

from typing import Mapping

from pants.engine.addresses import Address
from triton_mme.target_types import lock_command
from triton_mme.config.model import (
    EXECUTION_ENV_LINE,
    EXECUTION_ENV_PATH,
    check_execution_env_path,
    execution_env_archive,
)
from triton_mme.config.parse import ModelConfigFile


class EnvCheckError(ValueError):
    pass


def execution_env_path(config: ModelConfigFile) -> str | None:
    """The archive path `EXECUTION_ENV_PATH` names, relative to the model directory, if any."""
    errors = check_execution_env_path(config)
    if errors:
        raise EnvCheckError(str(errors[0]))
    return execution_env_archive(config)


def check_env_declared(
    model: Address, config_path: str, archive_path: str | None, env: Address | None
) -> bool:
    """A python model has both an env target and `EXECUTION_ENV_PATH`, or neither.

    Returns whether the model ships an env (both are set); raises when only one is.
    """
    if archive_path and env is None:
        raise EnvCheckError(
            f"{config_path} sets {EXECUTION_ENV_PATH}, but {model} has no env: add a "
            "`triton_python_env` target in the model's directory (or below it), or name one with "
            '`python_env="path/to:env"` in the model\'s BUILD file. See docs/python-envs.md.'
        )
    if env is not None and not archive_path:
        raise EnvCheckError(
            f"{model} uses the env {env}, but {config_path} does not tell Triton to load it. Add "
            f"this line to {config_path}:\n\n    {EXECUTION_ENV_LINE}\n"
        )
    return env is not None


def stub_python_of(image: str, image_python_versions: Mapping[str, str]) -> str | None:
    """The stub version for `image`, keyed by the full reference or by the repository alone."""
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return image_python_versions.get(image) or image_python_versions.get(repository)


def check_stub_python(
    env: Address, env_python: str, image: str, image_python_versions: Mapping[str, str]
) -> str | None:
    """The env's Python must be the one of the image's python backend stub.

    Returns the stub's Python version the env matched, or None when `image_python_versions` does
    not know the image (nothing to check against); raises when they differ.
    """
    stub = stub_python_of(image, image_python_versions)
    if stub is None or stub == env_python:
        return stub
    raise EnvCheckError(
        f"{env} is a Python {env_python} env, but the python backend stub of the Triton image "
        f"{image} is Python {stub} ([triton].image_python_versions), so Triton could not load "
        f'it. Set python="{stub}" on {env} and run `{lock_command(env)}`, or '
        "serve the model with an image whose stub is "
        f"Python {env_python} ([triton].image)."
    )
