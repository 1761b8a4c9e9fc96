"""One member order and one normalised header for every archive the plugin writes (stdlib only).

The MME tarball (`write_tarball.py`) and the env archive (`build_env.py`) list members in
`member_order` and write them with `normalized` headers into `gzipped_tar`, so the same files give
the same bytes whatever their mtimes, owners, umask, locale or order on disk. The offline
channel's conda packages (`build_offline_channel.py`) use `normalized` headers in bz2 archives.
"""

from __future__ import annotations

import contextlib
import gzip
import tarfile
from typing import IO, Iterable, Iterator, cast


def member_order(paths: Iterable[str]) -> list[str]:
    """`/`-separated paths sorted by component: a directory before its contents (`a`, `a/b`,
    `a.txt`), as tar extraction expects."""
    return sorted(paths, key=lambda path: path.split("/"))


def normalized(
    info: tarfile.TarInfo, mtime: int, executable: bool | None = None
) -> tarfile.TarInfo:
    """`info` with everything that depends on the machine made constant.

    Files get mode 0755 when `executable` (by default: when any execute bit is set) or 0644,
    directories 0755; owners are root with no names; extended headers (they carry the original
    mtimes) are dropped.
    """
    info.pax_headers = {}
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.isdir():
        info.mode = 0o755
    elif info.isfile():
        is_executable = bool(info.mode & 0o111) if executable is None else executable
        info.mode = 0o755 if is_executable else 0o644
    return info


@contextlib.contextmanager
def gzipped_tar(output: str, compresslevel: int = 6) -> Iterator[tarfile.TarFile]:
    """A PAX tar writer into `output`, gzipped with a header that has no file name and mtime 0."""
    with open(output, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
    ) as compressed, tarfile.open(
        fileobj=cast(IO[bytes], compressed), mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8"
    ) as tar:
        yield tar
