"""DVC pointer files -> verified weights in the model directory.

A `triton_model`'s `weights` field owns the `.dvc` pointers in its version folders. For each
pointer one sandboxed process runs DVC (`subsystems/dvc.py`) with only `.dvc/config` and that
pointer, fetches what it names from the repo's DVC remote and checks the md5 and size of every
byte (`scripts/dvc_fetch.py`). Pants caches a successful fetch by its inputs, so an unchanged
pointer is fetched once, for every goal. The files land where the pointer says, relative to the
model directory, through the `ModelFilesRequest` union: `package` and `test` both get them.
"""

from __future__ import annotations

import configparser
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import yaml  # pants: no-infer-dep (PyYAML comes with Pants)
from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.base.build_root import BuildRoot
from pants.engine.collection import Collection
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import (
    EMPTY_DIGEST,
    Digest,
    DigestContents,
    DigestEntries,
    DigestSubset,
    FileDigest,
    FileEntry,
    MergeDigests,
    Paths,
    PathGlobs,
    RemovePrefix,
    Snapshot,
)
from pants.engine.process import FallibleProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    HydratedSources,
    HydrateSourcesRequest,
)
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel
from triton_mme.util_rules.repository import ModelFiles, ModelFilesRequest
from triton_mme.subsystems.dvc import DvcSubsystem
from triton_mme.subsystems.tool import ScriptTool, ScriptToolRequest
from triton_mme.target_types import TritonWeightsField

DVC_CONFIG = ".dvc/config"
DVC_LOCAL_CONFIG = ".dvc/config.local"
_MD5 = re.compile(r"^[0-9a-f]{32}$")


class DvcPointerError(ValueError):
    """A `.dvc` file we cannot use; the message names the file and the fix."""


class WeightsError(Exception):
    """Fetching or placing weights failed; the message names the pointer and the fix."""


@dataclass(frozen=True)
class DvcOut:
    """One `outs` entry of a pointer: a file or directory DVC tracks."""

    path: str  # relative to the pointer's directory
    md5: str  # without DVC's `.dir` suffix
    is_directory: bool
    size: int | None
    nfiles: int | None
    remote: str | None


@dataclass(frozen=True)
class DvcPointer:
    path: str  # of the `.dvc` file, relative to the build root
    outs: tuple[DvcOut, ...]

    def out_path(self, out: DvcOut) -> str:
        """Where `out` goes, relative to the build root."""
        return posixpath.join(posixpath.dirname(self.path), out.path)

    def fetch_request_json(self, dvc_dir: str) -> str:
        """The argument of `scripts/dvc_fetch.py`; `dvc_dir` is `.dvc` unless the fetch needs the
        repo's real `.dvc` directory (see `dvc_fetch_requests`)."""
        outs = [
            {
                "path": self.out_path(out),
                "md5": out.md5,
                "is_directory": out.is_directory,
                "size": out.size,
                "nfiles": out.nfiles,
                "remote": out.remote,
            }
            for out in self.outs
        ]
        return json.dumps({"pointer": self.path, "dvc_dir": dvc_dir, "outs": outs}, sort_keys=True)


def _pointer_error(path: str, problem: str) -> DvcPointerError:
    return DvcPointerError(
        f"{path}: {problem}. A DVC pointer lists what it tracks under `outs`, each with `md5`, "
        "`size`, `hash: md5` and `path` (as `dvc add` writes them). Re-create it with "
        f"`dvc add {path[: -len('.dvc')]}` and commit the new pointer, or restore it with "
        f"`git checkout {path}`."
    )


