"""Reading config.pbtxt with Triton's own schema (pure functions; no rules).

Triton parses config.pbtxt as protobuf text format into `inference.ModelConfig`; we use the same
generated schema, strictly, so a config that parses here parses in Triton.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import text_format
from triton_mme.proto import model_config_pb2

ENSEMBLE_PLATFORM = "ensemble"


class ModelConfigError(ValueError):
    """A config.pbtxt problem, phrased for the person who wrote the file."""

    def __init__(self, path: str, message: str, *, line: int | None = None) -> None:
        location = f"{path}:{line}" if line else path
        super().__init__(f"{location}: {message}")
        self.path = path
        self.line = line


def parse_model_config(path: str, text: str) -> Any:
    """Parses config.pbtxt text into a `ModelConfig` message; unknown fields are errors."""
    config = model_config_pb2.ModelConfig()  # type: ignore[attr-defined]
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        line = e.GetLine()
        column = e.GetColumn()
        # The parser's message starts with "line:column : "; we print the location ourselves.
        reason = str(e).split(" : ", 1)[-1]
        raise ModelConfigError(
            path,
            f"{reason} (column {column}). Field names and values must follow Triton's "
            "model_config.proto: "
            "https://github.com/triton-inference-server/common/blob/main/protobuf/model_config.proto",
            line=line,
        ) from e
    return config


def is_ensemble(config: Any) -> bool:
    return bool(config.platform == ENSEMBLE_PLATFORM)


def ensemble_step_model_names(config: Any) -> tuple[str, ...]:
    """The model names an ensemble's steps call, in order, each once."""
    names = (step.model_name for step in config.ensemble_scheduling.step)
    return tuple(dict.fromkeys(names))
