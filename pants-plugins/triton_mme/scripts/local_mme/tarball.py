"""Safe extraction of an MME tarball, and the layout checks SageMaker's loader relies on.

A tarball comes from a bucket that many people write to: nothing in it is trusted. Every member
is checked before anything is written (no absolute paths, no `..`, no links leaving the
tarball, no devices, bounded size and member count), then the tar root is checked the way
SageMaker MME + Triton read it: only model directories, each with a `config.pbtxt`; one model,
or one ensemble plus the member models it needs.
"""

from __future__ import annotations

import gzip
import posixpath
import re
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from triton_mme.scripts.config_platform import declares_ensemble

CONFIG_FILE = "config.pbtxt"
_STEP_MODEL_NAME = re.compile(r'\bmodel_name\s*:\s*"([^"]+)"')


class TarballError(ValueError):
    """A tarball that SageMaker MME would not load, or that is unsafe to extract."""


@dataclass(frozen=True)
class ExtractionLimits:
    max_tarball_bytes: int = 10 * 1024**3
    max_extracted_bytes: int = 20 * 1024**3
    max_members: int = 100_000


@dataclass(frozen=True)
class ModelLayout:
    """What the tar root holds: the model SageMaker loads, and the other model directories."""

    model_dirs: tuple[str, ...]
    ensemble: str | None

    @property
    def served_model(self) -> str:
        return self.ensemble or self.model_dirs[0]


@dataclass(frozen=True)
class ExtractedTarball:
    root: Path
    layout: ModelLayout
    extracted_bytes: int
    members: int


def _normalise(tar_name: str, name: str, what: str) -> str:
    """`name` relative to the tar root, without `.` parts; refuses absolute paths and `..`."""
    if name.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", name):
        raise TarballError(
            f"{tar_name}: {what} {name!r} is an absolute path. MME tarballs must hold paths "
            "relative to the tar root (`tar -C <repository> -czf ... <model_dirs>`)."
        )
    if "\\" in name or "\x00" in name:
        raise TarballError(f"{tar_name}: {what} {name!r} has a backslash or NUL in its path.")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise TarballError(
            f"{tar_name}: {what} {name!r} climbs out of the tar root with `..`; refusing to "
            "extract it. Rebuild the tarball from the model repository directory."
        )
    return "/".join(parts)


def _check_link(tar_name: str, path: str, member: tarfile.TarInfo, files: set[str]) -> None:
    if member.issym():
        target = member.linkname
        if target.startswith("/"):
            raise TarballError(
                f"{tar_name}: symlink {path!r} points to the absolute path {target!r}; links in "
                "an MME tarball must stay inside it."
            )
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if resolved == ".." or resolved.startswith("../"):
            raise TarballError(
                f"{tar_name}: symlink {path!r} -> {target!r} points outside the tarball; "
                "replace the link by the file it points to."
            )
    elif _normalise(tar_name, member.linkname, f"hard link {path!r} target") not in files:
        raise TarballError(
            f"{tar_name}: hard link {path!r} -> {member.linkname!r} does not point to a file "
            "stored earlier in the tarball."
        )


def _scan_members(
    tar: tarfile.TarFile, tar_name: str, limits: ExtractionLimits
) -> tuple[list[tuple[str, tarfile.TarInfo]], int]:
    """Every member with its checked path, and the bytes they will take once extracted."""
    accepted: list[tuple[str, tarfile.TarInfo]] = []
    files: set[str] = set()
    symlinks: set[str] = set()
    total = 0
    while True:
        member = tar.next()
        if member is None:
            return accepted, total
        if len(accepted) >= limits.max_members:
            raise TarballError(
                f"{tar_name}: more than {limits.max_members} members; refusing to extract it "
                "(raise the member limit if this model really has that many files)."
            )
        path = _normalise(tar_name, member.name, "member")
        if not path:
            continue
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise TarballError(
                f"{tar_name}: member {path!r} is a device, FIFO or other special file; MME "
                "tarballs may hold only files, directories and links inside the tarball."
            )
        parents = path.split("/")
        if any("/".join(parents[:i]) in symlinks for i in range(1, len(parents))):
            raise TarballError(
                f"{tar_name}: member {path!r} is stored under a symlink; refusing to write "
                "through links."
            )
        if member.issym() or member.islnk():
            _check_link(tar_name, path, member, files)
            (symlinks if member.issym() else files).add(path)
        if member.isfile():
            files.add(path)
            total += member.size
            if total > limits.max_extracted_bytes:
                raise TarballError(
                    f"{tar_name}: extracted content exceeds {limits.max_extracted_bytes} bytes; "
                    "refusing to extract it (raise the extracted-size limit for bigger models)."
                )
        accepted.append((path, member))


