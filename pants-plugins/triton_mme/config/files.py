"""Config <-> files: version folders, the model file each backend loads, and label files.

What a model directory holds is described by a `ModelDirectoryListing`: the folders and files on
disk, and the files the model ships (its target's sources, plus the files its DVC pointers put
there). A file that exists on disk but is not shipped is as missing to Triton as one that does
not exist; the message tells the two apart.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Iterable

from triton_mme.config.backend import BackendFields, NoBackendError, complete_backend_fields
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.parse import ModelConfigFile


@dataclass(frozen=True)
class ModelDirectoryListing:
    """What one model directory holds; every path is relative to the model directory."""

    folders: tuple[str, ...]  # its sub-folders on disk (`1`, `tests`)
    files: tuple[str, ...]  # its files on disk beside config.pbtxt
    shipped: tuple[str, ...]  # files the model's directory gets (`1/model.py`, `labels.txt`)
    on_disk: tuple[str, ...] = ()  # files on disk in its version folders (`1/model.py`)
    # Shipped paths that DVC pointers fill in (`1/model.onnx`): each may be a file or a folder.
    tracked: tuple[str, ...] = ()


def version_numbers(folders: Iterable[str]) -> tuple[int, ...]:
    """The versions Triton can load: folders named by a number without a leading 0."""
    return tuple(sorted(int(f) for f in folders if f.isdigit() and not f.startswith("0")))


def loaded_versions(config: ModelConfigFile, folders: Iterable[str]) -> tuple[int, ...]:
    """The versions Triton loads under the config's `version_policy` (default: the latest)."""
    versions = version_numbers(folders)
    policy = config.message.version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return versions
    if choice == "specific":
        return tuple(v for v in versions if v in set(policy.specific.versions))
    count = policy.latest.num_versions if choice == "latest" else 1
    return versions[-count:] if count > 0 else ()


def check_version_folders(
    config: ModelConfigFile, folder_names: Iterable[str]
) -> list[ModelConfigError]:
    """Version folders are positive integers without a leading 0 (Triton ignores `01/`)."""
    path = config.path
    directory = posixpath.dirname(path) or "."
    errors: list[ModelConfigError] = []
    folders = sorted(folder_names)
    for folder in folders:
        if not folder[:1].isdigit():
            continue  # Not meant as a version folder (e.g. `tests/`): Triton ignores it too.
        if not folder.isdigit():
            errors.append(
                ModelConfigError(
                    path,
                    f"version folder `{directory}/{folder}/` is not a number; Triton only loads "
                    "folders named by a positive integer: rename it (e.g. `1/`).",
                )
            )
        elif folder.startswith("0"):
            errors.append(
                ModelConfigError(
                    path,
                    f"version folder `{directory}/{folder}/` starts with 0, so Triton ignores "
                    f"it: rename it to `{int(folder) or 1}/`.",
                )
            )
    if errors or config.is_ensemble:
        return errors  # An ensemble's empty `1/` is created when it is packaged.
    if not version_numbers(folders):
        errors.append(
            ModelConfigError(
                path,
                f"`{directory}/` has no numeric version folder, so Triton would serve nothing: "
                "put the model's files in `1/` (e.g. `1/model.py` or `1/model.onnx`).",
            )
        )
    elif not loaded_versions(config, folders):
        errors.append(
            ModelConfigError(
                path,
                f"`version_policy` selects none of the version folders of `{directory}/` "
                f"({', '.join(map(str, version_numbers(folders)))}), so Triton would serve "
                "nothing: fix the policy (`latest { num_versions: 1 }` loads the newest).",
                line=config.line("version_policy"),
            )
        )
    return errors


