from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest
from triton_mme.scripts.write_tarball import (
    CHUNK_SIZE,
    COMPRESSIONS,
    STORED,
    content_level,
    crc32_combine,
    deflate_chunk,
    main,
    members,
    normalized_info,
    write_tarball,
)

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


def incompressible(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def make_weights_repository(root: Path) -> None:
    """Text, an empty file, and weights larger than a chunk that do not compress."""
    (root / "m" / "1").mkdir(parents=True)
    (root / "m" / "config.pbtxt").write_text('backend: "python"\n' * 50)
    (root / "m" / "1" / "model.py").write_text("print('hello')\n" * 20_000)
    (root / "m" / "1" / "empty").write_bytes(b"")
    (root / "m" / "1" / "weights.bin").write_bytes(incompressible(2 * CHUNK_SIZE + 12_345))


def tarfile_stream(root: Path) -> bytes:
    """The uncompressed tar stream Python's tarfile writes for the same members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for path in members(str(root)):
            info = normalized_info(str(root), path, frozenset())
            with open(root / path, "rb") if info.isfile() else io.BytesIO() as content:
                tar.addfile(info, content if info.isfile() else None)
    return buffer.getvalue()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_writes_tarfiles_own_stream(tmp_path: Path, compression: str) -> None:
    make_weights_repository(tmp_path / "src")
    write_tarball(str(tmp_path / "src"), str(tmp_path / "out.tar.gz"), frozenset(), compression)
    written = (tmp_path / "out.tar.gz").read_bytes()
    assert gzip.decompress(written) == tarfile_stream(tmp_path / "src")


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_bytes_do_not_depend_on_the_number_of_workers(tmp_path: Path, compression: str) -> None:
    make_weights_repository(tmp_path / "src")
    digests = set()
    for workers in (1, 2, 5):
        output = tmp_path / f"{workers}.tar.gz"
        write_tarball(str(tmp_path / "src"), str(output), frozenset(), compression, workers)
        digests.add(hashlib.sha256(output.read_bytes()).hexdigest())
    assert len(digests) == 1


def test_auto_stores_what_does_not_compress_and_compresses_the_rest(tmp_path: Path) -> None:
    make_weights_repository(tmp_path / "src")
    sizes = {}
    for compression in COMPRESSIONS:
        output = tmp_path / f"{compression}.tar.gz"
        write_tarball(str(tmp_path / "src"), str(output), frozenset(), compression)
        sizes[compression] = output.stat().st_size
    weights = 2 * CHUNK_SIZE + 12_345
    # The weights are stored (a few bytes of framing), the code and config deflated.
    assert weights < sizes["auto"] < weights + 20_000
    assert sizes["none"] > weights + 300_000
    # Deflating noise only adds framing: `best` is no smaller than `auto` here, both beat `none`.
    assert sizes["auto"] < sizes["none"] and sizes["best"] < sizes["none"]


def test_content_level_samples_large_files(tmp_path: Path) -> None:
    noise, text = tmp_path / "noise.bin", tmp_path / "text.txt"
    noise.write_bytes(incompressible(1_000_000))
    text.write_bytes(b"0.125, 0.25, 0.5\n" * 60_000)
    assert content_level(str(noise), noise.stat().st_size, "auto") == STORED
    assert content_level(str(text), text.stat().st_size, "auto") > STORED
    assert content_level(str(text), text.stat().st_size, "none") == STORED
    assert content_level(str(noise), noise.stat().st_size, "best") == zlib.Z_BEST_COMPRESSION


@pytest.mark.parametrize("level", [STORED, 6])
@pytest.mark.parametrize("size", [0, 1, 0xFFFF, 0xFFFF * 2, 200_000])
def test_chunks_are_raw_deflate_that_ends_on_a_byte_boundary(size: int, level: int) -> None:
    data = incompressible(size)
    deflated, crc = deflate_chunk(data, level)
    assert crc == zlib.crc32(data)
    # Not final, so another chunk (or the final block) may follow it directly.
    decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
    assert decompressor.decompress(deflated) == data and not decompressor.eof


@pytest.mark.parametrize("sizes", [(0, 5), (5, 0), (1, 1), (CHUNK_SIZE, 12_345), (3, CHUNK_SIZE)])
def test_crc32_combine_agrees_with_zlib(sizes: tuple[int, int]) -> None:
    a, b = incompressible(sizes[0]), incompressible(sizes[1] + 1)[1:]
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_one_gzip_member_that_streaming_readers_read_whole(tmp_path: Path) -> None:
    """tarfile's stream mode (`r|gz`, used to extract straight from a download) reads only the
    first member of a gzip file: the tarball is a single member."""
    make_weights_repository(tmp_path / "src")
    tarball = tmp_path / "out.tar.gz"
    write_tarball(str(tmp_path / "src"), str(tarball), frozenset(), "auto", workers=2)
    written = tarball.read_bytes()
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert decompressor.decompress(written) == tarfile_stream(tmp_path / "src")
    assert decompressor.eof and decompressor.unused_data == b""
    assert written[3] == 0 and written[4:8] == b"\0\0\0\0"  # No file name, mtime 0.
    with open(tarball, "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
        sizes = {member.name: member.size for member in tar}
    assert sizes["m/1/weights.bin"] == 2 * CHUNK_SIZE + 12_345 and "m/config.pbtxt" in sizes


def test_gnu_tar_and_gzip_read_the_whole_stream(tmp_path: Path) -> None:
    make_weights_repository(tmp_path / "src")
    tarball = tmp_path / "out.tar.gz"
    write_tarball(str(tmp_path / "src"), str(tarball), frozenset(), "auto")
    (tmp_path / "gnu").mkdir()
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(tmp_path / "gnu")], check=True)
    for path in ("m/config.pbtxt", "m/1/model.py", "m/1/empty", "m/1/weights.bin"):
        assert (tmp_path / "gnu" / path).read_bytes() == (tmp_path / "src" / path).read_bytes()
    unzipped = subprocess.run(["gzip", "-dc", str(tarball)], check=True, capture_output=True)
    assert unzipped.stdout == tarfile_stream(tmp_path / "src")
    with tarfile.open(tarball) as tar:
        weights = tar.extractfile("m/1/weights.bin")
        assert (
            weights is not None
            and weights.read() == (tmp_path / "src/m/1/weights.bin").read_bytes()
        )


def test_unknown_compression_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["write_tarball.py", str(tmp_path), str(tmp_path / "o.tar.gz"), "x", "zstd"]) == 2
    assert "auto" in capsys.readouterr().err