def check_layout(
    tar_name: str, root_files: list[str], model_dirs: list[str], configs: dict[str, str]
) -> ModelLayout:
    """The tar root's model directories, checked as SageMaker MME + Triton load them.

    `root_files` are the non-directory entries at the tar root, `model_dirs` the directories
    there, and `configs` maps each of them that has a `config.pbtxt` to that file's text.
    """
    if root_files:
        raise TarballError(
            f"{tar_name}: the tar root holds the file {sorted(root_files)[0]!r}. The root must "
            "hold only model directories (`<model_name>/config.pbtxt`, `<model_name>/1/...`)."
        )
    if not model_dirs:
        raise TarballError(f"{tar_name}: the tarball holds no model directory.")
    dirs = tuple(sorted(model_dirs))
    missing = [d for d in dirs if d not in configs]
    if missing:
        raise TarballError(
            f"{tar_name}: model directory {missing[0]!r} has no {CONFIG_FILE} "
            f"({missing[0]}/{CONFIG_FILE}). Every directory at the tar root must be a Triton "
            "model directory."
        )
    ensembles = [d for d in dirs if declares_ensemble(configs[d])]
    if len(dirs) == 1:
        return ModelLayout(model_dirs=dirs, ensemble=ensembles[0] if ensembles else None)
    if not ensembles:
        raise TarballError(
            f"{tar_name}: the tar root holds {len(dirs)} model directories ({', '.join(dirs)}) "
            "and no ensemble, so SageMaker would load an arbitrary one. Ship one model per "
            "tarball, or an ensemble with its member models."
        )
    if len(ensembles) > 1:
        raise TarballError(
            f"{tar_name}: the tar root holds several ensembles ({', '.join(ensembles)}); "
            "SageMaker would load an arbitrary one. Ship one ensemble per tarball."
        )
    ensemble = ensembles[0]
    absent = sorted(set(_STEP_MODEL_NAME.findall(configs[ensemble])) - set(dirs))
    if absent:
        raise TarballError(
            f"{tar_name}: ensemble {ensemble!r} uses model(s) {', '.join(absent)} that are not "
            "in the tarball. An MME tarball must carry every member model of its ensemble."
        )
    return ModelLayout(model_dirs=dirs, ensemble=ensemble)


def _verify_gzip(tar_name: str, tarball: Path, limits: ExtractionLimits) -> None:
    """Decompress the whole stream once: tarfile stops quietly at a truncated archive."""
    # Tar headers and padding add up to ~1 KiB per member on top of the file contents.
    limit = limits.max_extracted_bytes + 1024 * limits.max_members + 1024 * 1024
    total = 0
    with gzip.open(tarball, "rb") as stream:
        while chunk := stream.read(1024 * 1024):
            total += len(chunk)
            if total > limit:
                raise TarballError(
                    f"{tar_name}: decompresses to more than {limit} bytes; refusing to extract "
                    "it (raise the extracted-size limit for bigger models)."
                )


def extract_model_tarball(
    tarball: Path,
    destination: Path,
    limits: ExtractionLimits = ExtractionLimits(),
    tar_name: str | None = None,
) -> ExtractedTarball:
    """Check `tarball` and extract it into the empty or absent directory `destination`.

    Raises TarballError, naming the tarball (`tar_name`, e.g. its TargetModel) and the
    offending member, when the tarball is corrupt, unsafe, too big, or laid out in a way
    SageMaker MME would not load.
    """
    tar_name = tar_name or tarball.name
    size = tarball.stat().st_size
    if size > limits.max_tarball_bytes:
        raise TarballError(
            f"{tar_name}: {size} bytes is over the {limits.max_tarball_bytes}-byte tarball limit."
        )
    try:
        _verify_gzip(tar_name, tarball, limits)
        with tarfile.open(tarball, "r:gz") as tar:
            members, total = _scan_members(tar, tar_name, limits)
            configs: dict[str, str] = {}
            root_files: list[str] = []
            model_dirs: set[str] = set()
            for path, member in members:
                top, _, rest = path.partition("/")
                if rest or member.isdir():
                    model_dirs.add(top)
                else:
                    root_files.append(path)
                if rest == CONFIG_FILE and member.isfile():
                    config = tar.extractfile(member)
                    assert config is not None
                    configs[top] = config.read().decode("utf-8", errors="replace")
            layout = check_layout(tar_name, root_files, sorted(model_dirs), configs)
            destination.mkdir(parents=True, exist_ok=True)
            try:
                for path, member in members:
                    member.name = path
                    if member.islnk():
                        member.linkname = _normalise(tar_name, member.linkname, "link")
                    # The "data" filter re-checks every member (paths, links, modes) on write.
                    tar.extract(member, destination, filter="data")  # type: ignore[call-arg]
            except (tarfile.TarError, OSError) as e:
                shutil.rmtree(destination, ignore_errors=True)
                raise TarballError(f"{tar_name}: refused while extracting: {e}") from e
    except TarballError:
        raise
    except (tarfile.TarError, zlib.error, EOFError, OSError) as e:
        raise TarballError(
            f"{tar_name}: not a readable gzip-compressed tar archive ({e}). Was the upload cut "
            "short, or is it not a `.tar.gz`? Rebuild it with `pants package`."
        ) from e
    return ExtractedTarball(
        root=destination, layout=layout, extracted_bytes=total, members=len(members)
    )
