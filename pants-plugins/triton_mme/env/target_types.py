"""`triton_python_env`: a conda env for python-backend models, and the model field naming it."""

from __future__ import annotations

from pants.core.goals.package import OutputPathField
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    SingleSourceField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.engine.fs import GlobMatchErrorBehavior
from pants.util.strutil import help_text
from triton_mme.subsystems.conda import OFFLINE_CHANNEL

ENV_ARCHIVE_NAME = "python_env.tar.gz"
LOCK_COMMAND = "./pants generate-env-locks"


class PythonVersionField(StringField):
    alias = "python"
    required = True
    help = help_text(
        """
        The env's Python version, `major.minor` (e.g. "3.11"). It must be the version of the
        python backend stub of the Triton image that serves the model (`[triton]
        image_python_versions`): Triton cannot run an env of another Python.
        """
    )


class CondaSpecsField(StringSequenceField):
    alias = "conda_specs"
    default = ()
    help = help_text(
        """
        Extra conda packages, as conda match specs (`"numpy 1.26.*"`, `"libgomp >=13"`). Python
        (from `python`), numpy (Triton's python backend needs it) and pip (when there are pip
        requirements) are added unless you name them here yourself.
        """
    )


class RequirementsSourceField(SingleSourceField):
    alias = "requirements"
    default = "requirements.txt"
    required = False
    default_glob_match_error_behavior = GlobMatchErrorBehavior.ignore
    expected_file_extensions = (".txt",)
    help = help_text(
        """
        A pip requirements file beside the BUILD file. Its packages are installed with pip into
        the env, from wheels only, at the exact versions and hashes of the lock. Leave the file
        out for a conda-only env.
        """
    )


class ChannelsField(StringSequenceField):
    alias = "channels"
    help = help_text(
        f"""
        Conda channels to solve from, in priority order. Defaults to `[conda].channels`
        (conda-forge unless the repo says otherwise; `{OFFLINE_CHANNEL}` is the channel this repo
        builds offline).
        """
    )


class LockfileSourceField(SingleSourceField):
    alias = "lockfile"
    default = "python_env.lock"
    required = False
    default_glob_match_error_behavior = GlobMatchErrorBehavior.ignore
    help = help_text(
        f"""
        The env's lock file: every conda package and pip wheel with its exact URL and sha256.
        Commit it. `{LOCK_COMMAND} <this target>` writes it; builds install only what it
        lists.
        """
    )


class PythonEnvOutputPathField(OutputPathField):
    pass


class TritonPythonEnvTarget(Target):
    alias = "triton_python_env"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        PythonVersionField,
        CondaSpecsField,
        RequirementsSourceField,
        ChannelsField,
        LockfileSourceField,
        PythonEnvOutputPathField,
    )
    help = help_text(
        f"""
        A conda env for Triton python-backend models, shipped as `{ENV_ARCHIVE_NAME}` in each
        model directory that uses it (config.pbtxt's `EXECUTION_ENV_PATH`).

        `{LOCK_COMMAND}` solves it into a lock file; `package` builds it from the lock alone,
        reproducibly (the same lock gives the same archive bytes). A `triton_model` uses the env
        named by its `python_env` field, or the only env in its directory tree.
        """
    )


class ModelPythonEnvField(StringField):
    """Registered on `triton_model` as a plugin field."""

    alias = "python_env"
    help = help_text(
        f"""
        The address of the `triton_python_env` this python-backend model runs in (e.g.
        `models/detector/python_env`). When unset, the one env target found in the model's
        directory or below, or else in the nearest parent directory that has one, is used. The
        model's config.pbtxt must point `EXECUTION_ENV_PATH` at
        `$$TRITON_MODEL_DIRECTORY/{ENV_ARCHIVE_NAME}`.
        """
    )
