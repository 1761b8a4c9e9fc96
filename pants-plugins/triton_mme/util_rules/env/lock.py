"""Env locks: what an env is made of (its inputs), the lock file, and how it is written.

Solving is separate from building: each `triton_python_env` is a resolve of Pants'
`generate-lockfiles` goal, named by its address. `./pants generate-lockfiles --resolve=<address>`
solves the env against its channels (and pip requirements against PyPI) and writes
`python_env.lock` beside it; builds read only the lock. The lock records a hash of the inputs,
so a build notices when the BUILD file or requirements changed after the last lock.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.addresses import Address
from pants.core.goals.generate_lockfiles import (
    GenerateLockfile,
    GenerateLockfileResult,
    KnownUserResolveNames,
    KnownUserResolveNamesRequest,
    RequestedUserResolveNames,
    UserGenerateLockfiles,
)
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    FileContent,
    MergeDigests,
    PathGlobs,
)
from pants.engine.process import ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import AllTargets, WrappedTarget, WrappedTargetRequest
from pants.engine.unions import UnionRule
from pants.option.global_options import GlobalOptions
from pants.util.logging import LogLevel
from triton_mme.util_rules.env.channel import CHANNEL_DIR, OfflineChannel, OfflineChannelRequest
from triton_mme.target_types import (
    ChannelsField,
    CondaSpecsField,
    LockfileSourceField,
    PythonVersionField,
    RequirementsSourceField,
    TritonPythonEnvTarget,
    lock_command,
)
from triton_mme.subsystems.tool import ScriptTool, ScriptToolRequest
from triton_mme.subsystems.conda import OFFLINE_CHANNEL, CondaSubsystem

LOCK_VERSION = 1
_PYTHON_VERSION = re.compile(r"^3\.\d+$")
_SPEC_NAME = re.compile(r"^(?:[^:\s]+::)?([A-Za-z0-9_][A-Za-z0-9_.\-]*)")


class EnvSpecError(ValueError):
    """A problem with an env's BUILD fields, phrased for the person who wrote them."""


class StaleLockError(ValueError):
    pass


def conda_spec_name(spec: str) -> str:
    """The package name of a conda match spec: `conda-forge::numpy >=1.26` -> `numpy`."""
    match = _SPEC_NAME.match(spec.strip())
    if not match:
        raise EnvSpecError(
            f"`{spec}` is not a conda match spec: write a package name, optionally followed by "
            'a version, e.g. "numpy", "numpy 1.26.*" or "numpy >=1.26,<2".'
        )
    return match.group(1).lower()


def conda_specs_for(
    address: Address, python: str, extra_specs: Iterable[str], has_requirements: bool
) -> tuple[str, ...]:
    """The specs to solve: python, numpy and pip (unless named explicitly), then the extras."""
    if not _PYTHON_VERSION.match(python):
        raise EnvSpecError(
            f'{address}: python="{python}" must be a major.minor version such as "3.11".'
        )
    extras = tuple(spec.strip() for spec in extra_specs)
    named = {conda_spec_name(spec) for spec in extras}
    implied = {"python": f"python {python}.*", "numpy": "numpy"}
    if has_requirements:
        implied["pip"] = "pip"
    if "python" in named:
        raise EnvSpecError(
            f"{address}: give the Python version with the `python` field, not in " "`conda_specs`."
        )
    return (*(spec for name, spec in implied.items() if name not in named), *extras)


@dataclass(frozen=True)
class EnvInputs:
    """Everything the solve depends on. Its hash goes into the lock."""

    python: str
    conda_specs: tuple[str, ...]
    channels: tuple[str, ...]
    requirements: str
    glibc: str

    def as_json(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "conda_specs": list(self.conda_specs),
            "channels": list(self.channels),
            "requirements_sha256": hashlib.sha256(self.requirements.encode()).hexdigest(),
            "glibc": self.glibc,
        }

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{LOCK_VERSION}:{canonical}".encode()).hexdigest()

    @property
    def has_requirements(self) -> bool:
        return lists_requirements(self.requirements)


def lists_requirements(requirements_text: str) -> bool:
    """Whether a requirements file names any package (not just comments and blank lines)."""
    return any(line.split("#", 1)[0].strip() for line in requirements_text.splitlines())


