from __future__ import annotations

import hashlib
from pathlib import PurePath
import pytest
from pants.backend.python.util_rules.pex import Script, VenvPex, VenvPexProcess
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact
from pants.core.goals.publish import PublishProcesses
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import EMPTY_DIGEST, CreateDigest, Digest, FileContent
from pants.engine.process import Process
from pants.engine.rules import QueryRule
from pants.testutil.option_util import create_subsystem
from pants.util.frozendict import FrozenDict
from pants.testutil.rule_runner import MockGet, RuleRunner, engine_error, run_rule_with_mocks
from triton_mme.goals import publish
from triton_mme.goals.publish import (
    GitCommit,
    PublishTritonModelRequest,
    Tarball,
    Tarballs,
    TarballsRequest,
    TritonPublishFieldSet,
    publish_triton_model,
    upload_env,
)
from triton_mme.subsystems.s3 import PublishDestinationError, TritonPublishSubsystem
from triton_mme.subsystems.tool import ScriptTool, ScriptToolRequest
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget

TARBALL_BYTES = b"not really a tarball, but bytes with a known sha256"


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *publish.rules(),
            QueryRule(Tarballs, [TarballsRequest]),
            QueryRule(Digest, [CreateDigest]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget],
    )


def write_models(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "models/fraud/BUILD": "triton_model()",
            "models/member/BUILD": "triton_model(ensemble_member_only=True)",
            "models/experiment/BUILD": "triton_model(model_name='exp', skip_publish=True)",
            "models/pipeline/BUILD": "triton_ensemble()",
        }
    )


def field_set(rule_runner: RuleRunner, path: str) -> TritonPublishFieldSet:
    return TritonPublishFieldSet.create(rule_runner.get_target(Address(path)))


