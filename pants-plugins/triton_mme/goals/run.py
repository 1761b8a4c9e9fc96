"""`./pants run` on a model, ensemble or `triton_test`: Triton in the foreground, for your requests.

The server loads the model (and, for a `triton_test`, runs its cases first), prints its HTTP and
gRPC addresses and a ready-to-paste curl request, and serves until Ctrl-C, which removes the
container. `./pants test --debug` does the same for a batch of `triton_test` targets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.engine.process import Process
from pants.engine.rules import Get, collect_rules, rule
from triton_mme.target_types import TritonConfigSourceField, TritonVersionSourcesField
from triton_mme.util_rules.triton_server import (
    MANIFEST,
    ServedTarget,
    TritonServerProcess,
    TritonServerProcessRequest,
)
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


def run_request(process: Process) -> RunRequest:
    """The sandboxed server process, run from a temporary chroot in the foreground instead."""

    def in_chroot(arg: str) -> str:
        return arg if os.path.isabs(arg) else os.path.join("{chroot}", arg)

    return RunRequest(
        digest=process.input_digest,
        args=[in_chroot(process.argv[0]), *process.argv[1:-1], in_chroot(MANIFEST)],
        extra_env=process.env,
        immutable_input_digests=process.immutable_input_digests,
        append_only_caches=process.append_only_caches,
    )


@rule(desc="Serve a Triton model in the foreground")
async def run_triton_model(field_set: TritonModelRunFieldSet) -> RunRequest:
    served = ServedTarget(address=field_set.address, model_address=field_set.address)
    server = await Get(
        TritonServerProcess,
        TritonServerProcessRequest(
            (served,), mode="serve", description=f"Serve {field_set.address}"
        ),
    )
    return run_request(server.process)


@rule(desc="Run a triton_test and keep serving its model")
async def run_triton_test(field_set: TritonTestRunFieldSet) -> RunRequest:
    served = await Get(
        ServedTarget, ServedTestRequest(field_set.address, field_set.model, field_set.sources)
    )
    server = await Get(
        TritonServerProcess,
        TritonServerProcessRequest((served,), mode="debug", description=f"Run {field_set.address}"),
    )
    return run_request(server.process)


def rules() -> Iterable:
    return (
        *collect_rules(),
        *TritonModelRunFieldSet.rules(),
        *TritonTestRunFieldSet.rules(),
    )
