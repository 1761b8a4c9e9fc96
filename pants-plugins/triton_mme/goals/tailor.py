"""`./pants tailor` writes the one-line BUILD file of each model directory.

A directory holding a config.pbtxt gets `triton_ensemble()` when the config says
`platform: "ensemble"`, else `triton_model()`. The version-folder files (`1/model.py`, ...)
belong to that target, so Pants' Python tailoring proposes no `python_sources` inside them.
A model directory whose `tests/` holds test files gets a `triton_test` too.
"""

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
from pants.engine.fs import DigestContents, PathGlobs, Paths
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel
from triton_mme.config.parse import declares_ensemble
from triton_mme.target_types import (
    TritonEnsembleTarget,
    TritonModelTarget,
    TritonTestSourcesField,
    TritonTestTarget,
)

CONFIG_FILE = "config.pbtxt"


@dataclass(frozen=True)
class PutativeTritonModelTargetsRequest(PutativeTargetsRequest):
    pass


@rule(desc="Find Triton model directories without a target", level=LogLevel.DEBUG)
async def find_putative_triton_targets(
    request: PutativeTritonModelTargetsRequest, all_owned_sources: AllOwnedSources
) -> PutativeTargets:
    contents = await Get(DigestContents, PathGlobs, request.path_globs(CONFIG_FILE))
    owned = set(all_owned_sources)
    putative = []
    for config in sorted(contents, key=lambda c: c.path):
        if config.path in owned:
            continue
        directory = os.path.dirname(config.path)
        text = config.content.decode("utf-8", errors="replace")
        target_type = TritonEnsembleTarget if declares_ensemble(text) else TritonModelTarget
        putative.append(
            PutativeTarget.for_target_type(
                target_type,
                path=directory,
                name=None,
                triggering_sources=[CONFIG_FILE],
            )
        )
    return PutativeTargets(putative)


TEST_TARGET_NAME = "tests"


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
        Get(Paths, PathGlobs, request.path_globs(CONFIG_FILE)),
    )
    return PutativeTargets(
        putative_triton_tests(test_files.files, model_configs.files, all_owned_sources)
    )


def rules() -> Iterable:
    return (
        *collect_rules(),
        UnionRule(PutativeTargetsRequest, PutativeTritonModelTargetsRequest),
        UnionRule(PutativeTargetsRequest, PutativeTritonTestsRequest),
    )
