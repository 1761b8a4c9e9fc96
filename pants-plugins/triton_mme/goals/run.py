"""`./pants run` on a model, ensemble or `triton_test`: Triton in the foreground, for your requests.

The server loads the model (and, for a `triton_test`, runs its cases first), prints its HTTP and
gRPC addresses and a ready-to-paste curl request, and serves until Ctrl-C, which removes the
container. `./pants test --debug` does the same for a batch of `triton_test` targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.rules import Get, collect_rules, rule
from triton_mme.target_types import TritonConfigSourceField, TritonVersionSourcesField
from triton_mme.util_rules.triton_server import ServedTarget, TritonServerProcessRequest
from triton_mme.target_types import TritonTestModelField, TritonTestSourcesField
from triton_mme.goals.test import ServedTestRequest


@dataclass(frozen=True)
class TritonModelRunFieldSet(RunFieldSet):
    required_fields = (TritonConfigSourceField, TritonVersionSourcesField)
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED

    config: TritonConfigSourceField


@dataclass(frozen=True)
class TritonTestRunFieldSet(RunFieldSet):
    required_fields = (TritonTestSourcesField, TritonTestModelField)
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED

    sources: TritonTestSourcesField
    model: TritonTestModelField


@rule(desc="Serve a Triton model in the foreground")
async def run_triton_model(field_set: TritonModelRunFieldSet) -> RunRequest:
    served = ServedTarget(address=field_set.address, model_address=field_set.address)
    return await Get(
        RunRequest,
        TritonServerProcessRequest(
            (served,), mode="serve", description=f"Serve {field_set.address}"
        ),
    )


@rule(desc="Run a triton_test and keep serving its model")
async def run_triton_test(field_set: TritonTestRunFieldSet) -> RunRequest:
    served = await Get(
        ServedTarget, ServedTestRequest(field_set.address, field_set.model, field_set.sources)
    )
    return await Get(
        RunRequest,
        TritonServerProcessRequest((served,), mode="debug", description=f"Run {field_set.address}"),
    )


def rules() -> Iterable:
    return (
        *collect_rules(),
        *TritonModelRunFieldSet.rules(),
        *TritonTestRunFieldSet.rules(),
    )
