"""Fetch what one DVC pointer file tracks, then check the md5 and size of every byte.

Runs inside the DVC tool PEX (see `triton_mme/subsystems/dvc.py`), in a sandbox that holds the
repo's `.dvc/config` and one pointer file. Its only argument is a JSON request:

    {"pointer": "models/m/1/model.onnx.dvc",   # sandbox-relative, as in the repo
     "dvc_dir": ".dvc",                        # or the repo's absolute .dvc directory
     "outs": [{"path": "models/m/1/model.onnx", "md5": "...", "is_directory": false,
               "size": 123, "nfiles": null, "remote": null}]}

`dvc_dir` is where relative local remote URLs are resolved and where `config.local` is read at
run time. It is `.dvc` (the sandbox's copy, which also holds the objects of a local remote inside
the repo) unless the repo has a `config.local` or a local remote outside it: then it is the
repo's absolute `.dvc` path (see `util_rules/weights.py`). Credentials are never passed in: DVC and
botocore read them at run time from `config.local`, `~/.aws` or the AWS profile, so they are not
part of any cache key. The fetched bytes are checked against the pointer's md5, so where they came
from cannot change the result, only whether the fetch succeeds.

On failure it prints one message for a data scientist on stderr and exits with 1; Pants then keeps
no output, so nothing half-fetched reaches a model directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import urlsplit, urlunsplit

# Remote options that are secrets: their values are scrubbed from every message we print.
SECRET_REMOTE_OPTIONS = (
    "access_key_id",
    "secret_access_key",
    "session_token",
    "password",
    "key",
    "sas_token",
    "connection_string",
    "token",
)


class FetchFailure(Exception):
    """A problem to report to the user; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class ExpectedOut:
    path: str
    md5: str
    is_directory: bool
    size: int | None
    nfiles: int | None
    remote: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExpectedOut:
        return cls(
            path=data["path"],
            md5=data["md5"],
            is_directory=data["is_directory"],
            size=data.get("size"),
            nfiles=data.get("nfiles"),
            remote=data.get("remote"),
        )


@dataclass(frozen=True)
class RemoteDescription:
    """A remote as we may print it: name and URL without credentials."""

    name: str
    url: str
    local_root: str | None  # the directory of a local remote

    def __str__(self) -> str:
        return f"remote `{self.name}` ({self.url})"


def md5_and_size(path: str) -> tuple[str, int]:
    digest = hashlib.md5()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def object_path(md5: str) -> str:
    """Where DVC 3 keeps an object in a cache or remote, relative to its root."""
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def redact_url(url: str) -> str:
    """The URL without user info (`https://user:secret@host/x` -> `https://host/x`)."""
    parts = urlsplit(url)
    if parts.scheme and parts.netloc and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def secrets_in(config: dict[str, Any]) -> list[str]:
    remotes = config.get("remote", {})
    return [
        str(options[key])
        for options in remotes.values()
        for key in SECRET_REMOTE_OPTIONS
        if options.get(key)
    ]


def absolute_remote_urls(config: dict[str, Any], dvc_dir: str) -> dict[str, Any]:
    """A config whose relative local remote URLs are resolved against the repo's .dvc directory.

    DVC resolves a relative `url` against the directory of the config file naming it; the sandbox
    passes the config as data, so it is resolved here (against the sandbox's working directory
    when `dvc_dir` is relative).
    """
    remotes = {}
    for name, options in config.get("remote", {}).items():
        url = options.get("url")
        if url and not re.match(r"\w+://", url) and not os.path.isabs(os.path.expanduser(url)):
            options = {**options, "url": os.path.abspath(os.path.join(dvc_dir, url))}
        remotes[name] = options
    return {**config, "remote": remotes}


