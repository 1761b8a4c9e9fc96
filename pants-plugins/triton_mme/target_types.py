"""The BUILD-file vocabulary of a Triton model repository: `triton_model` and `triton_ensemble`.

A data scientist keeps one directory per model in Triton's own layout (`config.pbtxt` and numeric
version folders) and writes a one-line BUILD file; every field below has a default that fits that
layout.
"""

from __future__ import annotations

import os

from pants.core.goals.package import OutputPathField
from pants.core.goals.test import TestTimeoutField
from pants.engine.fs import GlobMatchErrorBehavior
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    AsyncFieldMixin,
    BoolField,
    Dependencies,
    IntField,
    MultipleSourcesField,
    SingleSourceField,
    StringField,
    StringSequenceField,
    SecondaryOwnerMixin,
    Target,
)
from pants.util.strutil import help_text
from triton_mme.config.ensemble import ENSEMBLE_TARGET_ALIAS, MODEL_TARGET_ALIAS
from triton_mme.config.model import ENV_ARCHIVE_NAME
from triton_mme.subsystems.conda import OFFLINE_CHANNEL
from triton_mme.subsystems.package import COMPRESSION_HELP, TarballCompression

MODEL_VERSION_FILE = "model_version.txt"


class TritonModelNameField(StringField):
    alias = "model_name"
    help = help_text(
        """
        The Triton model name: the directory name inside the model repository and the name other
        models (ensembles) use to refer to this one.

        Defaults to the name of the directory holding the BUILD file. If config.pbtxt has a
        `name`, it must be the same.
        """
    )


# `config` and `model_version_file` name files of the model directory rather than being source
# fields of their own: Pants treats a target's first source field (by alias) as all of its files,
# and that must be `sources`, which covers the whole directory.
class TritonConfigSourceField(StringField, AsyncFieldMixin):
    alias = "config"
    default = "config.pbtxt"
    help = help_text(
        """
        The model's Triton configuration (protobuf text format), as a path relative to the
        BUILD file's directory.
        """
    )

    def path(self) -> str:
        return os.path.join(self.address.spec_path, self.value or self.default)


class TritonVersionSourcesField(MultipleSourcesField):
    alias = "sources"
    default = (
        "*.pbtxt",
        "*.txt",
        "[0-9]*/**",
        "!**/BUILD*",
        "!**/*.dvc",
        "!**/.gitignore",
        "!**/.gitkeep",
        "!**/__pycache__/**",
        "!**/*.pyc",
        "!**/.DS_Store",
        "!**/.ipynb_checkpoints/**",
        "!**/*~",
        "!**/*.swp",
    )
    help = help_text(
        """
        The files of the model directory: its config, its version file, and the files of its
        numeric version folders (`1/model.py`, `1/model.onnx`, ...), which are what goes into
        the model's directory in a tarball.

        The default takes config.pbtxt, the `.txt` files beside it (model_version.txt, label
        files named by `label_filename`) and every file under folders whose name starts with a
        digit, without BUILD files, DVC pointers, `__pycache__` and editor or OS litter.
        """
    )


# A target's primary owner of files is its first source field by alias (`sources` here), so the
# second one must also claim its files as a secondary owner: then `--changed-since` maps a changed
# pointer to the model (the same holds for the env's requirements and lock below).
class TritonWeightsField(MultipleSourcesField, SecondaryOwnerMixin):
    alias = "weights"
    default = ("[0-9]*/**/*.dvc",)
    # Most models have no DVC-tracked weights: the default matching nothing is no mistake.
    default_glob_match_error_behavior = GlobMatchErrorBehavior.ignore
    expected_file_extensions = (".dvc",)
    help = help_text(
        """
        DVC pointer files (`.dvc`) in the version folders: the weights DVC tracks for this model.

        `package` and `test` fetch what each pointer names from the repo's DVC remote (see
        `.dvc/config`), check the md5 of every byte, and put the files where the pointer says,
        e.g. `1/model.onnx.dvc` gives `1/model.onnx`. To track a file: `dvc add 1/model.onnx`,
        commit the pointer, then `dvc push`.
        """
    )


class TritonArtifactVersionField(StringField):
    alias = "artifact_version"
    help = help_text(
        f"""
        The version in the published tarball's name, `<model_name>_<artifact_version>.tar.gz`.
        SageMaker serves the tarball under that name (its TargetModel), so every change that is
        published needs a new version.

        Defaults to the content of `{MODEL_VERSION_FILE}` beside the BUILD file. Allowed
        characters: letters, digits, `.`, `-` and `_`.
        """
    )


class TritonModelVersionFileField(StringField, AsyncFieldMixin):
    alias = "model_version_file"
    default = MODEL_VERSION_FILE
    help = help_text(
        f"""
        The file holding the artifact version (see `artifact_version`), relative to the BUILD
        file's directory. A model with neither a `{MODEL_VERSION_FILE}` nor an `artifact_version`
        cannot be packaged on its own.
        """
    )

    def path(self) -> str:
        return os.path.join(self.address.spec_path, self.value or self.default)