def model_file_names(
    config: ModelConfigFile, fields: BackendFields | None = None
) -> tuple[str, ...] | None:
    """The files each loaded version folder needs, or None when the config alone cannot tell
    (an ensemble, a custom backend, TensorRT engines per GPU, no backend at all).

    `fields` are the backend fields Triton completes (`config/backend.py`); without them, those
    the config itself decides.
    """
    if config.is_ensemble or config.message.cc_model_filenames:
        return None
    if fields is None:
        try:
            fields = complete_backend_fields(config, config.name, ())
        except NoBackendError:
            return None
    platform, backend, configured = fields.platform, fields.backend, fields.default_model_filename
    defaults = {
        "tensorflow": "model.savedmodel" if platform.endswith("savedmodel") else "model.graphdef",
        "tensorrt": "model.plan",
        "onnxruntime": "model.onnx",
        "pytorch": "model.pt2" if platform == "torch_aoti" else "model.pt",
        "openvino": "model.xml",
        "python": "model.py",
    }
    if backend not in defaults:
        return None
    name = configured or defaults[backend]
    if backend == "openvino" and name.endswith(".xml"):
        return (name, name[: -len(".xml")] + ".bin")
    return (name,)


def check_model_files(
    config: ModelConfigFile, listing: ModelDirectoryListing
) -> list[ModelConfigError]:
    """Each version folder Triton loads holds the file its backend loads."""
    try:
        fields = complete_backend_fields(config, config.name, listing.shipped, listing.tracked)
    except NoBackendError:
        return []  # `check_backend` says why.
    names = model_file_names(config, fields)
    if names is None:
        return []
    directory = posixpath.dirname(config.path) or "."
    shipped = set(listing.shipped)
    # A file or a folder (`1/model.savedmodel/`) counts.
    shipped_folders = {parent for p in shipped for parent in _parents(p)}
    errors = []
    for version in loaded_versions(config, listing.folders):
        for name in names:
            relative = f"{version}/{name}"
            if relative in shipped or relative in shipped_folders:
                continue
            where = f"`{directory}/{relative}`"
            reason = (
                "exists but the model's BUILD target does not own it: add it to the "
                "target's `sources` (or remove what excludes it)"
                if relative in set(listing.on_disk)
                else f"is missing: add it (or its DVC pointer `{relative}.dvc`)"
            )
            errors.append(
                ModelConfigError(
                    config.path,
                    f"{where} {reason}. Triton loads it from version {version} of this model"
                    f"{_because(config, fields)}.",
                )
            )
    return errors


def _parents(path: str) -> Iterable[str]:
    parent = posixpath.dirname(path)
    while parent:
        yield parent
        parent = posixpath.dirname(parent)


def _because(config: ModelConfigFile, fields: BackendFields) -> str:
    if config.default_model_filename:
        return f' (`default_model_filename: "{config.default_model_filename}"`)'
    if config.platform:
        return f' (`platform: "{config.platform}"`)'
    if config.backend:
        return f' (`backend: "{config.backend}"`)'
    if fields.from_file:
        directory = posixpath.dirname(config.path) or "."
        return (
            f" (config.pbtxt names no backend: Triton takes the {fields.backend} backend from "
            f"`{directory}/{fields.from_file}`, in the first version folder)"
        )
    return ""


def check_label_files(config: ModelConfigFile, file_names: Iterable[str]) -> list[ModelConfigError]:
    """Each output's `label_filename` names a file beside config.pbtxt."""
    present = set(file_names)
    directory = posixpath.dirname(config.path) or "."
    errors = []
    for spec, output in zip(config.outputs, config.message.output):
        label = output.label_filename
        if not label:
            continue
        if posixpath.normpath(label).startswith(("../", "/")) or label == "..":
            problem = "which is outside the model directory: put it beside config.pbtxt"
        elif label not in present:
            problem = f"which is not in `{directory}/`: add it beside config.pbtxt"
        else:
            continue
        errors.append(
            ModelConfigError(
                config.path,
                f"output `{spec.name}` names the label file `{label}`, {problem} or remove "
                "`label_filename`.",
                line=spec.line,
            )
        )
    return errors