@dataclass(frozen=True)
class LockedFile:
    """One conda package or wheel of a lock, by URL (`<OFFLINE>/...` for the offline channel)."""

    name: str
    version: str
    file_name: str
    url: str
    sha256: str
    size: int

    @property
    def in_offline_channel(self) -> bool:
        return self.url.startswith(f"{OFFLINE_CHANNEL}/")

    @property
    def offline_channel_path(self) -> str:
        return self.url[len(OFFLINE_CHANNEL) + 1 :]


@dataclass(frozen=True)
class EnvLock:
    path: str
    inputs_hash: str
    conda: tuple[LockedFile, ...]
    pip: tuple[LockedFile, ...]
    text: bytes

    @property
    def python_version(self) -> str:
        """major.minor of the locked `python` package."""
        for package in self.conda:
            if package.name == "python":
                return ".".join(package.version.split(".")[:2])
        raise ValueError(f"{self.path}: the lock has no `python` package.")

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text).hexdigest()


def parse_lock(path: str, text: bytes) -> EnvLock:
    try:
        data = json.loads(text)
        if data.get("lock_version") != LOCK_VERSION:
            raise ValueError(f"lock_version {data.get('lock_version')} is not {LOCK_VERSION}")

        def files(section: str) -> tuple[LockedFile, ...]:
            return tuple(
                LockedFile(
                    name=entry["name"],
                    version=entry["version"],
                    file_name=entry["file_name"],
                    url=entry["url"],
                    sha256=entry["sha256"],
                    size=int(entry["size"]),
                )
                for entry in data[section]
            )

        return EnvLock(
            path=path,
            inputs_hash=data["inputs_hash"],
            conda=files("conda"),
            pip=files("pip"),
            text=text,
        )
    except (ValueError, KeyError, TypeError) as e:
        raise StaleLockError(
            f"{path} is not a valid env lock ({e}). Write it again with "
            f"`./pants generate-lockfiles --resolve=<env address>`."
        ) from e


def check_lock_is_current(lock: EnvLock, inputs: EnvInputs, address: Address) -> str:
    """Returns the inputs hash the lock was written for, when it is the env's current one."""
    if lock.inputs_hash != inputs.hash:
        raise StaleLockError(
            f"{lock.path} is out of date: the env's python, conda_specs, channels or "
            f"requirements changed since it was written. Run `{lock_command(address)}` and "
            "commit the new lock."
        )
    return lock.inputs_hash


@dataclass(frozen=True)
class EnvSourcesRequest(EngineAwareParameter):
    address: Address

    def debug_hint(self) -> str:
        return self.address.spec


@dataclass(frozen=True)
class EnvSources:
    """An env target's inputs and its lock (None when there is no lock file yet)."""

    address: Address
    inputs: EnvInputs
    lock_path: str
    lock: EnvLock | None


@rule
async def read_env_sources(request: EnvSourcesRequest, conda: CondaSubsystem) -> EnvSources:
    wrapped = await Get(
        WrappedTarget,
        WrappedTargetRequest(request.address, description_of_origin="a triton_python_env"),
    )
    target = wrapped.target
    # Both files are optional (a conda-only env; an env not locked yet): read them as globs.
    requirements_path = target[RequirementsSourceField].file_path
    lock_path = target[LockfileSourceField].file_path
    requirements_contents, lock_contents = await MultiGet(
        Get(DigestContents, PathGlobs([requirements_path])),
        Get(DigestContents, PathGlobs([lock_path])),
    )
    requirements_text = requirements_contents[0].content.decode() if requirements_contents else ""
    python = target[PythonVersionField].value or ""
    inputs = EnvInputs(
        python=python,
        conda_specs=conda_specs_for(
            target.address,
            python,
            target[CondaSpecsField].value or (),
            lists_requirements(requirements_text),
        ),
        channels=tuple(target[ChannelsField].value or conda.channels),
        requirements=requirements_text,
        glibc=conda.glibc_version,
    )
    lock = parse_lock(lock_path, lock_contents[0].content) if lock_contents else None
    return EnvSources(address=target.address, inputs=inputs, lock_path=lock_path, lock=lock)


@dataclass(frozen=True)
class EnvLockRequest(EngineAwareParameter):
    sources: EnvSources

    def debug_hint(self) -> str:
        return self.sources.address.spec


@dataclass(frozen=True)
class GeneratedEnvLock:
    path: str
    digest: Digest


