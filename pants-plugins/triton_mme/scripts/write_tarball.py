"""Writes a byte-reproducible .tar.gz of a directory (stdlib only; runs in a sandboxed process).

    python write_tarball.py SOURCE_DIR OUTPUT_FILE EXECUTABLES_FILE

The same files give the same bytes whatever their mtimes, owners, umask, locale or order on
disk: members are sorted by path, directories (also empty ones) are included, every mtime is
fixed, owners are root with no names, modes are 0755 (directories and executables) or 0644, and
the gzip header has no file name and a zero mtime. Files are streamed, so multi-GB weights never
sit in memory.

EXECUTABLES_FILE lists the executable files, one path relative to SOURCE_DIR per line. The
modes on disk cannot say it: Pants hardlinks every file over 512 KB into the sandbox from its
store, read-only and executable, whatever the digest records.
"""

from __future__ import annotations

import os
import stat
import sys
import tarfile
from typing import Iterator

from triton_mme.scripts.deterministic_tar import gzipped_tar, member_order, normalized

MTIME = 0
COMPRESS_LEVEL = 6


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


def write_tarball(root: str, output: str, executables: frozenset[str]) -> None:
    with gzipped_tar(output, COMPRESS_LEVEL) as tar:
        for path in members(root):
            info = normalized_info(root, path, executables)
            if info.isdir():
                tar.addfile(info)
            else:
                with open(os.path.join(root, path), "rb") as content:
                    tar.addfile(info, content)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[3], encoding="utf-8") as f:
        executables = frozenset(line for line in f.read().splitlines() if line)
    os.makedirs(os.path.dirname(argv[2]) or ".", exist_ok=True)
    write_tarball(argv[1], argv[2], executables)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
