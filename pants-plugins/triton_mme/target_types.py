"""The BUILD-file vocabulary of a Triton model repository: `triton_model` and `triton_ensemble`.

A data scientist keeps one directory per model in Triton's own layout (`config.pbtxt` and numeric
version folders) and writes a one-line BUILD file; every field below has a default that fits that
layout.
"""

from __future__ import annotations

import os

from pants.core.goals.package import OutputPathField
from pants.engine.fs import GlobMatchErrorBehavior
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    AsyncFieldMixin,
    BoolField,
    Dependencies,
    MultipleSourcesField,
    StringField,
    Target,
)
from pants.util.strutil import help_text

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


class TritonWeightsField(MultipleSourcesField):
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


_COMMON_MODEL_FIELDS = (
    *COMMON_TARGET_FIELDS,
    TritonModelNameField,
    TritonConfigSourceField,
    TritonVersionSourcesField,
    TritonArtifactVersionField,
    TritonModelVersionFileField,
    TritonDependenciesField,
    TritonModelOutputPathField,
)


class TritonModelTarget(Target):
    alias = "triton_model"
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
    alias = "triton_ensemble"
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
