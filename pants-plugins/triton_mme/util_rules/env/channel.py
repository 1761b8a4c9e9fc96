"""The offline conda channel (`<OFFLINE>`), built by Pants from this machine's CPython and wheels.

The channel is a digest, not a directory somewhere on the machine: a cached process builds it
from pinned inputs (the wheels, by URL and sha256, and the CPython install, by a fingerprint of
its files), so a fresh clone gets it on its first `package`, and later runs reuse it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import (
    AddPrefix,
    Digest,
    DownloadFile,
    FileDigest,
    MergeDigests,
)
from pants.engine.process import Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel
from triton_mme.subsystems.tool import ScriptTool, ScriptToolRequest
from triton_mme.subsystems.conda import CondaSubsystem

CHANNEL_DIR = "offline_channel"
# ldd, which finds the system libraries CPython needs, is part of every glibc install.
SYSTEM_PATH = "/usr/bin:/bin"


@dataclass(frozen=True)
class PinnedWheel:
    url: str
    sha256: str
    size: int

    @classmethod
    def parse(cls, pin: str) -> PinnedWheel:
        parts = pin.split("|")
        if len(parts) != 3 or not parts[2].isdigit() or len(parts[1]) != 64:
            raise ValueError(
                f"[conda].offline_channel_wheels: `{pin}` is not `URL|sha256|size`. Get the "
                "sha256 and size of a wheel with `sha256sum FILE` and `stat -c %s FILE`."
            )
        return cls(url=parts[0], sha256=parts[1], size=int(parts[2]))

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class OfflineChannelRequest:
    pass


@dataclass(frozen=True)
class OfflineChannel:
    """A conda channel whose root is `offline_channel/` in `digest`."""

    digest: Digest


def expand_python_prefix(configured: str, env: Mapping[str, str]) -> str:
    """`<PYENV>` is $PYENV_ROOT, else ~/.pyenv, as in `[python-bootstrap].search_path`."""
    pyenv_root = env.get("PYENV_ROOT") or os.path.join(env.get("HOME") or "~", ".pyenv")
    return os.path.expanduser(configured.replace("<PYENV>", pyenv_root))


@rule(desc="Build the offline conda channel", level=LogLevel.DEBUG)
async def build_offline_channel(_: OfflineChannelRequest, conda: CondaSubsystem) -> OfflineChannel:
    env, tools = await MultiGet(
        Get(EnvironmentVars, EnvironmentVarsRequest(["PYENV_ROOT", "HOME"])),
        Get(ScriptTool, ScriptToolRequest, conda.tool_request()),
    )
    python_prefix = expand_python_prefix(conda.offline_channel_python, env)
    wheels = [PinnedWheel.parse(pin) for pin in conda.offline_channel_wheels]
    downloads = await MultiGet(
        Get(Digest, DownloadFile(w.url, FileDigest(w.sha256, w.size))) for w in wheels
    )
    # The CPython install lives outside the repo: its fingerprint (file names, sizes and the
    # interpreter's bytes) joins the channel build's cache key, so a changed install rebuilds.
    # Like Pants' own search for binaries (`executable_search_path_cache_scope`), it is taken
    # once per pantsd lifetime, not on every run: after changing the install, restart pantsd
    # (or run with --no-pantsd) so that the next run notices.
    fingerprint = await Get(
        ProcessResult,
        VenvPexProcess(
            tools.pex,
            argv=tools.argv(
                "build_offline_channel", "fingerprint", f"--python-prefix={python_prefix}"
            ),
            description=f"Fingerprint the CPython install at {python_prefix}",
            level=LogLevel.DEBUG,
            cache_scope=ProcessCacheScope.PER_RESTART_SUCCESSFUL,
        ),
    )
    wheels_digest = await Get(
        Digest, AddPrefix(await Get(Digest, MergeDigests(downloads)), "wheels")
    )
    process = await Get(
        Process,
        VenvPexProcess(
            tools.pex,
            argv=tools.argv(
                "build_offline_channel",
                "build",
                f"--python-prefix={python_prefix}",
                f"--python-fingerprint={fingerprint.stdout.decode().strip()}",
                "--wheels=wheels",
                f"--out={CHANNEL_DIR}",
            ),
            input_digest=wheels_digest,
            extra_env={"PATH": SYSTEM_PATH},
            output_directories=(CHANNEL_DIR,),
            description=(
                f"Build the offline conda channel from {python_prefix} and {len(wheels)} wheels"
            ),
            level=LogLevel.INFO,
        ),
    )
    result = await Get(ProcessResult, Process, process)
    return OfflineChannel(digest=result.output_digest)


def rules() -> Iterable:
    return collect_rules()
