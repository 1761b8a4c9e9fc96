from __future__ import annotations

import io
import os
import tarfile

import pytest
from pants.backend.python.util_rules import pex
from pants.core.goals.package import BuiltPackage
from pants.core.util_rules import source_files, system_binaries
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents
from pants.engine.target import Target
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error
from triton_mme import dependency_inference
from triton_mme.util_rules import artifact_names, onnx_graph, repository
from triton_mme.goals import package
from triton_mme.util_rules import validation
from triton_mme.goals.package import (
    InvalidArtifactVersion,
    TritonPackageFieldSet,
    check_artifact_version,
)
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget
from triton_mme.testutil import ADD_ONE_CONFIG, PIPELINE_CONFIG, local_pex_cli_options
from triton_mme.util_rules.validation import InvalidTritonModel


@pytest.fixture
def rule_runner() -> RuleRunner:
    options = local_pex_cli_options()
    if options is None:
        pytest.skip("the `pex` tool that ./pants builds is not on this machine: run ./pants once")
    rule_runner = RuleRunner(
        rules=[
            *package.rules(),
            *artifact_names.rules(),
            *validation.rules(),
            *dependency_inference.rules(),
            *repository.rules(),
            *onnx_graph.rules(),
            *pex.rules(),
            *source_files.rules(),
            *system_binaries.rules(),
            QueryRule(BuiltPackage, [TritonPackageFieldSet]),
            QueryRule(DigestContents, [Digest]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget],
    )
    rule_runner.set_options(
        [
            *options,
            "--python-interpreter-constraints=['CPython==3.11.*']",
            "--python-bootstrap-search-path=['<PYENV>', '<PATH>']",
        ],
        env_inherit={"PATH", "PYENV_ROOT", "HOME"},
    )
    return rule_runner


def write_models(rule_runner: RuleRunner, **extra: str) -> None:
    rule_runner.write_files(
        {
            "models/add_one/BUILD": "triton_model(ensemble_member_only=True)",
            "models/add_one/config.pbtxt": ADD_ONE_CONFIG,
            "models/add_one/1/model.py": "# model\n",
            "models/add_one/1/model.onnx.dvc": "outs: []\n",
            "models/add_one/2/model.py": "# model 2\n",
            "models/pipeline/BUILD": "triton_ensemble()",
            "models/pipeline/config.pbtxt": PIPELINE_CONFIG,
            "models/pipeline/model_version.txt": "2.1.0\n",
            **extra,
        }
    )


def target(rule_runner: RuleRunner, spec: str) -> Target:
    return rule_runner.get_target(Address(spec))


def build(rule_runner: RuleRunner, spec: str) -> tuple[BuiltPackage, dict[str, bytes]]:
    field_set = TritonPackageFieldSet.create(target(rule_runner, spec))
    built = rule_runner.request(BuiltPackage, [field_set])
    contents = rule_runner.request(DigestContents, [built.digest])
    return built, {c.path: c.content for c in contents}


def members(tarball: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        return [m.name + ("/" if m.isdir() else "") for m in tar.getmembers()]


def test_ensemble_tarball_holds_the_ensemble_and_its_members(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    built, files = build(rule_runner, "models/pipeline")
    path = "models/pipeline/pipeline_2.1.0.tar.gz"
    assert [a.relpath for a in built.artifacts] == [path]
    assert list(files) == [path]
    assert members(files[path]) == [
        "pipeline/",
        "pipeline/1/",
        "pipeline/config.pbtxt",
        "pipeline_2.1.0.add_one/",
        "pipeline_2.1.0.add_one/1/",
        "pipeline_2.1.0.add_one/1/model.py",
        "pipeline_2.1.0.add_one/2/",
        "pipeline_2.1.0.add_one/2/model.py",
        "pipeline_2.1.0.add_one/config.pbtxt",
    ]
    with tarfile.open(fileobj=io.BytesIO(files[path])) as tar:
        configs = {
            m.name: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.name.endswith("config.pbtxt")
        }
    assert 'model_name: "pipeline_2.1.0.add_one"' in configs["pipeline/config.pbtxt"]
    assert 'name: "pipeline"\n' in configs["pipeline/config.pbtxt"]
    assert 'name: "pipeline_2.1.0.add_one"\n' in configs["pipeline_2.1.0.add_one/config.pbtxt"]
    assert configs["pipeline_2.1.0.add_one/config.pbtxt"].startswith(
        "# models/add_one/config.pbtxt, with the member model names of this artifact"
    )


def test_bls_call_by_literal_member_name_is_refused(rule_runner: RuleRunner) -> None:
    call = 'pb_utils.InferenceRequest(model_name="add_one", requested_output_names=["Y"])\n'
    write_models(rule_runner, **{"models/pipeline/1/model.py": call})
    with engine_error(
        InvalidTritonModel,
        contains=(
            "models/pipeline/1/model.py:1: calls the model `add_one` by its literal name, but "
            "in the tarball of `pipeline_2.1.0` it is named `pipeline_2.1.0.add_one`"
        ),
    ):
        build(rule_runner, "models/pipeline")


def test_bls_callers_get_the_model_names_parameter(rule_runner: RuleRunner) -> None:
    call = "pb_utils.InferenceRequest(model_name=self.add_one_model, inputs=[])\n"
    write_models(rule_runner, **{"models/add_one/1/model.py": call})
    _, files = build(rule_runner, "models/pipeline")
    with tarfile.open(fileobj=io.BytesIO(files["models/pipeline/pipeline_2.1.0.tar.gz"])) as tar:
        config = tar.extractfile("pipeline_2.1.0.add_one/config.pbtxt")
        assert config is not None
        text = config.read().decode()
    assert 'key: "triton_mme.model_names"' in text
    assert '{\\"add_one\\":\\"pipeline_2.1.0.add_one\\"}' in text


def test_single_model_with_artifact_version_field_and_output_path(
    rule_runner: RuleRunner,
) -> None:
    write_models(
        rule_runner,
        **{
            "models/add_one/BUILD": (
                "triton_model(artifact_version='3', output_path='deploy/add_one.tar.gz')"
            )
        },
    )
    built, files = build(rule_runner, "models/add_one")
    assert [a.relpath for a in built.artifacts] == ["deploy/add_one.tar.gz"]
    assert members(files["deploy/add_one.tar.gz"])[0] == "add_one/"


def test_same_inputs_give_the_same_bytes(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    _, first = build(rule_runner, "models/pipeline")
    rule_runner.write_files({"models/add_one/1/model.py": "# changed\n"})
    _, changed = build(rule_runner, "models/pipeline")
    rule_runner.write_files({"models/add_one/1/model.py": "# model\n"})
    _, again = build(rule_runner, "models/pipeline")
    assert first == again != changed


def test_compression_option_and_field(rule_runner: RuleRunner) -> None:
    # Text that deflates well: `none` stores it, `auto` (the option's default) compresses it.
    write_models(rule_runner, **{"models/add_one/1/model.py": "x = 1\n" * 100_000})
    _, compressed = build(rule_runner, "models/pipeline")
    rule_runner.set_options(
        [*rule_runner.options_bootstrapper.args, "--triton-package-compression=none"],
        env_inherit={"PATH", "PYENV_ROOT", "HOME"},
    )
    _, stored = build(rule_runner, "models/pipeline")
    rule_runner.write_files({"models/pipeline/BUILD": "triton_ensemble(compression='best')"})
    _, best = build(rule_runner, "models/pipeline")
    path = "models/pipeline/pipeline_2.1.0.tar.gz"
    assert len(best[path]) <= len(compressed[path]) < 20_000 < 600_000 < len(stored[path])
    assert members(stored[path]) == members(compressed[path]) == members(best[path])


def test_modes_follow_the_digest_not_the_sandbox(rule_runner: RuleRunner) -> None:
    # Pants hardlinks files over 512 KB into sandboxes read-only and executable: big weights
    # must still be 0644, and a script marked executable in git 0755.
    write_models(rule_runner, **{"models/add_one/1/run.sh": "#!/bin/sh\n"})
    rule_runner.write_files({"models/add_one/1/weights.bin": b"\0" * (1024 * 1024)})
    os.chmod(os.path.join(rule_runner.build_root, "models/add_one/1/run.sh"), 0o755)
    _, files = build(rule_runner, "models/pipeline")
    with tarfile.open(fileobj=io.BytesIO(files["models/pipeline/pipeline_2.1.0.tar.gz"])) as tar:
        modes = {m.name: m.mode for m in tar.getmembers() if m.isfile()}
    assert modes["pipeline_2.1.0.add_one/1/weights.bin"] == 0o644
    assert modes["pipeline_2.1.0.add_one/1/run.sh"] == 0o755
    assert modes["pipeline_2.1.0.add_one/1/model.py"] == 0o644


def test_ensemble_member_only_models_are_not_packaged(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    assert not TritonPackageFieldSet.is_applicable(target(rule_runner, "models/add_one"))
    assert TritonPackageFieldSet.is_applicable(target(rule_runner, "models/pipeline"))


def test_missing_version_is_an_error(rule_runner: RuleRunner) -> None:
    write_models(rule_runner, **{"models/add_one/BUILD": "triton_model()"})
    with engine_error(
        InvalidArtifactVersion,
        contains="no artifact version. Write it into `models/add_one/model_version.txt`",
    ):
        build(rule_runner, "models/add_one")


def test_unsafe_version_is_refused(rule_runner: RuleRunner) -> None:
    write_models(rule_runner, **{"models/pipeline/model_version.txt": "1.0 beta\n"})
    with engine_error(InvalidArtifactVersion, contains="models/pipeline/model_version.txt: the"):
        build(rule_runner, "models/pipeline")


def test_invalid_config_is_not_packaged(rule_runner: RuleRunner) -> None:
    write_models(
        rule_runner,
        **{"models/pipeline/config.pbtxt": PIPELINE_CONFIG.replace('value: "X"', 'value: "Z"')},
    )
    with engine_error(InvalidTritonModel, contains="ensemble input `X` is not read by any step"):
        build(rule_runner, "models/pipeline")


@pytest.mark.parametrize("version", ["1.0.0", "2024-06-01_a", "v3", "7"])
def test_safe_versions(version: str) -> None:
    assert check_artifact_version(f"{version}\n", "x") == version


@pytest.mark.parametrize("version", ["", " ", ".hidden", "1.0/2", "1 0", "é", "a+b", "1:2"])
def test_unsafe_versions(version: str) -> None:
    with pytest.raises(InvalidArtifactVersion, match="letters, digits"):
        check_artifact_version(version, "models/x/model_version.txt")
