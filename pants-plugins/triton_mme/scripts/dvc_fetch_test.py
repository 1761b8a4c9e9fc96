from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from triton_mme.scripts.dvc_fetch import (
    DvcProblem,
    ExpectedOut,
    FetchFailure,
    absolute_remote_urls,
    check_local_remote,
    describe_remote,
    fetch_failure,
    redact_url,
    scrub,
    secrets_in,
    verify_outs,
)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def file_out(path: str, data: bytes) -> ExpectedOut:
    return ExpectedOut(path, md5(data), False, len(data), None, None)


def write_directory(root: Path, files: dict[str, bytes]) -> tuple[ExpectedOut, Path]:
    """A directory out, its files under `root/tok`, and its `.dir` listing in `root/cache`."""
    listing = json.dumps(
        [{"md5": md5(data), "relpath": name} for name, data in sorted(files.items())]
    ).encode()
    listing_md5 = md5(listing)
    cache = root / "cache"
    listing_path = cache / "files" / "md5" / listing_md5[:2] / (listing_md5[2:] + ".dir")
    listing_path.parent.mkdir(parents=True)
    listing_path.write_bytes(listing)
    for name, data in files.items():
        (root / "tok" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "tok" / name).write_bytes(data)
    size = sum(len(data) for data in files.values())
    return ExpectedOut("tok", listing_md5, True, size, len(files), None), cache


def test_matching_file_passes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("model.onnx").write_bytes(b"weights")
    checked = verify_outs(
        "model.onnx.dvc", [file_out("model.onnx", b"weights")], "cache", "remote `r`"
    )
    assert checked == ["model.onnx"]


def test_corrupt_file_names_pointer_md5s_and_remote(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("model.onnx").write_bytes(b"garbage")
    expected = file_out("model.onnx", b"weights")
    with pytest.raises(FetchFailure) as failure:
        verify_outs("m/1/model.onnx.dvc", [expected], "cache", "remote `store` (s3://b/dvc)")
    message = str(failure.value)
    assert message.startswith("m/1/model.onnx.dvc: the bytes fetched from remote `store`")
    assert f"expected md5 {expected.md5}, got {md5(b'garbage')}" in message
    assert f"files/md5/{expected.md5[:2]}/{expected.md5[2:]}" in message


def test_wrong_size_is_reported(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("model.onnx").write_bytes(b"weights")
    out = ExpectedOut("model.onnx", md5(b"weights"), False, 3, None, None)
    with pytest.raises(FetchFailure, match="expected 3 bytes, got 7"):
        verify_outs("model.onnx.dvc", [out], "cache", "remote `r`")


def test_directory_is_checked_file_by_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    out, cache = write_directory(tmp_path, {"a.txt": b"a", "sub/b.txt": b"b"})
    assert verify_outs("tok.dvc", [out], str(cache), "remote `r`") == ["tok/a.txt", "tok/sub/b.txt"]

    (tmp_path / "tok" / "sub" / "b.txt").write_bytes(b"not b")
    (tmp_path / "tok" / "extra.txt").write_bytes(b"?")
    with pytest.raises(FetchFailure) as failure:
        verify_outs("tok.dvc", [out], str(cache), "remote `r`")
    message = str(failure.value)
    assert f"tok/sub/b.txt: expected md5 {md5(b'b')}, got {md5(b'not b')}" in message
    assert "tok/extra.txt: not in the directory's listing" in message


def test_corrupt_directory_listing_is_reported(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    out, cache = write_directory(tmp_path, {"a.txt": b"a"})
    listing = next(cache.rglob("*.dir"))
    listing.write_text("[]")
    with pytest.raises(FetchFailure, match=r"could not read the listing of directory tok"):
        verify_outs("tok.dvc", [out], str(cache), "remote `r`")


def test_missing_objects_say_which_and_suggest_push(tmp_path: Path) -> None:
    out = file_out("m/model.onnx", b"weights")
    problems = [DvcProblem(f"Missing cache files:\nmd5: {out.md5}", None)]
    failure = fetch_failure(
        "m/model.onnx.dvc", [out], str(tmp_path), "remote `r` (/store)", problems, Exception()
    )
    assert f"does not have files/md5/{out.md5[:2]}/{out.md5[2:]}" in str(failure)
    assert "Did you `dvc push`?" in str(failure)


def test_local_remote_objects_are_checked_before_dvc_reads_them(tmp_path: Path) -> None:
    store = tmp_path / "store"
    out = file_out("m/model.onnx", b"weights")
    assert check_local_remote([out], str(store)) == []  # absent: DVC reports it

    stored = store / "files" / "md5" / out.md5[:2] / out.md5[2:]
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"rot")
    assert check_local_remote([out], str(store)) == [
        f"m/model.onnx: expected md5 {out.md5}, got {md5(b'rot')} "
        f"(remote object files/md5/{out.md5[:2]}/{out.md5[2:]})"
    ]


def test_local_remote_directory_members_are_checked(tmp_path: Path) -> None:
    out, cache = write_directory(tmp_path, {"a.txt": b"a", "b.txt": b"b"})
    store = tmp_path / "store"
    shutil.copytree(cache, store)
    for name, data in ((md5(b"a"), b"a"), (md5(b"b"), b"not b")):
        (store / "files" / "md5" / name[:2]).mkdir(parents=True, exist_ok=True)
        (store / "files" / "md5" / name[:2] / name[2:]).write_bytes(data)
    assert check_local_remote([out], str(store)) == [
        f"tok/b.txt: expected md5 {md5(b'b')}, got {md5(b'not b')} "
        f"(remote object files/md5/{md5(b'b')[:2]}/{md5(b'b')[2:]})"
    ]


def test_refused_credentials_are_a_remote_error(tmp_path: Path) -> None:
    out = file_out("m/model.onnx", b"weights")
    problems = [
        DvcProblem("failed to connect to s3 (b/files/md5) - PermissionError: Forbidden", "x")
    ]
    failure = fetch_failure(
        "m/model.onnx.dvc", [out], str(tmp_path), "remote `r`", problems, Exception("1 failed")
    )
    message = str(failure)
    assert "could not fetch from remote `r`" in message
    assert "PermissionError: Forbidden" in message
    assert "dvc push" not in message


def test_relative_local_remote_is_resolved_against_the_repo() -> None:
    config = {
        "remote": {
            "local": {"url": "../.dvc-storage"},
            "absolute": {"url": "/srv/dvc"},
            "s3": {"url": "s3://bucket/dvc"},
        }
    }
    remotes = absolute_remote_urls(config, "/repo/.dvc")["remote"]
    assert remotes["local"]["url"] == "/repo/.dvc-storage"
    assert remotes["absolute"]["url"] == "/srv/dvc"
    assert remotes["s3"]["url"] == "s3://bucket/dvc"


def test_remote_description_has_no_credentials() -> None:
    config = {
        "core": {"remote": "web"},
        "remote": {"web": {"url": "https://user:hunter2@example.com/dvc", "password": "pw"}},
    }
    assert str(describe_remote(config, None)) == "remote `web` (https://example.com/dvc)"
    assert redact_url("s3://bucket/dvc") == "s3://bucket/dvc"
    assert scrub("token pw leaked", secrets_in(config)) == "token *** leaked"


def test_no_default_remote_says_how_to_set_one() -> None:
    with pytest.raises(FetchFailure, match="dvc remote default"):
        describe_remote({"core": {}, "remote": {}}, None)
    with pytest.raises(FetchFailure, match="`dvc remote add gone <url>`"):
        describe_remote({"core": {}, "remote": {}}, "gone")
