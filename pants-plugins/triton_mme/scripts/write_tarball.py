"""Writes a byte-reproducible .tar.gz of a directory (stdlib only; runs in a sandboxed process).

    python write_tarball.py SOURCE_DIR OUTPUT_FILE EXECUTABLES_FILE [COMPRESSION]

The same files give the same bytes whatever their mtimes, owners, umask, locale, order on disk or
number of cores: members are sorted by path, directories (also empty ones) are included, every
mtime is fixed, owners are root with no names, modes are 0755 (directories and executables) or
0644, and no gzip header has a file name or an mtime. Files are streamed, so multi-GB weights
never sit in memory.

The output is a standard gzip file made of several gzip *members* (RFC 1952 allows any number;
GNU tar, `gzip -d` and Python's `tarfile` read them as one stream). The tar stream is cut into
chunks of `CHUNK_SIZE` bytes, each deflated on its own, so chunks are compressed in parallel on
every core and the bytes do not depend on how many cores there are. COMPRESSION says how:

- `auto` (default): compress tar headers, code and text; *store* (deflate level 0) every file
  that a sample shows barely compresses: float weights, already compressed env archives. Stored
  data costs nothing to write or to extract, and deflating it would save a few percent at most.
- `best`: compress everything (level 9): the smallest tarball, the slowest to write and extract.
- `none`: store everything: the fastest to write and extract, the largest in S3.

EXECUTABLES_FILE lists the executable files, one path relative to SOURCE_DIR per line. The
modes on disk cannot say it: Pants hardlinks every file over 512 KB into the sandbox from its
store, read-only and executable, whatever the digest records.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
import tarfile
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Iterator

from triton_mme.scripts.deterministic_tar import member_order, normalized

MTIME = 0
COMPRESSIONS = ("auto", "best", "none")
# Deflate levels: 0 stores the bytes as they are.
STORED, DEFAULT_LEVEL, BEST_LEVEL = 0, 6, 9
# The unit of parallel work; a chunk boundary costs 18 bytes and a few bytes of lost context.
CHUNK_SIZE = 1 << 20
# `auto` stores a file whose sample deflates (level 1) to more than this fraction of its size.
STORE_ABOVE_RATIO = 0.9
SAMPLE_WINDOW = 64 * 1024
SAMPLE_WINDOWS = 3
# Smaller files are compressed without sampling: too small to matter either way.
SAMPLE_MIN_SIZE = SAMPLE_WINDOW * SAMPLE_WINDOWS

# A gzip member header: magic, deflate, no flags (no file name), mtime 0, no extra flags, OS
# unknown (255), as Python's gzip writes it.
_GZIP_HEADER = b"\x1f\x8b\x08\x00" + struct.pack("<I", MTIME) + b"\x00\xff"
_MAX_STORED_BLOCK = 0xFFFF


def members(root: str) -> Iterator[str]:
    """Every directory and file under `root`, as sorted `/`-separated paths relative to it.

    A directory sorts before its contents (`a`, `a/b`, `a.txt`), as tar extraction expects.
    """
    found = []
    for directory, dirnames, filenames in os.walk(root):
        relative = os.path.relpath(directory, root)
        for name in dirnames + filenames:
            path = name if relative == "." else os.path.join(relative, name)
            found.append(path.replace(os.sep, "/"))
    return iter(member_order(found))


def normalized_info(root: str, path: str, executables: frozenset[str]) -> tarfile.TarInfo:
    """The tar header for `path` with everything that depends on the machine made constant."""
    status = os.lstat(os.path.join(root, path))
    info = tarfile.TarInfo(path)
    if stat.S_ISDIR(status.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(status.st_mode):
        info.type = tarfile.REGTYPE
        info.size = status.st_size
    else:
        raise ValueError(f"{path}: only files and directories can go into a model tarball")
    return normalized(info, MTIME, executable=path in executables)


def gzip_member(data: bytes, level: int) -> bytes:
    """`data` as one gzip member: deflated at `level`, or in stored blocks for level 0."""
    if level == STORED:
        # Stored deflate blocks written directly: zlib's level 0 copies the data twice more.
        blocks = []
        for start in range(0, max(len(data), 1), _MAX_STORED_BLOCK):
            block = data[start : start + _MAX_STORED_BLOCK]
            final = start + _MAX_STORED_BLOCK >= len(data)
            blocks.append(struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF) + block)
        deflated = b"".join(blocks)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        deflated = compressor.compress(data) + compressor.flush()
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return _GZIP_HEADER + deflated + trailer


class GzipMemberWriter:
    """Writes a byte stream as gzip members of at most `CHUNK_SIZE` bytes each, in order.

    A chunk ends when it is full or when the deflate level changes, so the members depend only on
    the bytes and levels written, never on the number of `workers` that deflate them (zlib lets
    threads run in parallel).
    """

    def __init__(self, output: BinaryIO, workers: int) -> None:
        self._output = output
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._window = 2 * workers
        self._pending: deque[Future[bytes]] = deque()
        self._chunk = bytearray()
        self._level = DEFAULT_LEVEL

    def write(self, data: bytes, level: int) -> None:
        if level != self._level:
            self._submit()
            self._level = level
        view = memoryview(data)
        while view:
            room = CHUNK_SIZE - len(self._chunk)
            self._chunk += view[:room]
            view = view[room:]
            if len(self._chunk) == CHUNK_SIZE:
                self._submit()

    def _submit(self) -> None:
        if self._chunk:
            self._pending.append(self._pool.submit(gzip_member, bytes(self._chunk), self._level))
            self._chunk.clear()
        while len(self._pending) > self._window:
            self._output.write(self._pending.popleft().result())

    def close(self) -> None:
        self._submit()
        while self._pending:
            self._output.write(self._pending.popleft().result())
        self._pool.shutdown()


def content_level(path: str, size: int, compression: str) -> int:
    """The deflate level for a file's content under `compression` (see the module docstring)."""
    if compression == "none":
        return STORED
    if compression == "best":
        return BEST_LEVEL
    if size < SAMPLE_MIN_SIZE:
        return DEFAULT_LEVEL
    sample = 0
    with open(path, "rb") as f:
        for index in range(SAMPLE_WINDOWS):
            f.seek((size - SAMPLE_WINDOW) * index // (SAMPLE_WINDOWS - 1))
            sample += len(zlib.compress(f.read(SAMPLE_WINDOW), 1))
    return STORED if sample > STORE_ABOVE_RATIO * SAMPLE_MIN_SIZE else DEFAULT_LEVEL


def write_tarball(
    root: str,
    output: str,
    executables: frozenset[str],
    compression: str = "auto",
    workers: int | None = None,
) -> None:
    """Writes the tar stream tarfile would write for `members(root)`, as gzip members."""
    header_level = {"auto": DEFAULT_LEVEL, "best": BEST_LEVEL, "none": STORED}[compression]
    offset = 0
    with open(output, "wb") as raw:
        stream = GzipMemberWriter(raw, workers or os.cpu_count() or 1)
        for path in members(root):
            info = normalized_info(root, path, executables)
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            stream.write(header, header_level)
            offset += len(header)
            if info.isdir():
                continue
            full_path = os.path.join(root, path)
            level = content_level(full_path, info.size, compression)
            with open(full_path, "rb") as content:
                while block := content.read(CHUNK_SIZE):
                    stream.write(block, level)
            padding = -info.size % tarfile.BLOCKSIZE
            stream.write(tarfile.NUL * padding, level)
            offset += info.size + padding
        # The end-of-archive marker and record padding, as tarfile's close() writes them.
        end = tarfile.BLOCKSIZE * 2
        end += -(offset + end) % tarfile.RECORDSIZE
        stream.write(tarfile.NUL * end, header_level)
        stream.close()


def main(argv: list[str]) -> int:
    if len(argv) not in (4, 5) or (len(argv) == 5 and argv[4] not in COMPRESSIONS):
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[3], encoding="utf-8") as f:
        executables = frozenset(line for line in f.read().splitlines() if line)
    os.makedirs(os.path.dirname(argv[2]) or ".", exist_ok=True)
    write_tarball(argv[1], argv[2], executables, argv[4] if len(argv) == 5 else "auto")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
