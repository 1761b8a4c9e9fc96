from __future__ import annotations

import logging

import pytest
from pants.core.util_rules.partitions import Partitions
from pants.engine.addresses import Address
from pants.testutil.rule_runner import QueryRule, RuleRunner
from triton_mme.goals import test as test_goal
from triton_mme.goals.test import TritonModelLoadFieldSet, TritonModelLoadRequest
from triton_mme.goals.untested import untested_models_message
from triton_mme.target_types import TritonEnsembleTarget, TritonModelTarget, TritonTestTarget
from triton_mme.util_rules import repository


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *repository.rules(),
            *test_goal.rules(),
            QueryRule(Partitions, [TritonModelLoadRequest.PartitionRequest]),
        ],
        target_types=[TritonModelTarget, TritonEnsembleTarget, TritonTestTarget],
    )


def test_names_the_models_no_triton_test_tests(
    rule_runner: RuleRunner, caplog: pytest.LogCaptureFixture
) -> None:
    rule_runner.write_files(
        {
            "models/tested/BUILD": "triton_model()\ntriton_test(name='tests')",
            "models/tested/config.pbtxt": 'backend: "python"\n',
            "models/tested/tests/case.json": "{}",
            "models/add_sub/BUILD": "triton_model()",
            "models/add_sub/config.pbtxt": 'backend: "python"\n',
        }
    )
    targets = [rule_runner.get_target(Address(f"models/{name}")) for name in ("tested", "add_sub")]
    with caplog.at_level(logging.WARNING):
        partitions = rule_runner.request(
            Partitions,
            [
                TritonModelLoadRequest.PartitionRequest(
                    tuple(TritonModelLoadFieldSet.create(t) for t in targets)
                )
            ],
        )
    # Only the untested model is load-checked, and the line names it.
    assert [[fs.address for fs in p.elements] for p in partitions] == [[Address("models/add_sub")]]
    assert [r.getMessage() for r in caplog.records] == [
        untested_models_message([Address("models/add_sub")])
    ]


def test_message_says_where_the_case_goes() -> None:
    assert untested_models_message([]) is None
    assert untested_models_message([Address("models/add_sub")] * 2) == (
        "The model models/add_sub:add_sub has no tests: put a case file (e.g. `cases.json`, see "
        "docs/testing.md) or a `test_*.py` file in models/add_sub/tests/, then run "
        "`./pants tailor ::` to add a `triton_test`."
    )
    assert untested_models_message([Address("models/b"), Address("models/a")]) == (
        "2 models have no tests (models/a:a, models/b:b): put a case file (e.g. `cases.json`, "
        "see docs/testing.md) or a `test_*.py` file in each model's tests/ folder, then run "
        "`./pants tailor ::` to add a `triton_test`."
    )
