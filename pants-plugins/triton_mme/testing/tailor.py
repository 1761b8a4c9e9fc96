"""`./pants tailor` proposes a `triton_test` beside every model directory with test files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from pants.core.goals.tailor import (
    AllOwnedSources,
    PutativeTarget,
    PutativeTargets,
    PutativeTargetsRequest,
)
from pants.engine.fs import PathGlobs, Paths
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel
from triton_mme.testing.target_types import TritonTestSourcesField, TritonTestTarget

TEST_TARGET_NAME = "tests"
# What makes a directory a model directory (the triton_model/triton_ensemble default config).
MODEL_CONFIG = "config.pbtxt"


@dataclass(frozen=True)
class PutativeTritonTestsRequest(PutativeTargetsRequest):
    pass


def putative_triton_tests(
    test_files: Iterable[str], model_configs: Iterable[str], owned: Iterable[str]
) -> list[PutativeTarget]:
    """One `triton_test` per model directory whose `tests/` holds files nothing owns yet."""
    model_dirs = {os.path.dirname(path) for path in model_configs}
    unowned = sorted(set(test_files) - set(owned))
    by_model_dir: dict[str, list[str]] = {}
    for path in unowned:
        model_dir = os.path.dirname(os.path.dirname(path))
        if model_dir in model_dirs:
            by_model_dir.setdefault(model_dir, []).append(os.path.relpath(path, model_dir))
    return [
        PutativeTarget.for_target_type(
            TritonTestTarget, path=model_dir, name=TEST_TARGET_NAME, triggering_sources=files
        )
        for model_dir, files in sorted(by_model_dir.items())
    ]


@rule(desc="Find model directories with tests for `triton_test` targets", level=LogLevel.DEBUG)
async def find_putative_triton_tests(
    request: PutativeTritonTestsRequest, all_owned_sources: AllOwnedSources
) -> PutativeTargets:
    test_files, model_configs = await MultiGet(
        Get(Paths, PathGlobs, request.path_globs(*TritonTestSourcesField.default)),
        Get(Paths, PathGlobs, request.path_globs(MODEL_CONFIG)),
    )
    return PutativeTargets(
        putative_triton_tests(test_files.files, model_configs.files, all_owned_sources)
    )


def rules() -> Iterable:
    return (*collect_rules(), UnionRule(PutativeTargetsRequest, PutativeTritonTestsRequest))
