from __future__ import annotations

import json
from pathlib import Path

import pytest
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.rules import Get, collect_rules, rule
from pants.testutil.rule_runner import GoalRuleResult, RuleRunner
from triton_mme.goals import record_outputs
from triton_mme.goals import test as test_goal
from triton_mme.goals.record_outputs import RecordedCaseFiles, RecordOutputs, RecordRequest
from triton_mme.target_types import TritonModelTarget, TritonTestTarget
from triton_mme.testutil import ADD_ONE_CONFIG
from triton_mme.util_rules import repository

INPUTS_ONLY = '{\n  "inputs": [{"name": "INPUT0", "datatype": "FP32", "data": [1.0]}]\n}\n'
RECORDED = (
    "{\n"
    '  "inputs": [{"name": "INPUT0", "datatype": "FP32", "data": [1.0]}],\n'
    '  "outputs": [{"name": "OUTPUT0", "datatype": "FP32", "shape": [1], "data": [2.0]}]\n'
    "}\n"
)


@rule
async def runner_that_adds_one(request: RecordRequest) -> RecordedCaseFiles:
    """Stands in for the Triton runner (tested in scripts/record_cases_test.py and tests/)."""
    paths = [path for target in request.targets for path in target.case_files]
    digest = await Get(Digest, CreateDigest([FileContent(p, RECORDED.encode()) for p in paths]))
    report = f"recorded {', '.join(paths)} (overwrite: {request.overwrite})"
    return RecordedCaseFiles(digest, report, exit_code=0)


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *repository.rules(),
            *test_goal.rules(),
            *collect_rules(
                {
                    "record_outputs": record_outputs.record_outputs,
                    "runner_that_adds_one": runner_that_adds_one,
                }
            ),
        ],
        target_types=[TritonModelTarget, TritonTestTarget],
    )


def write_model(rule_runner: RuleRunner, tests: dict[str, str]) -> None:
    rule_runner.write_files(
        {
            "models/add_one/BUILD": "triton_model()\ntriton_test(name='tests')\n",
            "models/add_one/config.pbtxt": ADD_ONE_CONFIG,
            "models/add_one/1/model.py": "",
            **{f"models/add_one/tests/{name}": text for name, text in tests.items()},
        }
    )


def record(rule_runner: RuleRunner, *args: str) -> GoalRuleResult:
    return rule_runner.run_goal_rule(RecordOutputs, args=[*args, "models/add_one::"])


def test_writes_the_recorded_case_file_and_shows_the_diff(rule_runner: RuleRunner) -> None:
    write_model(rule_runner, {"case.json": INPUTS_ONLY, "test_more.py": ""})
    result = record(rule_runner)
    assert result.exit_code == 0
    case_file = Path(rule_runner.build_root, "models/add_one/tests/case.json")
    assert case_file.read_text() == RECORDED
    assert result.stdout == (
        "recorded models/add_one/tests/case.json (overwrite: False)\n"
        "--- a/models/add_one/tests/case.json\n"
        "+++ b/models/add_one/tests/case.json\n"
        "@@ -1,3 +1,4 @@\n"
        " {\n"
        '-  "inputs": [{"name": "INPUT0", "datatype": "FP32", "data": [1.0]}]\n'
        '+  "inputs": [{"name": "INPUT0", "datatype": "FP32", "data": [1.0]}],\n'
        '+  "outputs": [{"name": "OUTPUT0", "datatype": "FP32", "shape": [1], "data": [2.0]}]\n'
        " }\n"
        "\n"
        "Wrote 1 case file(s): review the recorded outputs before you commit.\n"
    )
    assert json.loads(case_file.read_text())["outputs"][0]["data"] == [2.0]


def test_an_unchanged_file_is_not_written_and_overwrite_is_passed_on(
    rule_runner: RuleRunner,
) -> None:
    write_model(rule_runner, {"case.json": RECORDED})
    result = record(rule_runner, "--record-outputs-overwrite")
    assert result.exit_code == 0
    assert result.stdout == (
        "recorded models/add_one/tests/case.json (overwrite: True)\nNo case file changed.\n"
    )


def test_no_case_files_says_what_to_give(rule_runner: RuleRunner) -> None:
    write_model(rule_runner, {"test_model.py": ""})
    result = record(rule_runner)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No case files to record" in result.stderr
