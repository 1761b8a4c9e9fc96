from __future__ import annotations

import pytest

from pants.engine.addresses import Address
from pants.testutil.option_util import create_subsystem
from triton_mme.goals.run_endpoint import LocalMmeError, TritonMmeEndpointFieldSet, server_args
from triton_mme.target_types import TritonMmeEndpointTarget
from triton_mme.subsystems.triton import TritonSubsystem

TRITON = create_subsystem(
    TritonSubsystem,
    image="triton:test",
    startup_timeout=60,
    docker_run_args=["--shm-size=1g"],
    server_args=["--log-verbose=1"],
)


def _args(**fields: object) -> tuple[str, ...]:
    target = TritonMmeEndpointTarget(fields, Address("models", target_name="mme"))
    field_set = TritonMmeEndpointFieldSet.create(target)
    return server_args(field_set, TRITON, "/repo", "/usr/bin/docker")


def test_defaults_serve_dist() -> None:
    assert _args() == (
        "--source=/repo/dist",
        "--image=triton:test",
        "--docker=/usr/bin/docker",
        "--startup-timeout=60",
        "--endpoint-name=local-mme",
        "--port=8080",
        "--max-models=0",
        "--max-bytes=0",
        "--docker-run-arg=--shm-size=1g",
        "--server-arg=--log-verbose=1",
    )


def test_s3_source_and_budget() -> None:
    args = _args(
        model_source="s3://bucket/mme",
        s3_endpoint_url="http://127.0.0.1:9000",
        s3_region="eu-west-1",
        max_models=2,
        max_bytes=10_000,
        port=0,
        endpoint_name="staging",
    )
    assert "--source=s3://bucket/mme" in args
    assert args[-2:] == ("--s3-endpoint-url=http://127.0.0.1:9000", "--s3-region=eu-west-1")
    assert {"--max-models=2", "--max-bytes=10000", "--port=0", "--endpoint-name=staging"} <= set(
        args
    )


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"model_source": "/abs"}, "must be a directory inside the repository"),
        ({"model_source": "../elsewhere"}, "must be a directory inside the repository"),
        ({"max_models": -1}, "max_models must be 0 or more"),
        ({"max_bytes": -5}, "max_bytes must be 0 or more"),
    ],
)
def test_refuses_bad_fields(fields: dict[str, object], message: str) -> None:
    with pytest.raises(LocalMmeError, match=message):
        _args(**fields)
