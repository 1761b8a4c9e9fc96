"""One way to run a tool: a subsystem names its resolve and script, one rule builds its PEX.

Like Pants' `PythonToolRequirementsBase` (and the helm backend's k8s parser), every tool the
plugin runs out of process (DVC, boto3, the conda tools, the Triton test runner, the local MME,
the tarball writer) is a subsystem deriving from `ScriptToolBase`: its `[scope].resolve` and
`[scope].requirements` say what it installs, its class says which scripts of
`triton_mme/scripts/` it runs. `Get(ScriptTool, ScriptToolRequest, subsystem.tool_request())`
builds the venv PEX: the requirements from the resolve's lockfile, on the resolve's Python, with
the scripts as the `triton_mme.scripts` package, so scripts share modules by importing them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from typing import ClassVar, Iterable

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import PexRequest, VenvPex
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.backend.python.util_rules.pex_requirements import PexRequirements, Resolve
from pants.engine.engine_aware import EngineAwareParameter
from pants.core.goals.run import RunRequest
from pants.engine.fs import EMPTY_DIGEST, CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.rules import Get, collect_rules, rule
from pants.option.option_types import StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel
from pants.util.strutil import softwrap

SCRIPTS_PACKAGE = "triton_mme.scripts"


class MissingToolScript(Exception):
    """A tool names a script that is not in the plugin: the plugin is installed incompletely."""


class ScriptToolBase(Subsystem):
    """A tool that runs the plugin's scripts in a venv PEX built from a Python resolve."""

    # What a subclass declares: the resolve and requirements its options default to, the module
    # (under `triton_mme.scripts`) the PEX runs, or None for a PEX that runs as an interpreter
    # (`ScriptTool.argv("module", ...)`), and the script files (or `package/` directories)
    # relative to `triton_mme/scripts/` that go into the PEX.
    default_resolve: ClassVar[str | None] = None
    default_requirements: ClassVar[tuple[str, ...]] = ()
    main_module: ClassVar[str | None] = None
    scripts: ClassVar[tuple[str, ...]] = ()
    requirements_help: ClassVar[str] = ""

    resolve = StrOption(
        default=lambda cls: cls.default_resolve,
        advanced=True,
        help=lambda cls: softwrap(
            f"""
            The Python resolve (a key of `[python].resolves`) this tool is installed from, on
            that resolve's interpreter constraints. Unset: no third-party requirements, on
            `[python].interpreter_constraints`. The `{cls.options_scope}` tool runs
            `{SCRIPTS_PACKAGE}.{cls.main_module or '<script>'}` from this plugin.
            """
        ),
    )
    requirements = StrListOption(
        default=lambda cls: list(cls.default_requirements),
        advanced=True,
        help=lambda cls: softwrap(
            f"""
            The distributions the tool installs from `resolve`. Empty: everything the resolve's
            lockfile holds. Each must be among the resolve's requirements.
            {cls.requirements_help}
            """
        ),
    )

    def tool_request(self) -> ScriptToolRequest:
        return ScriptToolRequest(
            scope=self.options_scope,
            resolve=self.resolve or None,
            requirements=tuple(self.requirements),
            main_module=self.main_module,
            scripts=self.scripts,
        )


@dataclass(frozen=True)
class ScriptToolRequest(EngineAwareParameter):
    scope: str
    resolve: str | None
    requirements: tuple[str, ...]
    main_module: str | None
    scripts: tuple[str, ...]

    def debug_hint(self) -> str:
        return self.scope


@dataclass(frozen=True)
class ScriptTool:
    pex: VenvPex

    @staticmethod
    def argv(module: str, *args: str) -> tuple[str, ...]:
        """Arguments that run `triton_mme.scripts.<module>` in a PEX without a main module."""
        return ("-m", f"{SCRIPTS_PACKAGE}.{module}", *args)


def script_files(scripts: Iterable[str]) -> list[FileContent]:
    """The named scripts as `triton_mme/scripts/...` files, with the packages' `__init__.py`."""
    root = resources.files(SCRIPTS_PACKAGE)
    package_dir = SCRIPTS_PACKAGE.replace(".", "/")
    files = {"triton_mme/__init__.py": b"", f"{package_dir}/__init__.py": b""}
    for script in scripts:
        entry = root.joinpath(script.rstrip("/"))
        if script.endswith("/") and entry.is_dir():
            files[f"{package_dir}/{script}__init__.py"] = b""
            for child in entry.iterdir():
                if child.name.endswith(".py") and not child.name.endswith("_test.py"):
                    files[f"{package_dir}/{script}{child.name}"] = child.read_bytes()
        elif entry.is_file():
            files[f"{package_dir}/{script}"] = entry.read_bytes()
        else:
            raise MissingToolScript(
                f"`{script}` is missing from the {SCRIPTS_PACKAGE} package of the triton_mme "
                "plugin. Reinstall the plugin, or check its `scripts/BUILD` resources."
            )
    return [FileContent(path, content) for path, content in sorted(files.items())]


@rule(desc="Build a tool PEX", level=LogLevel.DEBUG)
async def build_script_tool(request: ScriptToolRequest, python_setup: PythonSetup) -> ScriptTool:
    sources = await Get(Digest, CreateDigest(script_files(request.scripts)))
    constraints = (
        python_setup.resolves_to_interpreter_constraints.get(
            request.resolve, python_setup.interpreter_constraints
        )
        if request.resolve
        else python_setup.interpreter_constraints
    )
    requirements = (
        PexRequirements(
            request.requirements,
            from_superset=Resolve(request.resolve, use_entire_lockfile=not request.requirements),
            description_of_origin=f"the option `[{request.scope}].requirements`",
        )
        if request.resolve
        else PexRequirements()
    )
    pex = await Get(
        VenvPex,
        PexRequest(
            output_filename=f"{request.scope}.pex",
            internal_only=True,
            requirements=requirements,
            interpreter_constraints=InterpreterConstraints(constraints),
            main=EntryPoint(f"{SCRIPTS_PACKAGE}.{request.main_module}")
            if request.main_module
            else None,
            sources=sources,
            description=f"Build the `{request.scope}` tool",
        ),
    )
    return ScriptTool(pex)


@dataclass(frozen=True)
class ForegroundToolRequest(EngineAwareParameter):
    """A tool run by `./pants run` in the foreground, from a temporary chroot.

    `args` name files of `input_digest` as `{chroot}/<path>`; the working directory is the build
    root.
    """

    tool: ScriptToolRequest
    args: tuple[str, ...]
    input_digest: Digest = EMPTY_DIGEST
    extra_env: FrozenDict[str, str] = FrozenDict()

    def debug_hint(self) -> str:
        return self.tool.scope


@rule(desc="Set up a tool to run in the foreground", level=LogLevel.DEBUG)
async def foreground_tool(request: ForegroundToolRequest, pex_env: PexEnvironment) -> RunRequest:
    tool = await Get(ScriptTool, ScriptToolRequest, request.tool)
    digest = await Get(Digest, MergeDigests([tool.pex.digest, request.input_digest]))
    environment = pex_env.in_sandbox(working_directory=None)
    # The venv PEX's shim sets the PEX environment it was built with. Adding any (such as
    # `PEX_PYTHON_PATH`) would make PEX seed the venv under another directory than the shim runs.
    return RunRequest(
        digest=digest,
        args=(os.path.join("{chroot}", tool.pex.pex.argv0), *request.args),
        extra_env=request.extra_env,
        append_only_caches=environment.append_only_caches,
    )


def rules() -> Iterable:
    return collect_rules()