def merge_configs(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_configs(merged[key], value)
        else:
            merged[key] = value
    return merged


def describe_remote(config: dict[str, Any], name: str | None) -> RemoteDescription:
    name = name or config.get("core", {}).get("remote")
    if not name:
        raise FetchFailure(
            "The DVC config names no default remote. Set one with "
            "`dvc remote default <name>` (or `dvc remote add -d <name> <url>`) and commit "
            ".dvc/config."
        )
    options = config.get("remote", {}).get(name)
    if options is None:
        raise FetchFailure(
            f"The DVC remote `{name}` is not defined in .dvc/config (or .dvc/config.local). "
            f"Add it with `dvc remote add {name} <url>`."
        )
    url = str(options.get("url", "?"))
    local_root = None if re.match(r"\w+://", url) else url
    # A local remote inside the repo is in the sandbox: name it by its repo-relative path.
    shown = os.path.relpath(url) if local_root and is_under(url, os.getcwd()) else url
    return RemoteDescription(name=name, url=redact_url(shown), local_root=local_root)


def is_under(path: str, root: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) == os.path.abspath(
        root
    )


def verify_file(out: ExpectedOut, path: str, relpath: str | None = None) -> list[str]:
    """Problems with one fetched file (empty if it matches)."""
    shown = relpath or out.path
    if not os.path.isfile(path):
        return [f"{shown}: missing after the fetch"]
    actual_md5, actual_size = md5_and_size(path)
    problems = []
    if actual_md5 != out.md5:
        problems.append(
            f"{shown}: expected md5 {out.md5}, got {actual_md5} "
            f"(remote object {object_path(out.md5)})"
        )
    if out.size is not None and actual_size != out.size:
        problems.append(f"{shown}: expected {out.size} bytes, got {actual_size}")
    return problems


def read_directory_listing(listing_path: str, expected_md5: str) -> list[dict[str, str]]:
    """DVC's `.dir` object: a JSON list of `{"md5", "relpath"}`, whose own md5 names it."""
    actual_md5, _ = md5_and_size(listing_path)
    if actual_md5 != expected_md5:
        raise ValueError(f"its md5 is {actual_md5}, not {expected_md5}")
    with open(listing_path, encoding="utf-8") as f:
        listing = json.load(f)
    return [{"md5": entry["md5"], "relpath": entry["relpath"]} for entry in listing]


def files_under(root: str) -> set[str]:
    return {
        os.path.relpath(os.path.join(parent, name), root).replace(os.sep, "/")
        for parent, _, names in os.walk(root)
        for name in names
    }


def verify_directory(out: ExpectedOut, root: str, listing: list[dict[str, str]]) -> list[str]:
    """Problems with a fetched directory, checked file by file against its `.dir` listing."""
    if not os.path.isdir(root):
        return [f"{out.path}/: missing after the fetch"]
    problems = []
    expected = {entry["relpath"]: entry["md5"] for entry in listing}
    present = files_under(root)
    for relpath in sorted(present - set(expected)):
        problems.append(f"{out.path}/{relpath}: not in the directory's listing")
    total_size = 0
    for relpath, md5 in sorted(expected.items()):
        path = os.path.join(root, relpath)
        file_out = ExpectedOut(relpath, md5, False, None, None, None)
        problems.extend(verify_file(file_out, path, f"{out.path}/{relpath}"))
        if os.path.isfile(path):
            total_size += os.path.getsize(path)
    if out.nfiles is not None and len(expected) != out.nfiles:
        problems.append(
            f"{out.path}/: the pointer says {out.nfiles} files, the listing has " f"{len(expected)}"
        )
    if out.size is not None and not problems and total_size != out.size:
        problems.append(f"{out.path}/: expected {out.size} bytes in all, got {total_size}")
    return problems


def verify_outs(pointer: str, outs: list[ExpectedOut], cache_dir: str, remote: str) -> list[str]:
    """Checks the md5 and size of every fetched file; returns the paths of the files checked.

    A directory's files are those its `.dir` listing names, in sorted order. Any mismatch raises.
    """
    problems: list[str] = []
    checked: list[str] = []
    for out in outs:
        if out.is_directory:
            listing_path = os.path.join(cache_dir, object_path(out.md5) + ".dir")
            try:
                listing = read_directory_listing(listing_path, out.md5)
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise FetchFailure(
                    f"{pointer}: could not read the listing of directory {out.path} "
                    f"({object_path(out.md5)}.dir) fetched from {remote}: {e}"
                )
            problems.extend(verify_directory(out, out.path, listing))
            relpaths = sorted(entry["relpath"] for entry in listing)
            checked.extend(f"{out.path}/{relpath}" for relpath in relpaths)
        else:
            problems.extend(verify_file(out, out.path))
            checked.append(out.path)
    if problems:
        raise corrupt_objects_failure(pointer, remote, problems)
    return checked


def corrupt_objects_failure(pointer: str, remote: str, problems: list[str]) -> FetchFailure:
    details = "\n".join(f"  - {problem}" for problem in problems)
    return FetchFailure(
        f"{pointer}: the bytes fetched from {remote} do not match the pointer:\n{details}\n"
        "The object in the remote is corrupt or was overwritten, so nothing was packaged. "
        "Delete the bad object from the remote, then run `dvc push` again from a machine whose "
        "workspace holds the right file (`md5sum` shows the md5 the pointer expects)."
    )


def check_local_remote(outs: list[ExpectedOut], root: str) -> list[str]:
    """Problems with the objects a local remote holds for `outs`, found before DVC reads them.

    DVC checks the md5 of unprotected objects in a local remote itself, and *deletes* those that
    do not match, reporting them as missing. Checking first keeps the remote as it is and names the
    corruption. (Objects absent from the remote are left for DVC to report.)
    """
    problems = []

    def check(shown: str, obj: str, expected_md5: str) -> bool:
        path = os.path.join(root, obj)
        if not os.path.isfile(path):
            return False
        actual, _ = md5_and_size(path)
        if actual != expected_md5:
            problems.append(
                f"{shown}: expected md5 {expected_md5}, got {actual} (remote object {obj})"
            )
            return False
        return True

    for out in outs:
        if not out.is_directory:
            check(out.path, object_path(out.md5), out.md5)
            continue
        listing_object = object_path(out.md5) + ".dir"
        if check(f"{out.path}/ (its listing)", listing_object, out.md5):
            with open(os.path.join(root, listing_object), encoding="utf-8") as f:
                for entry in json.load(f):
                    shown = f"{out.path}/{entry['relpath']}"
                    check(shown, object_path(entry["md5"]), entry["md5"])
    return problems


def missing_objects(
    outs: list[ExpectedOut], cache_dir: str, problems: list[DvcProblem]
) -> list[str]:
    """Objects the remote lacks: those DVC reported as not found, else those not in the cache."""
    reported = {
        md5
        for problem in problems
        if problem.is_not_found
        for md5 in re.findall(r"\b[0-9a-f]{32}(?:\.dir)?\b", problem.message)
    }
    if reported:
        return sorted(object_path(md5) for md5 in reported)
    wanted = []
    for out in outs:
        if not out.is_directory:
            wanted.append(object_path(out.md5))
            continue
        listing_object = object_path(out.md5) + ".dir"
        listing_path = os.path.join(cache_dir, listing_object)
        if not os.path.exists(listing_path):
            wanted.append(listing_object)
            continue
        with open(listing_path, encoding="utf-8") as f:
            wanted.extend(object_path(entry["md5"]) for entry in json.load(f))
    return [path for path in wanted if not os.path.exists(os.path.join(cache_dir, path))]


@dataclass(frozen=True)
class DvcProblem:
    """A warning or error DVC logged; `exception` is the type name of what it caught, if any."""

    message: str
    exception: str | None

    @property
    def is_not_found(self) -> bool:
        return self.exception == "FileNotFoundError" or "Missing cache files" in self.message

    @property
    def is_connection_or_auth_error(self) -> bool:
        return self.message.startswith("failed to connect to") or (
            self.message.startswith("failed to transfer")
            and self.exception not in (None, "FileNotFoundError")
        )


class DvcLogCollector(logging.Handler):
    """Keeps what DVC logs, for our own messages, instead of letting DVC print it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.problems: list[DvcProblem] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        exception = None
        if record.exc_info and record.exc_info[1] is not None:
            exception = type(record.exc_info[1]).__name__
            message = f"{message} - {exception}: {record.exc_info[1]}"
        self.problems.append(DvcProblem(message, exception))

    @classmethod
    def install(cls) -> DvcLogCollector:
        collector = cls()
        for name in ("dvc", "dvc_data", "dvc_objects"):
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.addHandler(collector)
            logger.propagate = False
        return collector


def fetch_failure(
    pointer: str,
    outs: list[ExpectedOut],
    cache_dir: str,
    remote: str,
    problems: list[DvcProblem],
    error: Exception,
) -> FetchFailure:
    """Says why a `dvc pull` failed: the remote is unreachable or refused us, or lacks objects."""
    remote_errors = [p.message for p in problems if p.is_connection_or_auth_error]
    missing = [] if remote_errors else missing_objects(outs, cache_dir, problems)
    if missing:
        return FetchFailure(
            f"{pointer}: {remote} does not have {', '.join(missing)}. Did you `dvc push`? "
            f"Run `dvc push {pointer}` where you ran `dvc add` (it pushes to the default remote, "
            "or the one `-r` names)."
        )
    said = "\n".join(f"  {line}" for line in remote_errors or [p.message for p in problems])
    return FetchFailure(
        f"{pointer}: could not fetch from {remote}: {type(error).__name__}: {error}\n"
        + (f"DVC said:\n{said}\n" if said else "")
        + "Check that the remote is reachable from this machine and that your credentials are "
        "valid. For S3: an AWS profile (`AWS_PROFILE`, ~/.aws/credentials, or a file named by "
        "`AWS_SHARED_CREDENTIALS_FILE`), or `dvc remote modify --local <remote> ...` in "
        ".dvc/config.local. See docs/weights.md."
    )


def fetch(request: dict[str, Any]) -> None:
    # DVC is only in the tool PEX this script runs in (the `dvc` resolve).
    from dvc.config import Config  # type: ignore[import]  # pants: no-infer-dep
    from dvc.repo import Repo  # type: ignore[import]  # pants: no-infer-dep

    pointer = request["pointer"]
    outs = [ExpectedOut.from_json(out) for out in request["outs"]]
    dvc_dir = request["dvc_dir"]
    local_config_path = os.path.join(dvc_dir, "config.local")
    config = Config.load_file(os.path.join(".dvc", "config"))
    if os.path.exists(local_config_path):
        config = merge_configs(config, Config.load_file(local_config_path))
    config = absolute_remote_urls(config, dvc_dir)
    secrets = secrets_in(config)
    remotes = {out.remote: describe_remote(config, out.remote) for out in outs}
    remote_text = ", ".join(str(remote) for remote in remotes.values())

    sandbox = os.getcwd()
    cache_dir = os.path.join(sandbox, ".dvc", "cache")
    sandbox_config = merge_configs(
        config,
        {
            "core": {
                # The sandbox is no git repo; a real repo's .dvc/config needs no `no_scm`.
                "no_scm": True,
                "analytics": False,
                "check_update": False,
                # DVC's site cache would otherwise collect entries for every sandbox.
                "site_cache_dir": os.path.join(sandbox, ".dvc", "site-cache"),
            },
            "cache": {"type": "hardlink,copy"},
        },
    )
    for remote in remotes.values():
        if remote.local_root:
            corrupt = check_local_remote(outs, remote.local_root)
            if corrupt:
                raise corrupt_objects_failure(pointer, str(remote), corrupt)
    dvc_log = DvcLogCollector.install()
    try:
        with Repo(sandbox, config=sandbox_config) as repo:
            stats = repo.pull(targets=[pointer])["stats"]
    except Exception as e:
        failure = fetch_failure(pointer, outs, cache_dir, remote_text, dvc_log.problems, e)
        raise FetchFailure(scrub(str(failure), secrets))
    checked = verify_outs(pointer, outs, cache_dir, remote_text)
    print(
        f"{pointer}: fetched {stats.get('fetched', 0)} object(s) from {remote_text}, verified "
        f"{len(checked)} file(s)."
    )


def main(argv: list[str]) -> int:
    try:
        fetch(json.loads(argv[1]))
    except FetchFailure as failure:
        print(str(failure), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
