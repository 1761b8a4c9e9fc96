"""The config Triton reports for a loaded model (`GET /v2/models/<name>/config`), checked with the
same ensemble rules as config.pbtxt.

Where model code decides the config (a python model's `auto_complete_config`), only Triton can
say what it serves: lint leaves those fields open (`config/completion.py`), and `./pants test`
asks the server once the model is loaded. `check_steps_with_reported` then checks an ensemble's
steps against its members as Triton completed them, with the messages lint gives
(`config.pbtxt:line: step ...`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from google.protobuf import json_format, text_format
from pants.util.frozendict import FrozenDict
from triton_mme.config.ensemble import EnsembleMembers, check_ensemble_steps
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.parse import Completion, ModelConfigFile, parse_model_config
from triton_mme.proto import model_config_pb2

REPORTED_BY = "reported by Triton after loading the model"


def reported_config(path: str, data: Mapping[str, Any]) -> ModelConfigFile:
    """Triton's JSON config of a loaded model as a completed config (nothing left open).

    `path` names the model's config.pbtxt in messages; lines refer to Triton's text, so checks
    that point at a line use the ensemble's.
    """
    empty = model_config_pb2.ModelConfig()  # type: ignore[attr-defined]
    message = json_format.ParseDict(dict(data), empty, ignore_unknown_fields=True)
    parsed = parse_model_config(path, text_format.MessageToString(message))
    filled = {name: REPORTED_BY for name in ("input", "output", "max_batch_size")}
    return dataclasses.replace(
        parsed,
        max_batch_size=message.max_batch_size,
        completion=Completion(filled=FrozenDict(filled)),
    )


def check_steps_with_reported(
    ensemble: ModelConfigFile, members: EnsembleMembers, reported: Mapping[str, ModelConfigFile]
) -> list[ModelConfigError]:
    """The ensemble's step checks, with the members in `reported` (by model name) taken as
    Triton served them instead of as lint completed them."""
    if not reported:
        return []
    replaced = EnsembleMembers(
        configs={**members.configs, **reported},
        versions=members.versions,
        known_model_names=members.known_model_names,
        version_configs={
            name: (
                {version: reported[name] for version in configs} if name in reported else configs
            )
            for name, configs in members.version_configs.items()
        },
    )
    return check_ensemble_steps(ensemble, replaced)