def test_publishable_targets(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    applicable = {
        path: TritonPublishFieldSet.is_applicable(rule_runner.get_target(Address(path)))
        for path in ("models/fraud", "models/member", "models/experiment", "models/pipeline")
    }
    assert applicable == {
        "models/fraud": True,
        "models/member": False,  # only ever served inside an ensemble
        "models/experiment": True,  # skipped by the rule, reported as skipped
        "models/pipeline": True,
    }
    assert field_set(rule_runner, "models/experiment").resolved_model_name == "exp"


def built_package(rule_runner: RuleRunner, relpath: str) -> BuiltPackage:
    digest = rule_runner.request(Digest, [CreateDigest([FileContent(relpath, TARBALL_BYTES)])])
    return BuiltPackage(digest, (BuiltPackageArtifact(relpath),))


def test_tarballs_carry_sha256_size_and_version(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    package = built_package(rule_runner, "models.fraud/fraud_1.0-rc1.tar.gz")

    result = rule_runner.request(
        Tarballs, [TarballsRequest(field_set(rule_runner, "models/fraud"), package)]
    )

    assert result.tarballs == (
        Tarball(
            relpath="models.fraud/fraud_1.0-rc1.tar.gz",
            model_name="fraud",
            artifact_version="1.0-rc1",
            sha256=hashlib.sha256(TARBALL_BYTES).hexdigest(),
            size=len(TARBALL_BYTES),
        ),
    )


def test_renamed_tarball_cannot_be_published(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    package = built_package(rule_runner, "dist/model.tar.gz")
    with engine_error(ValueError, contains="must be `fraud_<artifact_version>.tar.gz`"):
        rule_runner.request(
            Tarballs, [TarballsRequest(field_set(rule_runner, "models/fraud"), package)]
        )


def publish_subsystem(destination: str | None = "staging") -> TritonPublishSubsystem:
    return create_subsystem(
        TritonPublishSubsystem,
        destinations={
            "staging": {
                "bucket": "acme-staging",
                "prefix": "mme",
                "endpoint_url": "http://127.0.0.1:8333",
            }
        },
        destination=destination,
        multipart_threshold_mib=64,
        part_size_mib=64,
        max_attempts=5,
        extra_env_vars=["HTTPS_PROXY"],
        resolve="boto3",
        requirements=["boto3"],
    )


FRAUD_TARBALL = Tarball("models.fraud/fraud_2.tar.gz", "fraud", "2", "ab" * 32, 123)


def run_publish(
    fs: TritonPublishFieldSet,
    subsystem: TritonPublishSubsystem,
    environment: dict[str, str],
    requested_env: list[EnvironmentVarsRequest],
) -> PublishProcesses:
    def env_vars(request: EnvironmentVarsRequest) -> EnvironmentVars:
        requested_env.append(request)
        return EnvironmentVars({k: v for k, v in environment.items() if k in request.requested})

    def process(request: VenvPexProcess) -> Process:
        return Process(
            argv=request.argv,
            description=request.description,
            env=request.extra_env,
            cache_scope=request.cache_scope,
        )

    tool = ScriptTool(
        VenvPex(
            digest=EMPTY_DIGEST,
            append_only_caches=None,
            pex_filename="s3_publish.pex",
            pex=Script(PurePath("s3_publish.pex")),
            python=Script(PurePath("python")),
            bin=FrozenDict(),
            venv_rel_dir="venv",
        )
    )
    return run_rule_with_mocks(
        publish_triton_model,
        rule_args=[
            PublishTritonModelRequest(fs, (BuiltPackage(EMPTY_DIGEST, ()),)),
            subsystem,
            GitCommit("0123abc"),
        ],
        mock_gets=[
            MockGet(
                Tarballs, (TarballsRequest,), lambda _: Tarballs(EMPTY_DIGEST, (FRAUD_TARBALL,))
            ),
            MockGet(EnvironmentVars, (EnvironmentVarsRequest,), env_vars),
            MockGet(Process, (VenvPexProcess,), process),
            MockGet(ScriptTool, (ScriptToolRequest,), lambda _: tool),
        ],
    )


def test_publish_request_runs_one_upload_per_tarball(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    requested: list[EnvironmentVarsRequest] = []
    environment = {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "very-secret",
        "AWS_PROFILE": "ci",
        "HTTPS_PROXY": "http://proxy:3128",
        "UNRELATED": "x",
    }

    result = run_publish(
        field_set(rule_runner, "models/fraud"), publish_subsystem(), environment, requested
    )

    (published,) = result
    uri = "s3://acme-staging/mme/fraud_2.tar.gz"
    assert published.names == (uri,)
    assert published.description == "`staging`"
    assert dict(published.data) == {
        "destination": "staging",
        "s3_uri": uri,
        "sha256": "ab" * 32,
        "size": 123,
        "artifact_version": "2",
        "git_commit": "0123abc",
    }
    assert published.process is not None
    process = published.process.process
    assert process.argv == (
        "models.fraud/fraud_2.tar.gz",
        "--model-name=fraud",
        "--artifact-version=2",
        "--bucket=acme-staging",
        "--key=mme/fraud_2.tar.gz",
        "--endpoint-url=http://127.0.0.1:8333",
        "--git-commit=0123abc",
        f"--multipart-threshold={64 * 1024 * 1024}",
        f"--part-size={64 * 1024 * 1024}",
        "--max-attempts=5",
    )
    assert (
        "HTTPS_PROXY" in requested[0].requested
        and "AWS_WEB_IDENTITY_TOKEN_FILE" in requested[0].requested
    )
    assert dict(process.env) == {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "very-secret",
        "AWS_PROFILE": "ci",
        "HTTPS_PROXY": "http://proxy:3128",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    assert "very-secret" not in repr(published) and "AKIDEXAMPLE" not in repr(published)


def test_skip_publish_reports_skipped_without_destination(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    result = run_publish(
        field_set(rule_runner, "models/experiment"), publish_subsystem(None), {}, []
    )
    (skipped,) = result
    assert skipped.process is None
    assert skipped.names == ("fraud_2.tar.gz",)
    assert "skip_publish" in (skipped.description or "")


def test_publish_without_destination_fails_clearly(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    with pytest.raises(PublishDestinationError, match="No publish destination chosen"):
        run_publish(field_set(rule_runner, "models/fraud"), publish_subsystem(None), {}, [])


def test_metadata_access_stays_as_the_caller_set_it() -> None:
    env = upload_env(EnvironmentVars({"AWS_EC2_METADATA_DISABLED": "false"}))
    assert env["AWS_EC2_METADATA_DISABLED"] == "false"
    masked = upload_env(EnvironmentVars({"AWS_SESSION_TOKEN": "token"}))
    assert masked["AWS_SESSION_TOKEN"] == "token" and "token" not in repr(masked)
