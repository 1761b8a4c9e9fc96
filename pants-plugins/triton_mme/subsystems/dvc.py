"""The `[dvc]` options, and the DVC tool PEX that fetches DVC-tracked weights in a sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import PexRequest, VenvPex
from pants.backend.python.util_rules.pex_requirements import PexRequirements, Resolve
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.rules import Get, collect_rules, rule
from pants.option.option_types import StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.resources import read_resource
from pants.util.strutil import softwrap

FETCH_SCRIPT_PACKAGE = "triton_mme.scripts"
FETCH_SCRIPT = "dvc_fetch.py"
_FETCH_MODULE = "__triton_mme_dvc_fetch"

# Values of these would be secrets in a process's cache key (and in a remote cache's records).
SECRET_ENV_VARS = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"}
)


class DvcSubsystem(Subsystem):
    options_scope = "dvc"
    name = "DVC"
    help = softwrap(
        """
        How `package` and `test` fetch DVC-tracked weights: DVC runs from its own resolve, in a
        sandbox holding `.dvc/config` and the pointer files of the models being built.
        """
    )

    resolve = StrOption(
        default="dvc",
        advanced=True,
        help=softwrap(
            """
            The Python resolve (from `[python].resolves`) DVC is installed from. It must provide
            the `requirements` below.
            """
        ),
    )
    requirements = StrListOption(
        default=["dvc", "dvc-s3"],
        advanced=True,
        help=softwrap(
            """
            The distributions the DVC tool installs from `resolve`: DVC and the plugins for the
            remote kinds you use (`dvc-s3` for S3 and S3-compatible stores; local directories
            need none). Add e.g. `dvc-gs` here and to the resolve's requirements for Google
            Cloud Storage.
            """
        ),
    )
    env_vars = StrListOption(
        default=[
            "AWS_PROFILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_CONFIG_FILE",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
            "AWS_CA_BUNDLE",
        ],
        help=softwrap(
            f"""
            Environment variables passed to DVC, as `NAME` (value from Pants' environment) or
            `NAME=value`. Values become part of the fetch's cache key, so pass the *location* of
            credentials (a profile name, a credentials file), never the credentials themselves:
            {', '.join(sorted(SECRET_ENV_VARS))} are refused. DVC and botocore read the
            credentials at run time; see docs/weights.md.
            """
        ),
    )

    def checked_env_vars(self) -> tuple[str, ...]:
        secrets = sorted({entry.split("=", 1)[0] for entry in self.env_vars} & SECRET_ENV_VARS)
        if secrets:
            raise ValueError(
                f"[dvc].env_vars lists {', '.join(secrets)}: credentials must not be passed as "
                "environment variables, since those are part of the fetch's cache key. Put them "
                "in an AWS credentials file or profile instead (e.g. `aws configure --profile "
                "ci`, then pass `AWS_PROFILE`, or write the file and pass "
                "`AWS_SHARED_CREDENTIALS_FILE`); see docs/weights.md."
            )
        return tuple(self.env_vars)


@dataclass(frozen=True)
class DvcFetchTool:
    """DVC plus our fetch-and-verify script (`scripts/dvc_fetch.py`) as its entry point."""

    pex: VenvPex


@rule
async def build_dvc_fetch_tool(dvc: DvcSubsystem, python_setup: PythonSetup) -> DvcFetchTool:
    script = await Get(
        Digest,
        CreateDigest(
            [FileContent(f"{_FETCH_MODULE}.py", read_resource(FETCH_SCRIPT_PACKAGE, FETCH_SCRIPT))]
        ),
    )
    constraints = python_setup.resolves_to_interpreter_constraints.get(
        dvc.resolve, python_setup.interpreter_constraints
    )
    tool = await Get(
        VenvPex,
        PexRequest(
            output_filename="dvc_fetch.pex",
            internal_only=True,
            requirements=PexRequirements(
                dvc.requirements,
                from_superset=Resolve(dvc.resolve, use_entire_lockfile=False),
                description_of_origin="the option `[dvc].requirements`",
            ),
            interpreter_constraints=InterpreterConstraints(constraints),
            main=EntryPoint(_FETCH_MODULE),
            sources=script,
        ),
    )
    return DvcFetchTool(tool)


def rules() -> Iterable:
    return (*collect_rules(), *DvcSubsystem.rules())
