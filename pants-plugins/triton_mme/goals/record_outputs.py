"""`./pants record-outputs`: write a model's answers into its case files, for review.

A data scientist writes the `inputs` of a case file; this goal serves the model as `./pants test`
does (`util_rules/triton_server.py`: the same image, the same model repository), sends each
case's inputs, and writes the answers as the case's `outputs`. Like `update-build-files` and
`generate-lockfiles`, it computes the new files in a sandbox, prints what changes (a unified diff)
and writes them into the workspace. Cases that already have outputs are kept unless
`--overwrite`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable

from pants.engine.console import Console
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
    Workspace,
)
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, MultiGet, collect_rules, goal_rule, rule
from pants.engine.target import Targets
from pants.option.option_types import BoolOption
from pants.util.logging import LogLevel
from pants.util.strutil import softwrap
from triton_mme.goals.test import ServedTestRequest, TritonTestFieldSet
from triton_mme.util_rules.triton_server import (
    RECORDED_DIR,
    ServedTarget,
    TritonServerProcess,
    TritonServerProcessRequest,
)


class RecordOutputsSubsystem(GoalSubsystem):
    name = "record-outputs"
    help = softwrap(
        """
        Fill in the expected outputs of test case files from what the model answers.

        Write a case file's `inputs` (docs/testing.md), then run
        `./pants record-outputs models/my_model::`: the model is served in Triton as
        `./pants test` serves it, each case's inputs are sent, and the answers are written as the
        case's `outputs`. The diff of every changed file is printed. Review it before you commit:
        a recorded output is what the model does today, not proof that it is right.
        """
    )

    overwrite = BoolOption(
        default=False,
        help=softwrap(
            """
            Also re-record the cases that already have expected outputs (their `atol`/`rtol`
            stay). Without it, those cases are left as they are.
            """
        ),
    )


class RecordOutputs(Goal):
    subsystem_cls = RecordOutputsSubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


@dataclass(frozen=True)
class RecordRequest:
    targets: tuple[ServedTarget, ...]  # `triton_test` targets with case files
    overwrite: bool


@dataclass(frozen=True)
class RecordedCaseFiles:
    digest: Digest  # every case file the runner wrote, at its path in the workspace
    report: str  # the runner's lines: a case recorded, kept or failed
    exit_code: int


@rule(desc="Record expected outputs", level=LogLevel.DEBUG)
async def record_expected_outputs(request: RecordRequest) -> RecordedCaseFiles:
    setup = await Get(
        TritonServerProcess,
        TritonServerProcessRequest(
            targets=request.targets,
            mode="record",
            overwrite_outputs=request.overwrite,
            description="Record expected outputs: "
            + ", ".join(t.address.spec for t in request.targets),
        ),
    )
    result = await Get(FallibleProcessResult, Process, setup.process)
    written = await Get(
        Digest, DigestSubset(result.output_digest, PathGlobs([f"{RECORDED_DIR}/**"]))
    )
    recorded = await Get(Digest, RemovePrefix(written, RECORDED_DIR))
    report = (result.stdout + result.stderr).decode("utf-8", errors="replace").strip()
    return RecordedCaseFiles(recorded, report, result.exit_code)


def unified_diff(path: str, before: bytes, after: bytes, console: Console) -> str:
    lines = difflib.unified_diff(
        before.decode("utf-8").splitlines(keepends=True),
        after.decode("utf-8").splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    )
    colors = {"+": console.green, "-": console.red, "@": console.cyan}
    return "".join(
        line if line.startswith(("+++", "---")) else colors.get(line[:1], str)(line)
        for line in lines
    )


@goal_rule(desc="Record expected outputs of test cases", level=LogLevel.DEBUG)
async def record_outputs(
    console: Console,
    workspace: Workspace,
    targets: Targets,
    subsystem: RecordOutputsSubsystem,
) -> RecordOutputs:
    field_sets = [
        TritonTestFieldSet.create(t) for t in targets if TritonTestFieldSet.is_applicable(t)
    ]
    served = await MultiGet(
        Get(ServedTarget, ServedTestRequest(fs.address, fs.model, fs.sources)) for fs in field_sets
    )
    with_cases = tuple(target for target in served if target.case_files)
    if not with_cases:
        console.print_stderr(
            "No case files to record: give the `triton_test` targets (e.g. "
            "`./pants record-outputs models/my_model::`) of models whose tests/ folder holds "
            "`*.json` case files (docs/testing.md)."
        )
        return RecordOutputs(exit_code=0)
    recorded = await Get(RecordedCaseFiles, RecordRequest(with_cases, subsystem.overwrite))
    before, after = await MultiGet(
        Get(DigestContents, MergeDigests(t.sources_digest for t in with_cases if t.sources_digest)),
        Get(DigestContents, Digest, recorded.digest),
    )
    old = {file.path: file.content for file in before}
    changed = [file for file in after if old.get(file.path) != file.content]
    if recorded.report:
        console.print_stdout(recorded.report)
    for file in changed:
        console.print_stdout(
            unified_diff(file.path, old.get(file.path, b""), file.content, console)
        )
    if changed:
        workspace.write_digest(await Get(Digest, CreateDigest(changed)))
        console.print_stdout(
            f"Wrote {len(changed)} case file(s): review the recorded outputs before you commit."
        )
    else:
        console.print_stdout("No case file changed.")
    return RecordOutputs(exit_code=recorded.exit_code)


def rules() -> Iterable:
    return collect_rules()
