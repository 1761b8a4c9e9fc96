"""Every check of one model directory, in one call (pure functions; no rules)."""

from __future__ import annotations

from typing import Sequence

from triton_mme.config.backend import check_backend
from triton_mme.config.batching import check_batching
from triton_mme.config.ensemble import (
    ENSEMBLE_TARGET_ALIAS,
    MODEL_TARGET_ALIAS,
    check_ensemble_fields,
)
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.files import (
    ModelDirectoryListing,
    check_label_files,
    check_model_files,
    check_version_folders,
)
from triton_mme.config.model import check_model
from triton_mme.config.parse import ModelConfigFile
from triton_mme.config.tensors import check_batch_tensors, check_tensors
from triton_mme.scripts.config_platform import ENSEMBLE_PLATFORM


def check_model_directory(
    config: ModelConfigFile,
    *,
    model_name: str,
    target_alias: str,
    listing: ModelDirectoryListing,
    served: Sequence[ModelConfigFile] = (),
) -> list[ModelConfigError]:
    """Checks one model directory on its own: every rule that its config and files decide.

    `served` are the configs Triton serves, one per loaded version (`config/completion.py`):
    Triton's core checks the inputs and outputs on those, after the backend completed them, and
    the rest on config.pbtxt before. Without them, the file is checked as written.

    An ensemble's steps need the step models' configs too: see `ensemble.check_ensemble_steps`.
    """
    errors = check_target(config, model_name=model_name, target_alias=target_alias)
    errors.extend(check_backend(config, model_name, listing.shipped, listing.tracked))
    errors.extend(check_version_folders(config, listing.folders))
    errors.extend(check_label_files(config, listing.files))
    errors.extend(check_model(config))
    seen: set[str] = set()
    for each in served or (config,):
        for error in (*check_tensors(each), *check_batch_tensors(each)):
            if str(error) not in seen:  # Versions completed alike fail alike.
                seen.add(str(error))
                errors.append(error)
    errors.extend(check_batching(config))
    if config.is_ensemble:
        errors.extend(check_ensemble_fields(config))
    else:
        errors.extend(check_model_files(config, listing))
    return errors


def check_target(
    config: ModelConfigFile, *, model_name: str, target_alias: str
) -> list[ModelConfigError]:
    """The config's `name` and platform agree with the target that owns it."""
    errors = []
    if config.name and config.name != model_name:
        errors.append(
            ModelConfigError(
                config.path,
                f'`name: "{config.name}"` differs from the model name `{model_name}` (the '
                "directory name, or the target's `model_name`). Triton refuses such a model: "
                f'set `name: "{model_name}"` or remove the `name` line.',
                line=config.line("name"),
            )
        )
    if target_alias == MODEL_TARGET_ALIAS and config.is_ensemble:
        errors.append(
            ModelConfigError(
                config.path,
                f'this config has `platform: "{ENSEMBLE_PLATFORM}"` but its BUILD file declares '
                f"`{MODEL_TARGET_ALIAS}()`: use `{ENSEMBLE_TARGET_ALIAS}()` for an ensemble.",
                line=config.line("platform"),
            )
        )
    if target_alias == ENSEMBLE_TARGET_ALIAS and not config.is_ensemble:
        errors.append(
            ModelConfigError(
                config.path,
                f"the BUILD file declares `{ENSEMBLE_TARGET_ALIAS}()` but this config does not "
                f'have `platform: "{ENSEMBLE_PLATFORM}"`: add that line if this is an ensemble, '
                f"otherwise use `{MODEL_TARGET_ALIAS}()`.",
            )
        )
    return errors