class TritonDependenciesField(Dependencies):
    help = help_text(
        """
        Other targets this model needs. Ensemble steps are inferred from config.pbtxt: list only
        what cannot be inferred.
        """
    )


class TritonEnsembleMemberOnlyField(BoolField):
    alias = "ensemble_member_only"
    default = False
    help = help_text(
        """
        Set to True for a model that is only ever served as a step of an ensemble: `package` and
        `publish` then skip it on its own (it still goes into every ensemble tarball that uses
        it, and needs no `model_version.txt`). Default False: every `triton_model` is also
        packaged and published on its own.
        """
    )


class TritonModelOutputPathField(OutputPathField):
    help = help_text(
        """
        Where `package` writes the tarball, relative to `dist/`. Defaults to
        `<path to the BUILD file>/<model_name>_<artifact_version>.tar.gz`.
        """
    )


class TritonCompressionField(StringField):
    alias = "compression"
    valid_choices = TarballCompression
    help = help_text(
        f"""
        How this model's tarball is compressed; defaults to `[triton-package].compression`.

        {COMPRESSION_HELP}
        """
    )


_COMMON_MODEL_FIELDS = (
    *COMMON_TARGET_FIELDS,
    TritonModelNameField,
    TritonConfigSourceField,
    TritonVersionSourcesField,
    TritonArtifactVersionField,
    TritonModelVersionFileField,
    TritonDependenciesField,
    TritonModelOutputPathField,
    TritonCompressionField,
)


class TritonModelTarget(Target):
    alias = MODEL_TARGET_ALIAS
    core_fields = (*_COMMON_MODEL_FIELDS, TritonWeightsField, TritonEnsembleMemberOnlyField)
    help = help_text(
        """
        A Triton model directory: config.pbtxt plus numeric version folders, as Triton's model
        repository layout has it (python backend, ONNX, TorchScript, ...).

        `package` builds `<model_name>_<artifact_version>.tar.gz`, the tarball SageMaker
        multi-model endpoints load.
        """
    )


class TritonEnsembleTarget(Target):
    alias = ENSEMBLE_TARGET_ALIAS
    core_fields = _COMMON_MODEL_FIELDS
    help = help_text(
        """
        A Triton ensemble (config.pbtxt with `platform: "ensemble"`): a pipeline of other models.

        Its steps are found from `ensemble_scheduling` and become dependencies. `package` builds
        one tarball holding the ensemble and every model it needs, as SageMaker multi-model
        endpoints expect.
        """
    )


class TritonSkipPublishField(BoolField):
    alias = "skip_publish"
    default = False
    help = help_text(
        """
        Set to True to keep this model out of `publish` (it is still packaged and tested), e.g.
        for an experiment that must not reach the endpoints.
        """
    )


# ---------------------------------------------------------------------------------------------
# The tests of a model: `triton_test`


CASE_FILE_EXTENSIONS = (".json", ".npy", ".npz")


class TritonTestSourcesField(MultipleSourcesField):
    default = (
        "tests/*.json",
        "tests/*.npy",
        "tests/*.npz",
        "tests/test_*.py",
        "tests/*_test.py",
        "tests/conftest.py",
    )
    expected_file_extensions = (*CASE_FILE_EXTENSIONS, ".py")
    help = help_text(
        """
        The test files: JSON case files (each one or more requests with expected outputs, see
        docs/testing.md), the `.npy`/`.npz` tensors they refer to, and pytest files that use the
        `triton` fixture.

        JSON files are cases; `.npy`/`.npz` files are data for them; `test_*.py`/`*_test.py`
        files run with pytest once the server is up.
        """
    )


class TritonTestModelField(StringField):
    alias = "model"
    help = help_text(
        """
        The address of the `triton_model` or `triton_ensemble` under test, e.g.
        `models/screen_detection/pipeline`.

        Defaults to the one model or ensemble target in this BUILD file's directory.
        """
    )


class TritonTestDependenciesField(Dependencies):
    help = help_text(
        """
        Extra targets the tests need. The model under test (see `model`) is added for you.
        """
    )


class TritonTestTimeoutField(TestTimeoutField):
    help = help_text(
        """
        Seconds this target's cases and pytest files may take once the server is up (server
        start-up has its own limit, `[triton].startup_timeout`).

        If unset, `[test].timeout_default` applies (if set); never more than
        `[test].timeout_maximum`. Ignored with `--no-test-timeouts`.
        """
    )


class TritonTestShareServerField(BoolField):
    alias = "share_server"
    default = True
    help = help_text(
        """
        Whether the model may be served by one Triton server together with the models of other
        `triton_test` targets (much faster: one container per batch instead of one per test).

        Set to False for a model that must run alone, e.g. one that changes global state of the
        server.
        """
    )


class TritonTestTarget(Target):
    alias = "triton_test"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        TritonTestSourcesField,
        TritonTestModelField,
        TritonTestDependenciesField,
        TritonTestTimeoutField,
        TritonTestShareServerField,
    )
    help = help_text(
        """
        Tests of a Triton model or ensemble, run by `./pants test` against a real Triton server
        in Docker serving exactly the model directories `package` ships.

        Put case files (`tests/*.json`, with `.npy`/`.npz` tensors) and pytest files
        (`tests/test_*.py`) beside the model and add `triton_test()` to the model's BUILD file
        (`./pants tailor` does it for you). See docs/testing.md.
        """
    )


