from __future__ import annotations

import pytest
from pants.backend.python.util_rules import pex
from pants.core.util_rules import source_files, system_binaries
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import Digest, DigestContents
from pants.testutil.rule_runner import QueryRule, RuleRunner
from triton_mme import dependency_inference
from triton_mme.goals import package
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget
from triton_mme.testutil import ADD_ONE_CONFIG, PIPELINE_CONFIG
from triton_mme.util_rules import artifact_names, onnx_graph, repository, triton_server, validation
from triton_mme.util_rules.triton_server import ServedRepository, ServedRepositoryRequest

PIPELINE = Address("models/pipeline")
ADD_ONE = Address("models/add_one")


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            triton_server.served_repository,
            *package.rules(),
            *artifact_names.rules(),
            *validation.rules(),
            *dependency_inference.rules(),
            *repository.rules(),
            *onnx_graph.rules(),
            *pex.rules(),
            *source_files.rules(),
            *system_binaries.rules(),
            QueryRule(ServedRepository, [ServedRepositoryRequest]),
            QueryRule(DigestContents, [Digest]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget],
    )


def serve(rule_runner: RuleRunner, *addresses: Address) -> tuple[ServedRepository, list[str]]:
    served = rule_runner.request(ServedRepository, [ServedRepositoryRequest(Addresses(addresses))])
    contents = rule_runner.request(DigestContents, [served.digest])
    return served, sorted(c.path for c in contents)


def write_models(rule_runner: RuleRunner, add_one_build: str, **extra: str) -> None:
    rule_runner.write_files(
        {
            "models/add_one/BUILD": add_one_build,
            "models/add_one/config.pbtxt": ADD_ONE_CONFIG,
            "models/add_one/1/model.py": "# model\n",
            "models/pipeline/BUILD": "triton_ensemble()",
            "models/pipeline/config.pbtxt": PIPELINE_CONFIG,
            **extra,
        }
    )


def test_the_server_loads_each_model_as_its_artifact_ships_it(rule_runner: RuleRunner) -> None:
    write_models(rule_runner, "triton_model()", **{"models/pipeline/model_version.txt": "1.1.0\n"})
    served, paths = serve(rule_runner, ADD_ONE, PIPELINE)
    # The model tested on its own keeps its name; the ensemble's copy is its artifact's.
    assert paths == [
        "add_one/1/model.py",
        "add_one/config.pbtxt",
        "pipeline/config.pbtxt",
        "pipeline_1.1.0.add_one/1/model.py",
        "pipeline_1.1.0.add_one/config.pbtxt",
    ]
    pipeline = served.by_model[PIPELINE]
    assert pipeline.served_model == "pipeline"
    assert dict(pipeline.shipped_names) == {
        "add_one": "pipeline_1.1.0.add_one",
        "pipeline": "pipeline",
    }
    assert dict(served.by_model[ADD_ONE].shipped_names) == {"add_one": "add_one"}


def test_a_model_without_an_artifact_version_is_named_after_itself(
    rule_runner: RuleRunner,
) -> None:
    write_models(rule_runner, "triton_model(ensemble_member_only=True)")
    served, paths = serve(rule_runner, PIPELINE)
    assert dict(served.by_model[PIPELINE].shipped_names) == {
        "add_one": "pipeline.add_one",
        "pipeline": "pipeline",
    }
    assert "pipeline.add_one/config.pbtxt" in paths
