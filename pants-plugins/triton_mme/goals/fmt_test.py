from __future__ import annotations

import pytest
from pants.core.goals.fmt import FmtResult
from pants.core.util_rules import source_files
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents, PathGlobs, Snapshot
from pants.testutil.rule_runner import QueryRule, RuleRunner
from triton_mme.goals import fmt
from triton_mme.goals.fmt import TritonConfigFmtFieldSet, TritonConfigFmtRequest
from triton_mme.target_types import TritonModelTarget

WRITTEN = 'backend: "python"  # python model\nname: "m"\ninput [{ name: "IN" }]\n'
FORMATTED = 'name: "m"\nbackend: "python"  # python model\n\ninput [\n  {\n    name: "IN"\n  }\n]\n'


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *fmt.rules(),
            *source_files.rules(),
            QueryRule(FmtResult, [TritonConfigFmtRequest.Batch]),
            QueryRule(DigestContents, [Digest]),
        ],
        target_types=[TritonModelTarget],
    )


def run_fmt(rule_runner: RuleRunner, files: dict[str, str]) -> FmtResult:
    rule_runner.write_files({"models/m/BUILD": "triton_model()", **files})
    target = rule_runner.get_target(Address("models/m"))
    assert TritonConfigFmtFieldSet.is_applicable(target)
    snapshot = rule_runner.request(Snapshot, [PathGlobs(sorted(files))])
    return rule_runner.request(
        FmtResult,
        [
            TritonConfigFmtRequest.Batch(
                "", snapshot.files, partition_metadata=None, snapshot=snapshot
            )
        ],
    )


def test_formats_the_config_and_leaves_other_files(rule_runner: RuleRunner) -> None:
    result = run_fmt(
        rule_runner,
        {"models/m/config.pbtxt": WRITTEN, "models/m/model_version.txt": "1.0\n"},
    )
    assert result.did_change
    contents = {
        c.path: c.content.decode()
        for c in rule_runner.request(DigestContents, [result.output.digest])
    }
    assert contents == {"models/m/config.pbtxt": FORMATTED, "models/m/model_version.txt": "1.0\n"}


def test_a_formatted_config_is_unchanged(rule_runner: RuleRunner) -> None:
    result = run_fmt(rule_runner, {"models/m/config.pbtxt": FORMATTED})
    assert not result.did_change
