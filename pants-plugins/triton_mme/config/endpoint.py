"""Rules of the endpoint for the models it invokes (each tarball's TargetModel).

SageMaker sends every InvokeEndpoint call to Triton's SageMaker front end, which answers one
HTTP response per request and refuses a decoupled model before running it: "HTTP end point
doesn't support models with decoupled transaction policy" (`SageMakerMMEHandleInfer` in
triton-inference-server/server `src/sagemaker_server.cc`). An ensemble is decoupled whenever a
step it runs is (Triton derives it and ignores what the ensemble's own config says), so a
pipeline with a decoupled step cannot be invoked either.

A model never runs on the endpoint under its source name: SageMaker registers a tarball's model
under its TargetModel, and an ensemble's members ship renamed `<artifact>.<member>`. So a custom
backend that Triton would take from the model name's `.<backend>` suffix cannot be relied on: a
deployable model loses the suffix, and a member keeps it only at the end of its name, while
Triton reads the backend from everything after the name's first `.` (`AutoCompleteBackendFields`
in core's `src/model_config_utils.cc`): `pipe_1.0.0.x.identity` asks for backend
`0.0.x.identity`.
"""

from __future__ import annotations

from typing import Mapping

from triton_mme.config.backend import BackendFields
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.parse import ModelConfigFile

MEMBER_ONLY_FIELD = "ensemble_member_only"


def decoupled_members(
    ensemble: ModelConfigFile, called: Mapping[str, ModelConfigFile]
) -> list[str]:
    """The decoupled models an ensemble runs, through nested ensembles too.

    `called` holds the config of every model the ensemble calls, directly or not.
    """
    found: set[str] = set()
    seen: set[str] = set()
    pending = list(ensemble.step_model_names())
    while pending:
        name = pending.pop()
        member = called.get(name)
        if name in seen or member is None:
            continue
        seen.add(name)
        if member.is_ensemble:
            pending.extend(member.step_model_names())
        elif member.decoupled:
            found.add(name)
    return sorted(found)


def check_invocable(
    config: ModelConfigFile, model_name: str, called: Mapping[str, ModelConfigFile]
) -> list[ModelConfigError]:
    """A model packaged on its own must answer the endpoint's request/response invocations."""
    if not config.is_ensemble:
        if not config.decoupled:
            return []
        return [
            ModelConfigError(
                config.path,
                f"`{model_name}` is decoupled, and SageMaker endpoints cannot invoke decoupled "
                "models: Triton's SageMaker front end answers one HTTP response per request and "
                "refuses them. Remove `decoupled: true` if the model sends one response per "
                "request; if only other models call it (BLS), mark its target "
                f"`{MEMBER_ONLY_FIELD}=True` so it is not packaged on its own.",
                line=config.line("model_transaction_policy", "decoupled"),
            )
        ]
    decoupled = decoupled_members(config, called)
    if not decoupled:
        return []
    names = ", ".join(f"`{name}`" for name in decoupled)
    return [
        ModelConfigError(
            config.path,
            f"ensemble `{model_name}` runs decoupled model(s) {names}, which makes the ensemble "
            "decoupled, and SageMaker endpoints cannot invoke decoupled models (Triton's "
            "SageMaker front end answers one HTTP response per request and refuses them). Make "
            "those models send one response per request and drop their `decoupled: true`.",
            line=config.line("ensemble_scheduling"),
        )
    ]


def check_backend_from_name(
    config: ModelConfigFile, fields: BackendFields | None
) -> list[ModelConfigError]:
    """A backend taken from the model name does not survive packaging (see the docstring)."""
    if fields is None or fields.decided_by != "the model name":
        return []
    return [
        ModelConfigError(
            config.path,
            f"Triton takes this model's backend, `{fields.backend}`, from the model name's "
            "suffix (config.pbtxt names none), but on the endpoint the model never runs under "
            "that name: SageMaker registers a tarball's model under its TargetModel "
            "(`<model_name>_<version>.tar.gz`), and an ensemble's members ship as "
            "`<artifact>.<member>`, from which Triton would read another backend. Set "
            f'`backend: "{fields.backend}"` in config.pbtxt.',
            line=config.line("name") or 1,
        )
    ]