# ---------------------------------------------------------------------------------------------
# Conda envs of python-backend models: `triton_python_env`


def lock_command(env_address: object) -> str:
    """The command that (re)writes the lock of the env at `env_address`."""
    return f"./pants generate-lockfiles --resolve={env_address}"


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


class RequirementsSourceField(SingleSourceField, SecondaryOwnerMixin):
    alias = "requirements"
    default = "requirements.txt"
    required = False
    default_glob_match_error_behavior = GlobMatchErrorBehavior.ignore
    # A conda-only env has none. (Pants checks ranges; SingleSourceField only types it `int`.)
    expected_num_files = range(0, 2)  # type: ignore[assignment]
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


class LockfileSourceField(SingleSourceField, SecondaryOwnerMixin):
    alias = "lockfile"
    default = "python_env.lock"
    required = False
    default_glob_match_error_behavior = GlobMatchErrorBehavior.ignore
    # None until the first `generate-lockfiles`; `tailor` and the lock goal must work before it.
    expected_num_files = range(0, 2)  # type: ignore[assignment]
    help = help_text(
        f"""
        The env's lock file: every conda package and pip wheel with its exact URL and sha256.
        Commit it. `{lock_command('<this target>')}` writes it; builds install only what it
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

        `{lock_command('<address>')}` solves it into a lock file (every env is a resolve of
        `generate-lockfiles`, named by its address); `package` builds it from the lock alone,
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
        directory or below is used; else, walking up from the model, the one found in the first
        parent directory that has one in itself or in a folder directly inside it (so a group's
        `python_env/` folder beside its model directories counts). `./pants tailor` writes this
        field when exactly one env fits. The
        model's config.pbtxt must point `EXECUTION_ENV_PATH` at
        `$$TRITON_MODEL_DIRECTORY/{ENV_ARCHIVE_NAME}`.

        The env the model ships is one of its dependencies: a change to the env's BUILD file,
        requirements or lock also counts as a change of the model for `--changed-since`.
        """
    )


# ---------------------------------------------------------------------------------------------
# The local multi-model endpoint: `triton_mme_endpoint`


class ModelSourceField(StringField):
    alias = "model_source"
    default = "dist"
    help = help_text(
        """
        Where the endpoint finds tarballs: a directory relative to the repository root (`dist`,
        where `pants package` writes `<model_name>_<version>.tar.gz`), or the S3 prefix your
        SageMaker endpoint reads, `s3://<bucket>/<prefix>` (its model data URL). A request's
        TargetModel is the tarball's name as `publish` uploads it, e.g. `my_model_1.0.tar.gz`:
        its path under the S3 prefix, or its file name anywhere below the directory.

        S3 credentials come from the standard AWS chain (AWS_PROFILE,
        AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws).
        """
    )


class S3EndpointUrlField(StringField):
    alias = "s3_endpoint_url"
    help = (
        "The S3 endpoint for an S3-compatible store (e.g. `http://127.0.0.1:9000`); AWS if unset."
    )


class S3RegionField(StringField):
    alias = "s3_region"
    help = "The bucket's AWS region; the AWS configuration's default if unset."


class MaxModelsField(IntField):
    alias = "max_models"
    default = 0
    help = help_text(
        """
        How many models may be loaded at once; loading one more first unloads the least recently
        used (as SageMaker does when an instance runs out of memory). 0: no limit. Set it to the
        number of your models an instance holds to see evictions and reloads before deploying.
        """
    )


class MaxBytesField(IntField):
    alias = "max_bytes"
    default = 0
    help = help_text(
        """
        How many bytes of extracted model directories may be loaded at once (a stand-in for the
        instance's memory); the least recently used models are unloaded to make room. 0: no
        limit.
        """
    )


class PortField(IntField):
    alias = "port"
    default = 8080
    help = "The local port of the endpoint (127.0.0.1 only). 0 picks a free port."


class EndpointNameField(StringField):
    alias = "endpoint_name"
    default = "local-mme"
    help = "The EndpointName clients pass to `invoke_endpoint`, as on SageMaker."


class TritonMmeEndpointTarget(Target):
    alias = "triton_mme_endpoint"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        ModelSourceField,
        S3EndpointUrlField,
        S3RegionField,
        MaxModelsField,
        MaxBytesField,
        PortField,
        EndpointNameField,
    )
    help = help_text(
        """
        A local SageMaker multi-model endpoint (MME) that serves your published tarballs exactly
        as the cloud endpoint will: `pants run` on this target starts Triton (the `[triton]`
        image) in Docker in SageMaker mode, behind a service that answers SageMaker's
        `invoke_endpoint` API. The first request for a TargetModel downloads the tarball,
        checks and extracts it, and loads it; later requests hit the loaded model; a budget
        (`max_models`, `max_bytes`) unloads the least recently used. Metrics like CloudWatch's
        MME metrics are served at `/metrics` and printed on exit.

        See docs/local-mme.md.
        """
    )
