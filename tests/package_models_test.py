"""`./pants package models/::` from two copies of the repo: layout and byte-reproducibility."""

from __future__ import annotations

import hashlib
import os
import tarfile

from conftest import PackagedCheckout

PIPELINE_TARBALL = (
    "models/screen_detection/screen_detection_pipeline/screen_detection_pipeline_{}.tar.gz"
)
# The ensemble keeps its name (SageMaker maps it to the TargetModel); its members are named
# after the artifact, `<model_name>_<version>.<member>` (docs/models.md).
PIPELINE_MEMBERS = (
    "screen_detection_inferencer",
    "screen_detection_postprocessing",
    "screen_detection_preprocessing",
)
LITTER = ("BUILD", ".dvc", "__pycache__", ".pyc", "model_version.txt", "_test.py", ".gitignore")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def members(path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def version_of(checkout: PackagedCheckout, model_dir: str) -> str:
    return (checkout.root / model_dir / "model_version.txt").read_text().strip()


def test_one_tarball_per_deployable_model(
    packaged_twice: tuple[PackagedCheckout, PackagedCheckout],
) -> None:
    first, _ = packaged_twice
    pipeline_version = version_of(first, "models/screen_detection/screen_detection_pipeline")
    normalizer_version = version_of(first, "models/text_normalizer")
    # Ensemble members (ensemble_member_only=True) get no tarball of their own.
    assert set(first.tarballs()) == {
        PIPELINE_TARBALL.format(pipeline_version),
        f"models/text_normalizer/text_normalizer_{normalizer_version}.tar.gz",
    }


def test_tarball_layout(packaged_twice: tuple[PackagedCheckout, PackagedCheckout]) -> None:
    first, _ = packaged_twice
    for name, path in first.tarballs().items():
        entries = members(path)
        roots = {n.split("/")[0] for n in entries}
        if "screen_detection_pipeline" in name:
            artifact = os.path.basename(name)[: -len(".tar.gz")]
            assert roots == {
                "screen_detection_pipeline",
                *(f"{artifact}.{member}" for member in PIPELINE_MEMBERS),
            }
            assert entries["screen_detection_pipeline/1"].isdir()  # The empty version folder.
            assert entries[f"{artifact}.screen_detection_inferencer/1/model.onnx"].isfile()
        else:
            assert roots == {"text_normalizer"}
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
        for model in roots:
            assert entries[f"{model}/config.pbtxt"].isfile()


def test_two_checkouts_give_identical_bytes(
    packaged_twice: tuple[PackagedCheckout, PackagedCheckout],
) -> None:
    first, second = packaged_twice
    assert set(first.tarballs()) == set(second.tarballs())
    for name, path in first.tarballs().items():
        assert sha256(path) == sha256(second.tarballs()[name]), name
