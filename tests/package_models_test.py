"""`./pants package models/::` from two copies of the repo: layout and byte-reproducibility.

The expectations come from the targets themselves (`./pants peek models/::` in the packaged copy),
so the tests hold for whatever models the repo has.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from checkout import run_pants
from conftest import PackagedCheckout

MODEL_TARGET_TYPES = ("triton_model", "triton_ensemble")
LITTER = ("BUILD", ".dvc", "__pycache__", ".pyc", "model_version.txt", "_test.py", ".gitignore")


@dataclass(frozen=True)
class Model:
    """A `triton_model` or `triton_ensemble` target, as `peek` shows it."""

    address: str
    directory: str  # the BUILD file's directory, relative to the checkout
    name: str  # the model's directory name in a tarball
    deployable: bool  # packaged on its own
    files: tuple[str, ...]  # what its directory in a tarball must hold, relative to it
    members: tuple[str, ...]  # addresses of the models it depends on


def _model(target: dict[str, Any], root: Path) -> Model:
    directory = target["address"].split(":")[0]
    version_file = os.path.join(directory, target["model_version_file"])
    files = [os.path.relpath(path, directory) for path in target["sources"] if path != version_file]
    # Each DVC pointer gives the file it names (`1/model.onnx.dvc` -> `1/model.onnx`).
    pointers = {
        pointer
        for glob in target.get("weights_raw") or ()
        if not glob.startswith("!")
        for pointer in (root / directory).glob(glob)
    }
    files += [str(p.relative_to(root / directory))[: -len(".dvc")] for p in pointers]
    return Model(
        address=target["address"],
        directory=directory,
        name=target["model_name"] or os.path.basename(directory),
        deployable=not target.get("ensemble_member_only", False),
        files=tuple(sorted(files)),
        members=tuple(target["dependencies"]),
    )


def models_of(checkout: PackagedCheckout) -> dict[str, Model]:
    # stdout alone: it must stay pure JSON.
    peek = run_pants(checkout.root, "peek", "models/::", separate_stderr=True)
    assert peek.returncode == 0, peek.stderr
    targets = [t for t in json.loads(peek.stdout) if t["target_type"] in MODEL_TARGET_TYPES]
    models = [_model(t, checkout.root) for t in targets]
    return {m.address: m for m in models}


def artifact_version(checkout: PackagedCheckout, model: Model) -> str:
    return (checkout.root / model.directory / "model_version.txt").read_text().strip()


def expected_tarball(checkout: PackagedCheckout, model: Model) -> str:
    return f"{model.directory}/{model.name}_{artifact_version(checkout, model)}.tar.gz"


def shipped_name(checkout: PackagedCheckout, root: Model, model: Model) -> str:
    """A model's directory name in `root`'s tarball: an ensemble's members are named after the
    artifact, `<model_name>_<version>.<member>`; the root keeps its name (docs/models.md)."""
    if model.address == root.address:
        return model.name
    return f"{root.name}_{artifact_version(checkout, root)}.{model.name}"


def with_members(models: dict[str, Model], model: Model) -> list[Model]:
    found = {model.address: model}
    pending = list(model.members)
    while pending:
        member = models.get(pending.pop())
        if member is not None and member.address not in found:
            found[member.address] = member
            pending.extend(member.members)
    return list(found.values())


@pytest.fixture(scope="module")
def models(packaged: PackagedCheckout) -> dict[str, Model]:
    return models_of(packaged)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def members(path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_one_tarball_per_deployable_model(
    packaged: PackagedCheckout, models: dict[str, Model]
) -> None:
    # Ensemble members (ensemble_member_only=True) get no tarball of their own.
    expected = {expected_tarball(packaged, m) for m in models.values() if m.deployable}
    assert expected, "the repo has no deployable model"
    assert set(packaged.tarballs()) == expected


def test_tarball_layout(packaged: PackagedCheckout, models: dict[str, Model]) -> None:
    for model in (m for m in models.values() if m.deployable):
        entries = members(packaged.tarballs()[expected_tarball(packaged, model)])
        shipped = {shipped_name(packaged, model, m): m for m in with_members(models, model)}
        assert {n.split("/")[0] for n in entries} == set(shipped)
        for directory, each in shipped.items():
            # Every file of every model, and at least one numeric version folder.
            for path in each.files:
                assert entries[f"{directory}/{path}"].isfile(), (model.address, path)
            assert entries[f"{directory}/config.pbtxt"].isfile(), (model.address, directory)
            assert any(
                e.isdir() and name.split("/")[1:2] and name.split("/")[1].isdigit()
                for name, e in entries.items()
                if name.startswith(f"{directory}/")
            ), (model.address, directory)
        for entry_name, entry in entries.items():
            assert not any(litter in entry_name for litter in LITTER), entry_name
            assert (entry.uid, entry.gid, entry.uname, entry.gname, entry.mtime) == (
                0,
                0,
                "",
                "",
                0,
            )
            assert entry.mode == (0o755 if entry.isdir() else 0o644), entry_name


def test_two_checkouts_give_identical_bytes(
    packaged_twice: tuple[PackagedCheckout, PackagedCheckout],
) -> None:
    first, second = packaged_twice
    assert set(first.tarballs()) == set(second.tarballs())
    for name, path in first.tarballs().items():
        assert sha256(path) == sha256(second.tarballs()[name]), name


def test_local_mme_run_loads_every_tarball(packaged: PackagedCheckout) -> None:
    """`./pants run :local-mme -- --check` as docs/local-mme.md shows it: the tool PEX runs in
    the foreground from its chroot, and every tarball in dist/models loads."""
    result = run_pants(packaged.root, "run", ":local-mme", "--", "--check")
    assert result.returncode == 0, result.stdout
    for name in packaged.tarballs():
        assert f"ok     {os.path.basename(name)}" in result.stdout, result.stdout