def _parse_out(pointer_path: str, index: int, entry: Any) -> DvcOut:
    where = f"outs[{index}]"
    if not isinstance(entry, Mapping):
        raise _pointer_error(pointer_path, f"{where} is not a mapping")
    path = entry.get("path")
    if not isinstance(path, str) or not path:
        raise _pointer_error(pointer_path, f"{where} has no `path`")
    normalized = posixpath.normpath(path)
    if posixpath.isabs(path) or normalized == "." or normalized.startswith("../"):
        raise _pointer_error(
            pointer_path,
            f"{where} path `{path}` is not inside the pointer's folder (weights must sit in the "
            "model's version folder, beside their pointer)",
        )
    if entry.get("hash") is None:
        raise _pointer_error(
            pointer_path,
            f"{where} has no `hash: md5`: DVC 2 wrote it (`dvc cache migrate --dvc-files` "
            "upgrades DVC 2 pointers)",
        )
    if entry.get("hash") != "md5":
        raise _pointer_error(
            pointer_path, f"{where} has `hash: {entry['hash']}`; only `hash: md5` is supported"
        )
    md5 = entry.get("md5")
    if not isinstance(md5, str):
        raise _pointer_error(pointer_path, f"{where} has no `md5`")
    is_directory = md5.endswith(".dir")
    bare_md5 = md5[: -len(".dir")] if is_directory else md5
    if not _MD5.match(bare_md5):
        raise _pointer_error(pointer_path, f"{where} md5 `{md5}` is not 32 hex digits")
    size, nfiles, remote = entry.get("size"), entry.get("nfiles"), entry.get("remote")
    for name, value in (("size", size), ("nfiles", nfiles)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise _pointer_error(pointer_path, f"{where} `{name}` is not a whole number")
    if remote is not None and not isinstance(remote, str):
        raise _pointer_error(pointer_path, f"{where} `remote` is not a remote name")
    return DvcOut(normalized, bare_md5, is_directory, size, nfiles, remote)


def parse_dvc_pointer(path: str, content: bytes) -> DvcPointer:
    """Parses a `.dvc` file as `dvc add` writes it (DVC 3)."""
    try:
        data = yaml.safe_load(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise _pointer_error(path, "it is not UTF-8 text (is it the data file itself?)")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" on line {mark.line + 1}" if mark is not None else ""
        raise _pointer_error(path, f"it is not valid YAML{line} ({getattr(e, 'problem', e)})")
    if not isinstance(data, Mapping):
        raise _pointer_error(path, "it is not a YAML mapping")
    if data.get("deps") or data.get("cmd"):
        raise _pointer_error(
            path,
            "it is a stage or import file (it has `deps` or `cmd`); only files from `dvc add` "
            "can be model weights",
        )
    outs = data.get("outs")
    if not isinstance(outs, list) or not outs:
        raise _pointer_error(path, "it has no `outs` list")
    parsed = tuple(_parse_out(path, index, entry) for index, entry in enumerate(outs))
    return DvcPointer(path=path, outs=parsed)


def check_pointers_do_not_overlap(pointers: Iterable[DvcPointer]) -> None:
    owners: dict[str, str] = {}
    for pointer in pointers:
        for out in pointer.outs:
            out_path = pointer.out_path(out)
            for other_path, other_pointer in owners.items():
                if (
                    out_path == other_path
                    or out_path.startswith(other_path + "/")
                    or other_path.startswith(out_path + "/")
                ):
                    raise WeightsError(
                        f"{pointer.path} and {other_pointer} both track {out_path}. Keep one "
                        "pointer: `dvc remove` the other."
                    )
            owners[out_path] = pointer.path


def check_sources_match_weights(
    pointers: Iterable[DvcPointer],
    fetched_files: Mapping[str, FileDigest],
    source_files: Mapping[str, FileDigest],
) -> list[str]:
    """Fails if a file of the model's own sources sits where fetched weights go, with other bytes.

    Both mappings go from build-root-relative paths to file digests. A byte-identical source file
    is fine: that is the workspace copy `dvc add` or `dvc checkout` leaves beside its pointer.
    Returns those identical copies (sorted); source files no pointer tracks are not in it.
    """
    identical = []
    for pointer in pointers:
        for out in pointer.outs:
            out_path = pointer.out_path(out)
            for source_path, source_digest in source_files.items():
                tracked = source_path == out_path or source_path.startswith(out_path + "/")
                if not tracked:
                    continue
                if fetched_files.get(source_path) == source_digest:
                    identical.append(source_path)
                    continue
                raise WeightsError(
                    f"{source_path} is a file of the model and also tracked by {pointer.path}, "
                    "with different content. If you changed the weights, run "
                    f"`dvc add {out_path}` and `dvc push`, and commit the new pointer; to get "
                    f"back the tracked version, run `dvc checkout {pointer.path}`. If git tracks "
                    f"the file, `git rm --cached {source_path}`: DVC tracks it."
                )
    return sorted(identical)


def _remote_urls(config_text: str) -> tuple[str | None, dict[str, str]]:
    """The default remote's name and every remote's `url`, from a DVC config file."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(config_text)
    except configparser.Error as e:
        raise WeightsError(
            f"{DVC_CONFIG} is not a valid DVC config ({e}); fix it with `dvc remote`"
        )
    urls = {}
    for section in parser.sections():
        match = re.fullmatch(r"""'?remote "(.+)"'?""", section.strip())
        if match and parser.has_option(section, "url"):
            urls[match.group(1)] = parser.get(section, "url")
    return parser.get("core", "remote", fallback=None), urls


@dataclass(frozen=True)
class RemoteLocations:
    """Where a pointer's remotes are, as far as the fetch's cache key is concerned."""

    repo_stores: tuple[str, ...]  # build-root-relative local remotes inside the repo
    outside_local: bool  # a local remote outside the repo: only its absolute path names it


def remote_locations(config_text: str, pointer: DvcPointer) -> RemoteLocations:
    """Classifies the remotes `pointer` fetches from.

    A relative local remote inside the repo (DVC resolves its `url` against `.dvc/`) is repo
    content: its objects go into the fetch's sandbox, so no absolute path enters the cache key.
    """
    default, urls = _remote_urls(config_text)
    stores, outside = set(), False
    for out in pointer.outs:
        url = urls.get(out.remote or default or "")
        if not url or re.match(r"\w+://", url):
            continue  # a URL (s3://, ...), or a missing remote the fetch reports
        path = posixpath.normpath(posixpath.join(".dvc", url))
        if posixpath.isabs(url) or url.startswith("~") or path.split("/")[0] == "..":
            outside = True
        else:
            stores.add(path)
    return RemoteLocations(tuple(sorted(stores)), outside)


def object_path(store: str, md5: str) -> str:
    """Where DVC 3 keeps an object in a local remote."""
    return f"{store}/files/md5/{md5[:2]}/{md5[2:]}"


@dataclass(frozen=True)
class DvcWeightsRequest(ModelFilesRequest):
    required_fields = (TritonWeightsField,)


@dataclass(frozen=True)
class DvcFetchRequest(EngineAwareParameter):
    pointer: DvcPointer
    # `.dvc/config`, the pointer file and the objects of in-repo local remotes, at their
    # build-root paths
    input_digest: Digest
    dvc_dir: str  # `.dvc`, or the repo's absolute `.dvc` path when the fetch needs it

    def debug_hint(self) -> str:
        return self.pointer.path


@dataclass(frozen=True)
class RepoStoreObjectsRequest:
    """The objects that in-repo local remotes hold for a pointer's outs."""

    stores: tuple[str, ...]
    outs: tuple[DvcOut, ...]


@rule(desc="Collect DVC objects from the repo's local remote", level=LogLevel.DEBUG)
async def repo_store_objects(request: RepoStoreObjectsRequest) -> Digest:
    if not request.stores:
        return EMPTY_DIGEST
    listings = [
        object_path(store, out.md5) + ".dir"
        for store in request.stores
        for out in request.outs
        if out.is_directory
    ]
    files = [
        object_path(store, out.md5)
        for store in request.stores
        for out in request.outs
        if not out.is_directory
    ]
    members: list[str] = []
    for listing in await Get(DigestContents, PathGlobs(listings)):
        store = listing.path.split("/files/md5/")[0]
        try:
            entries = json.loads(listing.content)
        except ValueError:
            continue  # the fetch checks the listing and names the corrupt object
        members.extend(
            object_path(store, entry["md5"])
            for entry in entries
            if isinstance(entry, dict) and _MD5.match(str(entry.get("md5")))
        )
    return await Get(Digest, PathGlobs([*files, *listings, *members]))


@dataclass(frozen=True)
class FetchedWeights:
    """The pointer's outs, verified, at their build-root-relative paths."""

    digest: Digest


@rule
async def fetch_dvc_pointer(
    request: DvcFetchRequest,
    dvc: DvcSubsystem,
) -> FetchedWeights:
    env, tool = await MultiGet(
        Get(EnvironmentVars, EnvironmentVarsRequest(dvc.checked_env_vars())),
        Get(ScriptTool, ScriptToolRequest, dvc.tool_request()),
    )
    pointer = request.pointer
    result = await Get(
        FallibleProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=(pointer.fetch_request_json(request.dvc_dir),),
            description=f"Fetch DVC-tracked weights of {pointer.path}",
            input_digest=request.input_digest,
            extra_env={**env, "AWS_EC2_METADATA_DISABLED": "true", "DVC_NO_ANALYTICS": "1"},
            output_files=[pointer.out_path(out) for out in pointer.outs if not out.is_directory],
            output_directories=[pointer.out_path(out) for out in pointer.outs if out.is_directory],
            level=LogLevel.INFO,
        ),
    )
    if result.exit_code != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise WeightsError(
            message
            or f"{pointer.path}: DVC exited with {result.exit_code} and no message; "
            f"stdout:\n{result.stdout.decode('utf-8', 'replace')}"
        )
    return FetchedWeights(result.output_digest)


@dataclass(frozen=True)
class DvcFetchSetup:
    dvc_config: Digest
    pointers: tuple[tuple[DvcPointer, Digest], ...]  # each with the digest of its file


class DvcFetchRequests(Collection[DvcFetchRequest]):
    pass


@rule(desc="Set up DVC fetches", level=LogLevel.DEBUG)
async def dvc_fetch_requests(setup: DvcFetchSetup, build_root: BuildRoot) -> DvcFetchRequests:
    """One fetch per pointer, keyed by content only wherever possible (remote caches are shared
    by checkouts at different paths): the repo's absolute path enters the key only when DVC must
    read `.dvc/config.local` or a local remote outside the repo at run time."""
    config, local_config = await MultiGet(
        Get(DigestContents, Digest, setup.dvc_config), Get(Paths, PathGlobs([DVC_LOCAL_CONFIG]))
    )
    config_text = config[0].content.decode("utf-8", "replace")
    locations = [remote_locations(config_text, pointer) for pointer, _ in setup.pointers]
    objects = await MultiGet(
        Get(Digest, RepoStoreObjectsRequest(location.repo_stores, pointer.outs))
        for location, (pointer, _) in zip(locations, setup.pointers)
    )
    input_digests = await MultiGet(
        Get(Digest, MergeDigests([setup.dvc_config, pointer_digest, store_objects]))
        for (_, pointer_digest), store_objects in zip(setup.pointers, objects)
    )
    absolute_dvc_dir = posixpath.join(build_root.path, ".dvc")
    return DvcFetchRequests(
        DvcFetchRequest(
            pointer,
            digest,
            absolute_dvc_dir if local_config.files or location.outside_local else ".dvc",
        )
        for (pointer, _), digest, location in zip(setup.pointers, input_digests, locations)
    )


def _file_digests(entries: Iterable[Any]) -> dict[str, FileDigest]:
    return {entry.path: entry.file_digest for entry in entries if isinstance(entry, FileEntry)}


@rule
async def dvc_model_weights(request: DvcWeightsRequest) -> ModelFiles:
    address = request.field_set.address
    pointer_sources, model_sources = await MultiGet(
        Get(HydratedSources, HydrateSourcesRequest(request.target[TritonWeightsField])),
        Get(HydratedSources, HydrateSourcesRequest(request.field_set.sources)),
    )
    if not pointer_sources.snapshot.files:
        return ModelFiles(EMPTY_DIGEST)
    contents = await Get(DigestContents, Digest, pointer_sources.snapshot.digest)
    pointers = [parse_dvc_pointer(file.path, file.content) for file in contents]
    check_pointers_do_not_overlap(pointers)
    dvc_config = await Get(Snapshot, PathGlobs([DVC_CONFIG]))
    if not dvc_config.files:
        raise WeightsError(
            f"{pointers[0].path}: there is no {DVC_CONFIG} at the repo root, so DVC has no remote "
            "to fetch from. Run `dvc init` at the repo root, add a remote (`dvc remote add -d "
            f"<name> <url>`) and commit {DVC_CONFIG}; see docs/weights.md."
        )
    # One process per pointer: a changed pointer refetches only its own weights.
    pointer_digests = await MultiGet(
        Get(Digest, DigestSubset(pointer_sources.snapshot.digest, PathGlobs([pointer.path])))
        for pointer in pointers
    )
    fetch_requests = await Get(
        DvcFetchRequests, DvcFetchSetup(dvc_config.digest, tuple(zip(pointers, pointer_digests)))
    )
    fetched = await MultiGet(
        Get(FetchedWeights, DvcFetchRequest, request) for request in fetch_requests
    )
    merged = await Get(Digest, MergeDigests(weights.digest for weights in fetched))
    fetched_entries, source_entries = await MultiGet(
        Get(DigestEntries, Digest, merged),
        Get(DigestEntries, Digest, model_sources.snapshot.digest),
    )
    check_sources_match_weights(
        pointers, _file_digests(fetched_entries), _file_digests(source_entries)
    )
    return ModelFiles(await Get(Digest, RemovePrefix(merged, address.spec_path)))


def rules() -> Iterable:
    return (*collect_rules(), UnionRule(ModelFilesRequest, DvcWeightsRequest))
