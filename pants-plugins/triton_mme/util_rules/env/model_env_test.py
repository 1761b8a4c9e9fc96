from __future__ import annotations

import pytest
from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent
from pants.engine.rules import Get, rule
from pants.engine.target import InferredDependencies
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error
from triton_mme.util_rules import repository
from triton_mme.util_rules.env import model_env
from triton_mme.util_rules.env.build import PythonEnvArchive, PythonEnvArchiveRequest
from triton_mme.util_rules.env.checks import EnvCheckError
from triton_mme.util_rules.env.model_env import (
    InferModelEnvDependency,
    ModelEnvInferenceFieldSet,
    nearest_env,
)
from triton_mme.target_types import ModelPythonEnvField, TritonPythonEnvTarget
from triton_mme.util_rules.repository import ModelDirectory, ModelDirectoryRequest
from triton_mme.target_types import TritonModelTarget

ENV_LINE = (
    'parameters: { key: "EXECUTION_ENV_PATH", value: { string_value: '
    '"$$TRITON_MODEL_DIRECTORY/python_env.tar.gz" } }\n'
)


@rule
async def fake_env_archive(request: PythonEnvArchiveRequest) -> PythonEnvArchive:
    """Stands in for the conda build: the archive's content names the env it was built for."""
    digest = await Get(
        Digest, CreateDigest([FileContent("python_env.tar.gz", str(request.address).encode())])
    )
    return PythonEnvArchive(address=request.address, python="3.11", digest=digest)


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *repository.rules(),
            *model_env.rules(),
            fake_env_archive,
            TritonModelTarget.register_plugin_field(ModelPythonEnvField),
            QueryRule(ModelDirectory, [ModelDirectoryRequest]),
            QueryRule(DigestContents, [Digest]),
            QueryRule(InferredDependencies, [InferModelEnvDependency]),
        ],
        target_types=[TritonModelTarget, TritonPythonEnvTarget],
    )


def python_model(rule_runner: RuleRunner, path: str, *, env_line: bool, build: str = "") -> None:
    name = path.rsplit("/", 1)[-1]
    rule_runner.write_files(
        {
            f"{path}/BUILD": build or "triton_model()",
            f"{path}/config.pbtxt": f'name: "{name}"\nbackend: "python"\n'
            + (ENV_LINE if env_line else ""),
            f"{path}/1/model.py": "",
        }
    )


def directory_files(rule_runner: RuleRunner, address: Address) -> dict[str, bytes]:
    directory = rule_runner.request(
        ModelDirectory, [ModelDirectoryRequest(rule_runner.get_target(address))]
    )
    contents = rule_runner.request(DigestContents, [directory.digest])
    return {c.path: c.content for c in contents}


def test_archive_goes_where_execution_env_path_says(rule_runner: RuleRunner) -> None:
    python_model(rule_runner, "models/detector", env_line=True)
    rule_runner.write_files(
        {"models/detector/python_env/BUILD": 'triton_python_env(python="3.11")'}
    )
    files = directory_files(rule_runner, Address("models/detector"))
    assert files["detector/python_env.tar.gz"] == b"models/detector/python_env:python_env"


def test_two_models_share_an_env_from_a_parent_directory(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"models/BUILD": 'triton_python_env(name="env", python="3.11")'})
    python_model(rule_runner, "models/pre", env_line=True)
    python_model(rule_runner, "models/post", env_line=True)
    for name in ("pre", "post"):
        files = directory_files(rule_runner, Address(f"models/{name}"))
        assert files[f"{name}/python_env.tar.gz"] == b"models:env"


def test_the_python_env_field_names_the_env(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "envs/a/BUILD": 'triton_python_env(python="3.11")',
            "envs/b/BUILD": 'triton_python_env(python="3.11")',
        }
    )
    python_model(
        rule_runner, "models/post", env_line=True, build='triton_model(python_env="envs/b")'
    )
    files = directory_files(rule_runner, Address("models/post"))
    assert files["post/python_env.tar.gz"] == b"envs/b:b"


def test_a_group_finds_its_env_in_a_sibling_folder(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"models/group/python_env/BUILD": 'triton_python_env(python="3.11")'})
    python_model(rule_runner, "models/group/pre", env_line=True)
    files = directory_files(rule_runner, Address("models/group/pre"))
    assert files["pre/python_env.tar.gz"] == b"models/group/python_env:python_env"


def test_env_path_without_env_is_an_error(rule_runner: RuleRunner) -> None:
    python_model(rule_runner, "models/post", env_line=True)
    with engine_error(EnvCheckError, contains="sets EXECUTION_ENV_PATH, but models/post"):
        directory_files(rule_runner, Address("models/post"))


def test_env_without_env_path_names_the_line(rule_runner: RuleRunner) -> None:
    python_model(rule_runner, "models/post", env_line=False)
    rule_runner.write_files({"models/post/env/BUILD": 'triton_python_env(python="3.11")'})
    with engine_error(EnvCheckError, contains='"$$TRITON_MODEL_DIRECTORY/python_env.tar.gz"'):
        directory_files(rule_runner, Address("models/post"))


def test_models_of_other_backends_ignore_envs(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "models/BUILD": 'triton_python_env(name="env", python="3.11")',
            "models/onnx/BUILD": "triton_model()",
            "models/onnx/config.pbtxt": 'name: "onnx"\nplatform: "onnxruntime_onnx"\n',
            "models/onnx/1/model.onnx": "",
        }
    )
    assert "onnx/python_env.tar.gz" not in directory_files(rule_runner, Address("models/onnx"))


def test_nearest_env_prefers_the_model_tree_then_the_closest_parent() -> None:
    model = Address("models/detector")
    inside = Address("models/detector/python_env")
    parent = Address("models", target_name="env")
    root = Address("", target_name="env")
    assert nearest_env(model, [inside, parent, root]) == inside
    assert nearest_env(model, [parent, root]) == parent
    assert nearest_env(model, []) is None
    sibling = Address("models/python_env")
    assert nearest_env(model, [sibling, root]) == sibling
    assert nearest_env(model, [Address("models/other/python_env"), root]) == root
    with pytest.raises(EnvCheckError, match="could use any of the envs"):
        nearest_env(model, [parent, Address("models", target_name="other")])


def inferred_env(rule_runner: RuleRunner, address: Address) -> set[Address]:
    target = rule_runner.get_target(address)
    request = InferModelEnvDependency(ModelEnvInferenceFieldSet.create(target))
    return set(rule_runner.request(InferredDependencies, [request]).include)


def test_a_python_model_depends_on_the_env_it_ships(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"models/group/python_env/BUILD": 'triton_python_env(python="3.11")'})
    python_model(rule_runner, "models/group/pre", env_line=True)
    python_model(
        rule_runner,
        "models/group/post",
        env_line=True,
        build='triton_model(python_env="models/group/python_env")',
    )
    env = Address("models/group/python_env")
    assert inferred_env(rule_runner, Address("models/group/pre")) == {env}
    assert inferred_env(rule_runner, Address("models/group/post")) == {env}


def test_no_env_dependency_without_an_env_to_ship(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "models/BUILD": 'triton_python_env(name="env", python="3.11")',
            "models/onnx/BUILD": "triton_model()",
            "models/onnx/config.pbtxt": 'name: "onnx"\nplatform: "onnxruntime_onnx"\n',
        }
    )
    # A python model without EXECUTION_ENV_PATH: a problem validation reports, not an edge.
    python_model(rule_runner, "models/post", env_line=False)
    assert inferred_env(rule_runner, Address("models/onnx")) == set()
    assert inferred_env(rule_runner, Address("models/post")) == set()
