from __future__ import annotations

import pytest
from pants.core.goals.tailor import AllOwnedSources, PutativeTarget, PutativeTargets
from pants.testutil.rule_runner import QueryRule, RuleRunner
from triton_mme.goals import tailor
from triton_mme.goals.tailor import PutativeTritonModelTargetsRequest, declares_ensemble
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *tailor.rules(),
            QueryRule(PutativeTargets, [PutativeTritonModelTargetsRequest, AllOwnedSources]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget],
    )


def test_proposes_the_target_type_the_config_needs(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "models/pre/config.pbtxt": 'backend: "python"\n',
            "models/pre/1/model.py": "",
            "models/pipeline/config.pbtxt": '# pipeline\nplatform: "ensemble"\n',
            "models/owned/config.pbtxt": 'backend: "python"\n',
        }
    )
    result = rule_runner.request(
        PutativeTargets,
        [
            PutativeTritonModelTargetsRequest(("models/pre", "models/pipeline", "models/owned")),
            AllOwnedSources(["models/owned/config.pbtxt"]),
        ],
    )
    assert result == PutativeTargets(
        [
            PutativeTarget.for_target_type(
                TritonEnsembleTarget, "models/pipeline", "pipeline", ["config.pbtxt"]
            ),
            PutativeTarget.for_target_type(
                TritonModelTarget, "models/pre", "pre", ["config.pbtxt"]
            ),
        ]
    )


def test_declares_ensemble() -> None:
    assert declares_ensemble('name: "p"\n  platform : "ensemble"\n')
    assert not declares_ensemble('# platform: "ensemble"\nbackend: "python"\n')
    assert not declares_ensemble('platform: "onnxruntime_onnx"\n')
