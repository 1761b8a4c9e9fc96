from __future__ import annotations


import pytest
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import Digest, DigestEntries, Directory, FileEntry
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error
from triton_mme.util_rules import repository
from triton_mme.util_rules.repository import (
    ModelDirectory,
    ModelDirectoryRequest,
    ModelRepository,
    ModelRepositoryRequest,
    version_folders,
)
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget
from triton_mme.testutil import ADD_ONE_CONFIG, PIPELINE_CONFIG


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *repository.rules(),
            QueryRule(ModelDirectory, [ModelDirectoryRequest]),
            QueryRule(ModelRepository, [ModelRepositoryRequest]),
            QueryRule(DigestEntries, [Digest]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget],
    )


def entries(rule_runner: RuleRunner, digest) -> dict[str, bytes | None]:
    result: dict[str, bytes | None] = {}
    for entry in rule_runner.request(DigestEntries, [digest]):
        if isinstance(entry, FileEntry):
            result[entry.path] = None
        elif isinstance(entry, Directory):
            result[entry.path + "/"] = None
    return result


def write_models(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "models/add_one/BUILD": "triton_model()",
            "models/add_one/config.pbtxt": ADD_ONE_CONFIG,
            "models/add_one/1/model.py": "# model\n",
            "models/add_one/1/model.onnx.dvc": "outs: []\n",
            "models/add_one/1/__pycache__/model.cpython-311.pyc": "litter",
            "models/add_one/model_version.txt": "1.0\n",
            "models/pipeline/BUILD": "triton_ensemble(dependencies=['models/add_one'])",
            "models/pipeline/config.pbtxt": PIPELINE_CONFIG,
        }
    )


def test_model_directory_holds_config_and_version_files_only(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    directory = rule_runner.request(
        ModelDirectory, [ModelDirectoryRequest(rule_runner.get_target(Address("models/add_one")))]
    )
    assert directory.model_name == "add_one"
    assert set(entries(rule_runner, directory.digest)) == {
        "add_one/config.pbtxt",
        "add_one/1/model.py",
    }


def test_label_files_named_in_the_config_are_kept(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    rule_runner.write_files(
        {
            "models/add_one/config.pbtxt": ADD_ONE_CONFIG.replace(
                'name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1]',
                'name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1], label_filename: "labels.txt"',
            ),
            "models/add_one/labels.txt": "a\nb\n",
            "models/add_one/notes.txt": "not for Triton",
        }
    )
    directory = rule_runner.request(
        ModelDirectory, [ModelDirectoryRequest(rule_runner.get_target(Address("models/add_one")))]
    )
    assert set(entries(rule_runner, directory.digest)) == {
        "add_one/config.pbtxt",
        "add_one/labels.txt",
        "add_one/1/model.py",
    }


def test_ensemble_without_version_folder_gets_an_empty_one(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    directory = rule_runner.request(
        ModelDirectory, [ModelDirectoryRequest(rule_runner.get_target(Address("models/pipeline")))]
    )
    assert directory.config.is_ensemble
    assert "pipeline/1/" in entries(rule_runner, directory.digest)


def test_repository_holds_ensemble_and_members(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    repository = rule_runner.request(
        ModelRepository, [ModelRepositoryRequest(Addresses([Address("models/pipeline")]))]
    )
    assert repository.model_names == ("add_one", "pipeline")
    assert {
        "add_one/config.pbtxt",
        "add_one/1/model.py",
        "pipeline/config.pbtxt",
        "pipeline/1/",
    } == set(entries(rule_runner, repository.digest))


def test_two_targets_with_one_model_name_is_an_error(rule_runner: RuleRunner) -> None:
    write_models(rule_runner)
    rule_runner.write_files(
        {
            "other/add_one/BUILD": "triton_model()",
            "other/add_one/config.pbtxt": ADD_ONE_CONFIG,
            "other/add_one/1/model.py": "",
        }
    )
    with engine_error(ValueError, contains="Two targets define the Triton model `add_one`"):
        rule_runner.request(
            ModelRepository,
            [
                ModelRepositoryRequest(
                    Addresses([Address("models/add_one"), Address("other/add_one")])
                )
            ],
        )


def test_version_folders() -> None:
    assert version_folders(["1/model.py", "2/a/b", "config.pbtxt"]) == ("1", "2")
