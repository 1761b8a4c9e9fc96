from __future__ import annotations

import json

import pytest
from pants.core.goals.generate_lockfiles import KnownUserResolveNames, UserGenerateLockfiles
from pants.engine.addresses import Address
from pants.engine.target import HydratedSources, HydrateSourcesRequest, SourcesField
from pants.testutil.rule_runner import QueryRule, RuleRunner
from triton_mme.subsystems.conda import CondaSubsystem
from triton_mme.target_types import TritonPythonEnvTarget
from triton_mme.util_rules.env import lock
from triton_mme.util_rules.env.lock import (
    EnvInputs,
    GenerateEnvLockfile,
    KnownEnvResolveNamesRequest,
    RequestedEnvResolveNames,
    EnvSpecError,
    StaleLockError,
    check_lock_is_current,
    conda_spec_name,
    conda_specs_for,
    parse_lock,
)

ENV = Address("models/detector/python_env")


@pytest.mark.parametrize(
    "spec, name",
    [
        ("numpy", "numpy"),
        ("numpy 1.26.*", "numpy"),
        ("numpy>=1.26,<2", "numpy"),
        ("conda-forge::libgomp >=13", "libgomp"),
        ("  Python_Dateutil ==2.9", "python_dateutil"),
    ],
)
def test_conda_spec_name(spec: str, name: str) -> None:
    assert conda_spec_name(spec) == name


def test_conda_spec_name_rejects_a_version_alone() -> None:
    with pytest.raises(EnvSpecError, match="not a conda match spec"):
        conda_spec_name(">=1.2")


def test_specs_add_python_numpy_and_pip() -> None:
    assert conda_specs_for(ENV, "3.11", ["libgomp"], has_requirements=True) == (
        "python 3.11.*",
        "numpy",
        "pip",
        "libgomp",
    )
    assert conda_specs_for(ENV, "3.12", [], has_requirements=False) == (
        "python 3.12.*",
        "numpy",
    )


def test_specs_keep_the_users_numpy() -> None:
    specs = conda_specs_for(ENV, "3.11", ["numpy 1.26.*"], has_requirements=False)
    assert specs == ("python 3.11.*", "numpy 1.26.*")


def test_specs_reject_python_in_conda_specs_and_bad_versions() -> None:
    with pytest.raises(EnvSpecError, match="`python` field"):
        conda_specs_for(ENV, "3.11", ["python 3.10.*"], has_requirements=False)
    with pytest.raises(EnvSpecError, match='python="3.11.7" must be a major.minor'):
        conda_specs_for(ENV, "3.11.7", [], has_requirements=False)


def inputs(**changes: object) -> EnvInputs:
    values: dict = dict(
        python="3.11",
        conda_specs=("python 3.11.*", "numpy", "pip"),
        channels=("conda-forge",),
        requirements="six==1.17.0\n",
        glibc="2.35",
    )
    values.update(changes)
    return EnvInputs(**values)


def lock_text(inputs_hash: str) -> bytes:
    package = {
        "name": "python",
        "version": "3.11.7",
        "build": "offline_0",
        "file_name": "python-3.11.7-offline_0.tar.bz2",
        "url": "<OFFLINE>/linux-64/python-3.11.7-offline_0.tar.bz2",
        "sha256": "a" * 64,
        "size": 10,
    }
    return json.dumps(
        {"lock_version": 1, "inputs_hash": inputs_hash, "conda": [package], "pip": []}
    ).encode()


def test_requirements_comments_do_not_count() -> None:
    assert not inputs(requirements="# nothing yet\n\n").has_requirements
    assert inputs().has_requirements


@pytest.mark.parametrize(
    "change",
    [
        dict(python="3.12"),
        dict(conda_specs=("python 3.11.*", "numpy 1.26.*", "pip")),
        dict(channels=("<OFFLINE>",)),
        dict(requirements="six==1.16.0\n"),
        dict(glibc="2.36"),
    ],
)
def test_a_changed_input_makes_the_lock_stale(change: dict) -> None:
    lock = parse_lock("models/detector/python_env/python_env.lock", lock_text(inputs().hash))
    assert check_lock_is_current(lock, inputs(), ENV) == inputs().hash
    with pytest.raises(StaleLockError) as e:
        check_lock_is_current(lock, inputs(**change), ENV)
    assert "python_env.lock is out of date" in str(e.value)
    assert f"./pants generate-lockfiles --resolve={ENV}" in str(e.value)


def test_parse_lock_reads_the_python_version_and_offline_urls() -> None:
    lock = parse_lock("python_env.lock", lock_text("h"))
    assert lock.python_version == "3.11"
    (python,) = lock.conda
    assert python.in_offline_channel
    assert python.offline_channel_path == "linux-64/python-3.11.7-offline_0.tar.bz2"


def test_a_broken_lock_names_the_command() -> None:
    with pytest.raises(StaleLockError, match="not a valid env lock.*generate-lockfiles"):
        parse_lock("python_env.lock", b"{}")


# Each env is a resolve of `generate-lockfiles`, named by its address.


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *lock.rules(),
            *CondaSubsystem.rules(),
            QueryRule(KnownUserResolveNames, [KnownEnvResolveNamesRequest]),
            QueryRule(UserGenerateLockfiles, [RequestedEnvResolveNames]),
            QueryRule(HydratedSources, [HydrateSourcesRequest]),
        ],
        target_types=[TritonPythonEnvTarget],
    )


def test_envs_are_resolves_named_by_address(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "models/a/python_env/BUILD": 'triton_python_env(python="3.11")',
            "models/b/env/BUILD": 'triton_python_env(name="cpu", python="3.12")',
            "models/b/env/requirements.txt": "six\n",
        }
    )
    known = rule_runner.request(KnownUserResolveNames, [KnownEnvResolveNamesRequest()])
    assert sorted(known.names) == ["models/a/python_env:python_env", "models/b/env:cpu"]
    assert known.requested_resolve_names_cls is RequestedEnvResolveNames

    requests = rule_runner.request(
        UserGenerateLockfiles, [RequestedEnvResolveNames(["models/b/env:cpu"])]
    )
    assert [(r.resolve_name, r.lockfile_dest) for r in requests] == [
        ("models/b/env:cpu", "models/b/env/python_env.lock")
    ]
    (request,) = requests
    assert isinstance(request, GenerateEnvLockfile)
    assert request.sources.inputs.conda_specs == ("python 3.12.*", "numpy", "pip")


def test_an_env_not_locked_yet_has_no_lock_file_and_that_is_fine(rule_runner: RuleRunner) -> None:
    # `tailor ::` hydrates every target's files: it runs before the first `generate-lockfiles`.
    rule_runner.write_files({"models/a/python_env/BUILD": 'triton_python_env(python="3.11")'})
    env = rule_runner.get_target(Address("models/a/python_env"))
    for field in env.field_values.values():
        if isinstance(field, SourcesField):
            hydrated = rule_runner.request(HydratedSources, [HydrateSourcesRequest(field)])
            assert hydrated.snapshot.files == ()
