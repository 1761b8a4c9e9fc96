"""Writes a byte-reproducible .tar.gz of a directory (stdlib only; runs in a sandboxed process).

    python write_tarball.py SOURCE_DIR OUTPUT_FILE EXECUTABLES_FILE [COMPRESSION]

The same files give the same bytes whatever their mtimes, owners, umask, locale, order on disk or
number of cores: members are sorted by path, directories (also empty ones) are included, every
mtime is fixed, owners are root with no names, modes are 0755 (directories and executables) or
0644, and no gzip header has a file name or an mtime. Files are streamed, so multi-GB weights
never sit in memory.

The output is one standard gzip member whose deflate stream is made of independent pieces, as
pigz makes it: the tar stream is cut into chunks of `CHUNK_SIZE` bytes, each deflated on its own
and ended on a byte boundary (a sync flush, or whole stored blocks), so chunks are compressed in
parallel on every core, and the bytes do not depend on how many cores there are. The CRC of the
whole stream is combined from the chunks' CRCs. A single member matters: Python's `tarfile` in
stream mode (`r|gz`, how tarballs are commonly extracted straight from an S3 download) reads
only the first member of a multi-member gzip file. COMPRESSION says how chunks are deflated:

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

import functools
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

# The gzip header: magic, deflate, no flags (no file name), mtime 0, no extra flags, OS unknown
# (255), as Python's gzip writes it.
_GZIP_HEADER = b"\x1f\x8b\x08\x00" + struct.pack("<I", MTIME) + b"\x00\xff"
_MAX_STORED_BLOCK = 0xFFFF
# The last deflate block: an empty block of fixed Huffman codes with the final bit set (what zlib
# writes when a stream that was sync-flushed is finished).
_FINAL_BLOCK = b"\x03\x00"
_CRC32_POLYNOMIAL = 0xEDB88320


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


def deflate_chunk(data: bytes, level: int) -> tuple[bytes, int]:
    """(raw deflate blocks of `data`, CRC-32 of `data`), ending on a byte boundary, not final.

    Level 0 writes stored blocks directly: zlib's level 0 copies the data twice more.
    """
    if level == STORED:
        deflated = b"".join(
            struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF) + block
            for start in range(0, len(data), _MAX_STORED_BLOCK)
            for block in (data[start : start + _MAX_STORED_BLOCK],)
        )
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        deflated = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return deflated, zlib.crc32(data)


def _gf2_times(matrix: tuple[int, ...], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


@functools.lru_cache(maxsize=None)
def _append_zeros_operator(length: int) -> tuple[int, ...]:
    """The GF(2) matrix that turns crc32(a) into crc32(a + length zero bytes), before the final
    xor (zlib's `crc32_combine`). Cached: almost every chunk has the same length."""
    result = tuple(1 << bit for bit in range(32))  # identity
    power = (_CRC32_POLYNOMIAL, *(1 << bit for bit in range(31)))  # one zero bit
    for _ in range(3):  # one zero byte
        power = tuple(_gf2_times(power, row) for row in power)
    while length:
        if length & 1:
            result = tuple(_gf2_times(power, row) for row in result)
        length >>= 1
        if length:
            power = tuple(_gf2_times(power, row) for row in power)
    return result


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of `a + b` from crc32(a), crc32(b) and len(b)."""
    return _gf2_times(_append_zeros_operator(length2), crc1) ^ crc2 if length2 else crc1


class ParallelGzipWriter:
    """Writes a byte stream as one gzip member, deflating chunks of at most `CHUNK_SIZE` bytes
    on their own, in parallel.

    A chunk ends when it is full or when the deflate level changes, so the bytes depend only on
    the bytes and levels written, never on the number of `workers` that deflate them (zlib lets
    threads run in parallel).
    """

    def __init__(self, output: BinaryIO, workers: int) -> None:
        self._output = output
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._window = 2 * workers
        self._pending: deque[tuple[Future[tuple[bytes, int]], int]] = deque()
        self._chunk = bytearray()
        self._level = DEFAULT_LEVEL
        self._crc = 0
        self._length = 0
        output.write(_GZIP_HEADER)

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
            future = self._pool.submit(deflate_chunk, bytes(self._chunk), self._level)
            self._pending.append((future, len(self._chunk)))
            self._chunk.clear()
        while len(self._pending) > self._window:
            self._write_next()

    def _write_next(self) -> None:
        future, length = self._pending.popleft()
        deflated, crc = future.result()
        self._output.write(deflated)
        self._crc = crc32_combine(self._crc, crc, length)
        self._length += length

    def close(self) -> None:
        self._submit()
        while self._pending:
            self._write_next()
        self._pool.shutdown()
        self._output.write(_FINAL_BLOCK)
        self._output.write(struct.pack("<II", self._crc, self._length & 0xFFFFFFFF))


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
    """Writes the tar stream tarfile would write for `members(root)`, gzip'd (see above)."""
    header_level = {"auto": DEFAULT_LEVEL, "best": BEST_LEVEL, "none": STORED}[compression]
    offset = 0
    with open(output, "wb") as raw:
        stream = ParallelGzipWriter(raw, workers or os.cpu_count() or 1)
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
