"""The `[dvc]` options: the DVC tool that fetches DVC-tracked weights in a sandbox."""

from __future__ import annotations

from typing import Iterable

from pants.option.option_types import StrListOption
from pants.util.strutil import softwrap
from triton_mme.subsystems import tool
from triton_mme.subsystems.s3 import SECRET_ENV_VARS
from triton_mme.subsystems.tool import ScriptToolBase


class DvcSubsystem(ScriptToolBase):
    options_scope = "dvc"
    name = "DVC"
    default_resolve = "dvc"
    default_requirements = ("dvc", "dvc-s3")
    main_module = "dvc_fetch"
    scripts = ("dvc_fetch.py",)
    requirements_help = (
        "DVC and the plugins for the remote kinds you use (`dvc-s3` for S3 and S3-compatible "
        "stores; local directories need none). Add e.g. `dvc-gs` here and to the resolve's "
        "requirements for Google Cloud Storage."
    )
    help = softwrap(
        """
        How `package` and `test` fetch DVC-tracked weights: DVC runs from its own resolve, in a
        sandbox holding `.dvc/config` and the pointer files of the models being built.
        """
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


def rules() -> Iterable:
    return (*DvcSubsystem.rules(), *tool.rules())
