"""`./pants tailor` writes the BUILD file of each model directory.

A directory holding a config.pbtxt gets `triton_ensemble()` when the config says
`platform: "ensemble"`, else `triton_model()`, which owns every file of the model: its version
folders' files (`1/model.py`, ...) also belong to the repo's lint targets (`python_sources` in
models/BUILD), and that sharing is by design, so the proposal never narrows its `sources`.

The proposal also says what the files imply:
- `ensemble_member_only=True` for a model an ensemble calls that has no model_version.txt (it
  ships only inside the ensemble's tarball);
- `python_env="..."` for a model whose config sets `EXECUTION_ENV_PATH`, when exactly one
  `triton_python_env` fits it (the one the model would find by itself, see `nearest_env`).

A model directory whose `tests/` holds case or pytest files that no `triton_test` owns gets a
`triton_test` too, whether or not a lint target owns the pytest files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping

from pants.core.goals.tailor import (
    AllOwnedSources,
    PutativeTarget,
    PutativeTargets,
    PutativeTargetsRequest,
)
from pants.engine.addresses import Address
from pants.engine.fs import DigestContents, PathGlobs, Paths
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import AllTargets, SourcesPaths, SourcesPathsRequest, Target
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.model import EXECUTION_ENV_PATH
from triton_mme.config.parse import ModelConfigFile, parse_model_config
from triton_mme.scripts.config_platform import declares_ensemble
from triton_mme.target_types import (
    MODEL_VERSION_FILE,
    TritonEnsembleTarget,
    TritonModelTarget,
    TritonPythonEnvTarget,
    TritonTestSourcesField,
    TritonTestTarget,
)
from triton_mme.util_rules.env.checks import EnvCheckError
from triton_mme.util_rules.env.model_env import nearest_env

CONFIG_FILE = "config.pbtxt"
TEST_TARGET_NAME = "tests"


def _parsed_or_none(path: str, text: str) -> ModelConfigFile | None:
    try:
        return parse_model_config(path, text)
    except ModelConfigError:
        return None


def _proposal(
    target_type: type[Target],
    path: str,
    name: str | None,
    triggering_sources: Iterable[str],
    kwargs: Mapping[str, str | bool] | None = None,
    comments: Iterable[str] = (),
) -> PutativeTarget:
    """A proposal that claims no sources for tailor's conflict check.

    Tailor narrows a proposal's `sources` to its triggering files when another target owns some
    of the files its globs match. Our targets share their files with lint targets on purpose,
    so they take no part in that check.
    """
    return PutativeTarget(
        path,
        name or os.path.basename(path),
        target_type.alias,
        triggering_sources,
        owned_sources=(),
        kwargs=kwargs,
        comments=comments,
    )


@dataclass(frozen=True)
class ModelFacts:
    """What tailor knows about one model directory beyond its own config."""

    called_by: tuple[str, ...]  # directories of the ensembles whose steps call this model
    has_version_file: bool
    env: Address | None  # the one env that fits, for a config that sets EXECUTION_ENV_PATH


def putative_model_target(path: str, config_text: str, facts: ModelFacts) -> PutativeTarget:
    if declares_ensemble(config_text):
        return _proposal(TritonEnsembleTarget, path, None, [CONFIG_FILE])
    kwargs: dict[str, str | bool] = {}
    comments = []
    if facts.called_by and not facts.has_version_file:
        kwargs["ensemble_member_only"] = True
        comments.append(
            f"# Shipped inside the tarball of {', '.join(facts.called_by)}; it has no "
            f"{MODEL_VERSION_FILE}, so it gets no tarball of its own."
        )
    if facts.env is not None:
        kwargs["python_env"] = str(facts.env)
    return _proposal(TritonModelTarget, path, None, [CONFIG_FILE], kwargs, comments)


def ensemble_callers(configs: DigestContents) -> dict[str, tuple[str, ...]]:
    """Model name -> the directories of the ensembles that call it (configs that do not parse
    yet are left out: validation reports them)."""
    callers: dict[str, list[str]] = {}
    for config in sorted(configs, key=lambda c: c.path):
        parsed = _parsed_or_none(config.path, config.content.decode("utf-8", errors="replace"))
        if parsed is not None and parsed.is_ensemble:
            for name in parsed.step_model_names():
                callers.setdefault(name, []).append(os.path.dirname(config.path))
    return {name: tuple(dirs) for name, dirs in callers.items()}


def fitting_env(path: str, config_text: str, envs: Iterable[Address]) -> Address | None:
    """The one env a python model that sets `EXECUTION_ENV_PATH` would find, if exactly one."""
    parsed = _parsed_or_none(os.path.join(path, CONFIG_FILE), config_text)
    if parsed is None or EXECUTION_ENV_PATH not in parsed.parameters:
        return None
    try:
        return nearest_env(Address(path), envs)
    except EnvCheckError:
        return None


@dataclass(frozen=True)
class PutativeTritonModelTargetsRequest(PutativeTargetsRequest):
    pass


@rule(desc="Find Triton model directories without a target", level=LogLevel.DEBUG)
async def find_putative_triton_targets(
    request: PutativeTritonModelTargetsRequest,
    all_owned_sources: AllOwnedSources,
    all_targets: AllTargets,
) -> PutativeTargets:
    contents, all_configs, version_files = await MultiGet(
        Get(DigestContents, PathGlobs, request.path_globs(CONFIG_FILE)),
        Get(DigestContents, PathGlobs([f"**/{CONFIG_FILE}"])),
        Get(Paths, PathGlobs, request.path_globs(MODEL_VERSION_FILE)),
    )
    owned = set(all_owned_sources)
    callers = ensemble_callers(all_configs)
    envs = [t.address for t in all_targets if isinstance(t, TritonPythonEnvTarget)]
    putative = []
    for config in sorted(contents, key=lambda c: c.path):
        if config.path in owned:
            continue
        directory = os.path.dirname(config.path)
        text = config.content.decode("utf-8", errors="replace")
        facts = ModelFacts(
            called_by=callers.get(os.path.basename(directory), ()),
            has_version_file=os.path.join(directory, MODEL_VERSION_FILE) in version_files.files,
            env=fitting_env(directory, text, envs),
        )
        putative.append(putative_model_target(directory, text, facts))
    return PutativeTargets(putative)


@dataclass(frozen=True)
class PutativeTritonTestsRequest(PutativeTargetsRequest):
    pass


def putative_triton_tests(
    test_files: Iterable[str], model_configs: Iterable[str], owned_by_tests: Iterable[str]
) -> list[PutativeTarget]:
    """One `triton_test` per model directory whose `tests/` holds files no `triton_test` owns."""
    model_dirs = {os.path.dirname(path) for path in model_configs}
    unowned = sorted(set(test_files) - set(owned_by_tests))
    by_model_dir: dict[str, list[str]] = {}
    for path in unowned:
        model_dir = os.path.dirname(os.path.dirname(path))
        if model_dir in model_dirs:
            by_model_dir.setdefault(model_dir, []).append(os.path.relpath(path, model_dir))
    return [
        _proposal(TritonTestTarget, model_dir, TEST_TARGET_NAME, files)
        for model_dir, files in sorted(by_model_dir.items())
    ]


@rule(desc="Find model directories with tests for `triton_test` targets", level=LogLevel.DEBUG)
async def find_putative_triton_tests(
    request: PutativeTritonTestsRequest, all_targets: AllTargets
) -> PutativeTargets:
    test_targets = [t for t in all_targets if isinstance(t, TritonTestTarget)]
    test_files, model_configs = await MultiGet(
        Get(Paths, PathGlobs, request.path_globs(*TritonTestSourcesField.default)),
        Get(Paths, PathGlobs, request.path_globs(CONFIG_FILE)),
    )
    owned = await MultiGet(
        Get(SourcesPaths, SourcesPathsRequest(t[TritonTestSourcesField])) for t in test_targets
    )
    owned_by_tests = [path for sources in owned for path in sources.files]
    return PutativeTargets(
        putative_triton_tests(test_files.files, model_configs.files, owned_by_tests)
    )


def rules() -> Iterable:
    return (
        *collect_rules(),
        UnionRule(PutativeTargetsRequest, PutativeTritonModelTargetsRequest),
        UnionRule(PutativeTargetsRequest, PutativeTritonTestsRequest),
    )
