from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest
from triton_mme.scripts.write_tarball import main, members, normalized_info, write_tarball

EXECUTABLES = frozenset({"pre/1/run.sh"})


def make_repository(root: Path, *, reverse: bool, mtime: int, umask: int) -> None:
    """The same files, created in a different order, with other mtimes and permissions."""
    old_umask = os.umask(umask)
    try:
        files = [
            ("pipeline/config.pbtxt", b'platform: "ensemble"\n'),
            ("pre/config.pbtxt", b'backend: "python"\n'),
            ("pre/1/model.py", b"print('hi')\n"),
            ("pre/1/run.sh", b"#!/bin/sh\n"),
            ("pre.txt/readme", b"x"),
        ]
        for path, content in reversed(files) if reverse else files:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)
        (root / "pipeline" / "1").mkdir()
        (root / "pre/1/run.sh").chmod(0o700)
        # As Pants hardlinks big files into sandboxes: executable on disk, but not in the digest.
        (root / "pre/1/model.py").chmod(0o555)
        for entry in root.rglob("*"):
            os.utime(entry, (mtime, mtime))
    finally:
        os.umask(old_umask)


def test_members_are_sorted_with_directories_first(tmp_path: Path) -> None:
    make_repository(tmp_path, reverse=True, mtime=1, umask=0o022)
    assert list(members(str(tmp_path))) == [
        "pipeline",
        "pipeline/1",
        "pipeline/config.pbtxt",
        "pre",
        "pre/1",
        "pre/1/model.py",
        "pre/1/run.sh",
        "pre/config.pbtxt",
        "pre.txt",
        "pre.txt/readme",
    ]


def test_headers_are_normalised(tmp_path: Path) -> None:
    make_repository(tmp_path, reverse=False, mtime=1_700_000_000, umask=0o077)
    script = normalized_info(str(tmp_path), "pre/1/run.sh", EXECUTABLES)
    data = normalized_info(str(tmp_path), "pre/1/model.py", EXECUTABLES)
    directory = normalized_info(str(tmp_path), "pipeline/1", EXECUTABLES)
    assert (script.mode, data.mode, directory.mode) == (0o755, 0o644, 0o755)
    for info in (script, data, directory):
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")
    assert directory.isdir() and data.isfile() and data.size == len(b"print('hi')\n")


def test_symlinks_are_refused(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/etc/hostname")
    with pytest.raises(ValueError, match="only files and directories"):
        normalized_info(str(tmp_path), "link", EXECUTABLES)


def test_tarball_is_byte_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    make_repository(first, reverse=False, mtime=1, umask=0o022)
    make_repository(second, reverse=True, mtime=1_700_000_000, umask=0o077)
    write_tarball(str(first), str(tmp_path / "a.tar.gz"), EXECUTABLES)
    (tmp_path / "executables.txt").write_text("pre/1/run.sh\n")
    argv = [str(second), str(tmp_path / "out" / "b.tar.gz"), str(tmp_path / "executables.txt")]
    assert main(["write_tarball.py", *argv]) == 0

    a = (tmp_path / "a.tar.gz").read_bytes()
    b = (tmp_path / "out" / "b.tar.gz").read_bytes()
    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()
    # gzip header: no FNAME flag, mtime 0.
    assert a[3] == 0 and a[4:8] == b"\0\0\0\0"
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        names = tar.getnames()
        assert "pipeline/1" in names  # The empty version folder is kept.
        assert tar.extractfile("pre/1/model.py").read() == b"print('hi')\n"  # type: ignore
