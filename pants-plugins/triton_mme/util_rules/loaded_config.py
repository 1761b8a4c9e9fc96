"""After a test batch: an ensemble's steps checked against the configs Triton reported.

Lint checks an ensemble's steps against the configs Triton will serve, but what a python
model's `auto_complete_config` fills in only Triton can tell: lint leaves it open. The test
runner (`scripts/run_triton_tests.py`) records the config Triton reports for every loaded model
in each target's result (`served_configs`, under dist/test/); `LoadedConfigCheckRequest` runs the
ensemble rules of `config/` again with those members (`config/reported.py`), and the batch fails
with the usual `config.pbtxt:line` messages when a step no longer fits.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Iterable

from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents, Snapshot
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel
from triton_mme.config.reported import check_steps_with_reported, reported_config
from triton_mme.dependency_inference import TritonModelNameMapping
from triton_mme.util_rules.repository import TritonModelConfig
from triton_mme.util_rules.served_config import (
    ModelConfigRequest,
    served_steps,
)


@dataclass(frozen=True)
class LoadedConfigCheckRequest:
    """The per-target results a batch wrote, and the model each result's target tests."""

    reports: Snapshot
    models: FrozenDict[str, Address]  # result file name (without `.json`) -> model address


@dataclass(frozen=True)
class LoadedConfigProblems:
    """Result name -> the problems found in the configs Triton served (none: it fits)."""

    by_result: FrozenDict[str, tuple[str, ...]]


@dataclass(frozen=True)
class _Problems:
    errors: tuple[str, ...]


@dataclass(frozen=True)
class _EnsembleCheck:
    result_name: str
    model: Address
    served_configs: FrozenDict[str, str]  # source name -> Triton's config, as JSON text


@rule(desc="Check ensembles against the configs Triton served", level=LogLevel.DEBUG)
async def check_loaded_configs(request: LoadedConfigCheckRequest) -> LoadedConfigProblems:
    contents = await Get(DigestContents, Digest, request.reports.digest)
    checks = []
    for content in contents:
        name, ext = os.path.splitext(content.path)
        if ext != ".json" or name not in request.models:
            continue
        served = json.loads(content.content).get("served_configs") or {}
        checks.append(
            _EnsembleCheck(
                name,
                request.models[name],
                FrozenDict({k: json.dumps(v, sort_keys=True) for k, v in served.items()}),
            )
        )
    problems = await MultiGet(Get(_Problems, _EnsembleCheck, check) for check in checks)
    return LoadedConfigProblems(
        FrozenDict({c.result_name: p.errors for c, p in zip(checks, problems) if p.errors})
    )


@rule
async def check_loaded_ensemble(
    check: _EnsembleCheck, mapping: TritonModelNameMapping
) -> _Problems:
    config = await Get(TritonModelConfig, ModelConfigRequest(check.model))
    if not config.is_ensemble:
        return _Problems(())
    served, members = await served_steps(config.parsed, mapping)
    # Only the members whose config model code completes: the rest lint checked already.
    reported = {
        name: reported_config(member.source.path, json.loads(check.served_configs[name]))
        for name, member in served.items()
        if name in check.served_configs
        and member.latest.completion is not None
        and member.latest.completion.left_open
    }
    errors = check_steps_with_reported(config.parsed, members, reported)
    if not errors:
        return _Problems(())
    who = ", ".join(f"`{name}`" for name in sorted(reported))
    note = (
        f"(the config Triton serves for {who} after its model.py's auto_complete_config ran; "
        "the result file under dist/test/ holds it as `served_configs`)"
    )
    return _Problems(tuple(f"{error} {note}" for error in dict.fromkeys(map(str, errors))))


def rules() -> Iterable:
    return collect_rules()