@rule(desc="Solve a conda env", level=LogLevel.DEBUG)
async def solve_env(
    request: EnvLockRequest, conda: CondaSubsystem, global_options: GlobalOptions
) -> GeneratedEnvLock:
    sources = request.sources
    inputs = sources.inputs
    solve_request = {
        "command": lock_command(sources.address),
        "inputs_hash": inputs.hash,
        "inputs": inputs.as_json(),
        "channels": list(inputs.channels),
        "offline_channel_dir": CHANNEL_DIR,
        "conda_specs": list(inputs.conda_specs),
        "glibc": inputs.glibc,
        "python": inputs.python,
        "requirements_path": "requirements.txt",
        "has_requirements": inputs.has_requirements,
    }
    tools = await Get(ScriptTool, ScriptToolRequest, conda.tool_request())
    digests = [
        await Get(
            Digest,
            CreateDigest(
                [
                    FileContent("request.json", json.dumps(solve_request).encode()),
                    FileContent("requirements.txt", inputs.requirements.encode()),
                ]
            ),
        ),
    ]
    if OFFLINE_CHANNEL in inputs.channels:
        digests.append((await Get(OfflineChannel, OfflineChannelRequest())).digest)
    ca_certs = global_options.ca_certs_path
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tools.pex,
            argv=tools.argv("lock_env", "--request=request.json", "--out=python_env.lock"),
            input_digest=await Get(Digest, MergeDigests(digests)),
            extra_env={"SSL_CERT_FILE": ca_certs, "PIP_CERT": ca_certs} if ca_certs else None,
            output_files=("python_env.lock",),
            description=f"Solve the conda env {sources.address}",
            level=LogLevel.INFO,
            # Channels and PyPI change over time: a lock is always solved afresh.
            cache_scope=ProcessCacheScope.PER_SESSION,
        ),
    )
    contents = await Get(DigestContents, Digest, result.output_digest)
    lock = await Get(Digest, CreateDigest([FileContent(sources.lock_path, contents[0].content)]))
    return GeneratedEnvLock(path=sources.lock_path, digest=lock)


# ---------------------------------------------------------------------------------------------
# `./pants generate-lockfiles --resolve=<env address>`: each env is a resolve of its own


class KnownEnvResolveNamesRequest(KnownUserResolveNamesRequest):
    pass


class RequestedEnvResolveNames(RequestedUserResolveNames):
    pass


@dataclass(frozen=True)
class GenerateEnvLockfile(GenerateLockfile):
    sources: EnvSources


def env_resolve_name(address: Address) -> str:
    """An env's resolve name for `generate-lockfiles --resolve`: its address."""
    return str(address)


@rule
async def known_env_resolve_names(
    _: KnownEnvResolveNamesRequest, targets: AllTargets
) -> KnownUserResolveNames:
    return KnownUserResolveNames(
        names=tuple(
            env_resolve_name(t.address) for t in targets if isinstance(t, TritonPythonEnvTarget)
        ),
        option_name="the addresses of `triton_python_env` targets",
        requested_resolve_names_cls=RequestedEnvResolveNames,
    )


@rule
async def env_lockfile_requests(
    requested: RequestedEnvResolveNames, targets: AllTargets
) -> UserGenerateLockfiles:
    addresses = [
        t.address
        for t in targets
        if isinstance(t, TritonPythonEnvTarget) and env_resolve_name(t.address) in requested
    ]
    all_sources = await MultiGet(
        Get(EnvSources, EnvSourcesRequest(address)) for address in addresses
    )
    return UserGenerateLockfiles(
        GenerateEnvLockfile(
            resolve_name=env_resolve_name(sources.address),
            lockfile_dest=sources.lock_path,
            diff=False,
            sources=sources,
        )
        for sources in all_sources
    )


@rule(desc="Generate a conda env lock", level=LogLevel.DEBUG)
async def generate_env_lockfile(request: GenerateEnvLockfile) -> GenerateLockfileResult:
    lock = await Get(GeneratedEnvLock, EnvLockRequest(request.sources))
    return GenerateLockfileResult(lock.digest, request.resolve_name, lock.path)


def rules() -> Iterable:
    return (
        *collect_rules(),
        UnionRule(KnownUserResolveNamesRequest, KnownEnvResolveNamesRequest),
        UnionRule(RequestedUserResolveNames, RequestedEnvResolveNames),
        UnionRule(GenerateLockfile, GenerateEnvLockfile),
    )
