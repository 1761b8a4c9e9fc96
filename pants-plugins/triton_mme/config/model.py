"""The model as a whole: platform and backend, max_batch_size, instance groups, `runtime` and
`EXECUTION_ENV_PATH` (Triton core's `ValidateModelConfig`, `ValidateInstanceGroup`, and its
backend library lookup).
"""

from __future__ import annotations

import posixpath
from typing import Iterator

from triton_mme.config.errors import ModelConfigError, did_you_mean
from triton_mme.config.parse import ModelConfigFile
from triton_mme.scripts.config_platform import ENSEMBLE_PLATFORM

# The platforms Triton knows, and the backend each one means.
PLATFORM_BACKENDS = {
    "tensorflow_graphdef": "tensorflow",
    "tensorflow_savedmodel": "tensorflow",
    "tensorrt_plan": "tensorrt",
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    "torch_aoti": "pytorch",
}
# `default_model_filename`s from which Triton infers the backend when none is set.
FILENAME_BACKENDS = {
    "model.plan": "tensorrt",
    "model.onnx": "onnxruntime",
    "model.xml": "openvino",
    "model.pt": "pytorch",
    "model.pt2": "pytorch",
    "model.py": "python",
}
TENSORRT_PLATFORM = "tensorrt_plan"

# The conda env archive a `triton_python_env` builds and each python model that uses it ships.
ENV_ARCHIVE_NAME = "python_env.tar.gz"
EXECUTION_ENV_PATH = "EXECUTION_ENV_PATH"
MODEL_DIRECTORY_VARIABLE = "$$TRITON_MODEL_DIRECTORY/"
EXECUTION_ENV_LINE = (
    f'parameters: {{ key: "{EXECUTION_ENV_PATH}", value: {{ string_value: '
    f'"{MODEL_DIRECTORY_VARIABLE}{ENV_ARCHIVE_NAME}" }} }}'
)


def check_model(config: ModelConfigFile) -> list[ModelConfigError]:
    errors = [
        ModelConfigError(config.path, problem, line=config.line(field))
        for field, problem in (*_platform_problems(config), *_runtime_problems(config))
    ]
    if config.max_batch_size < 0:
        errors.append(
            ModelConfigError(
                config.path,
                f"max_batch_size is {config.max_batch_size}: it must be 0 (no batching) or "
                "positive.",
                line=config.line("max_batch_size"),
            )
        )
    errors.extend(check_instance_groups(config))
    errors.extend(check_execution_env_path(config))
    return errors


def _platform_problems(config: ModelConfigFile) -> Iterator[tuple[str, str]]:
    platform, backend = config.platform, config.backend
    if platform == ENSEMBLE_PLATFORM:
        if backend:
            yield "backend", (
                f'an ensemble has no backend, but this one sets `backend: "{backend}"`: '
                "remove that line."
            )
        return
    if config.message.HasField("ensemble_scheduling"):
        yield "ensemble_scheduling", (
            f'`ensemble_scheduling` is only allowed with `platform: "{ENSEMBLE_PLATFORM}"`: '
            "add that platform if this is an ensemble, otherwise remove `ensemble_scheduling`."
        )
    if not platform:
        return
    inferred = backend or FILENAME_BACKENDS.get(config.default_model_filename, "")
    expected = PLATFORM_BACKENDS.get(platform)
    if expected is None and (not inferred or inferred in PLATFORM_BACKENDS.values()):
        known = [*PLATFORM_BACKENDS, ENSEMBLE_PLATFORM]
        yield "platform", (
            f'`platform: "{platform}"` is not a platform Triton knows.'
            f"{did_you_mean(platform, known)} Known platforms: {', '.join(known)} (python and "
            "OpenVINO models set `backend` instead)."
        )
    elif expected is not None and backend and backend != expected:
        yield "backend", (
            f'`platform: "{platform}"` runs on the {expected} backend, but the config sets '
            f'`backend: "{backend}"`: set `backend: "{expected}"` or remove one of the two lines.'
        )


def _runtime_problems(config: ModelConfigFile) -> Iterator[tuple[str, str]]:
    runtime = config.runtime
    if (
        runtime
        and posixpath.normpath(posixpath.join("/backend", runtime.lstrip("/"))).split("/")[1]
        != "backend"
    ):
        yield "runtime", (
            f'`runtime: "{runtime}"` climbs out of the backend directory, so Triton refuses '
            "it: name the library file alone (e.g. `libtriton_onnxruntime.so` or `model.py`)."
        )


def check_instance_groups(config: ModelConfigFile) -> list[ModelConfigError]:
    errors: list[ModelConfigError] = []
    for index, group in enumerate(config.message.instance_group):
        kind = type(group).Kind.Name(group.kind)
        label = f"instance_group {index + 1}" + (f" (`{group.name}`)" if group.name else "")
        problems = []
        if group.gpus and kind in ("KIND_CPU", "KIND_MODEL"):
            problems.append(
                f"has kind {kind} but lists `gpus`: remove `gpus`, or use kind KIND_GPU."
            )
        problems.extend(f"lists GPU {gpu}: GPU ids are 0 or more." for gpu in group.gpus if gpu < 0)
        if group.profile and config.platform != TENSORRT_PLATFORM:
            problems.append("sets `profile`, which only TensorRT models support: remove it.")
        problems.extend(
            f'has profile "{profile}": a profile is a TensorRT optimization profile index, a '
            'number 0 or more, e.g. "0".'
            for profile in group.profile
            if not profile.strip().isdigit()
        )
        errors.extend(
            ModelConfigError(
                config.path, f"{label} {problem}", line=config.line(f"instance_group[{index}]")
            )
            for problem in problems
        )
    return errors


def execution_env_archive(config: ModelConfigFile) -> str | None:
    """The env archive `EXECUTION_ENV_PATH` names, relative to the model directory; None when
    the parameter is absent or invalid (`check_execution_env_path` says why)."""
    value = config.parameters.get(EXECUTION_ENV_PATH)
    if value is None or _execution_env_problem(value):
        return None
    return posixpath.normpath(value[len(MODEL_DIRECTORY_VARIABLE) :])


def check_execution_env_path(config: ModelConfigFile) -> list[ModelConfigError]:
    value = config.parameters.get(EXECUTION_ENV_PATH)
    problem = _execution_env_problem(value) if value is not None else None
    if problem is None:
        return []
    line = config.map_entry_line("parameters", EXECUTION_ENV_PATH)
    return [ModelConfigError(config.path, problem, line=line)]


def _execution_env_problem(value: str) -> str | None:
    """`EXECUTION_ENV_PATH` must name a file inside the model directory: each model ships its own
    env archive, and SageMaker extracts every tarball into a directory of its own."""
    fix = f"the env archive ships inside the model directory, so write it as {EXECUTION_ENV_LINE}"
    if not value.startswith(MODEL_DIRECTORY_VARIABLE):
        return (
            f'{EXECUTION_ENV_PATH} "{value}" does not start with `{MODEL_DIRECTORY_VARIABLE}`: '
            f"{fix}"
        )
    relative = value[len(MODEL_DIRECTORY_VARIABLE) :]
    normalized = posixpath.normpath(relative) if relative else ""
    if not relative or normalized == ".." or normalized.startswith(("../", "/")):
        return f'{EXECUTION_ENV_PATH} "{value}" points outside the model directory: ' + fix
    return None
