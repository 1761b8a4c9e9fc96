"""Builds one conda env from its lock only, packs it, and checks it. Runs in the conda tools PEX.

Usage: build_env.py --lock python_env.lock --packages DIR --wheels DIR --prefix DIR
                    --python X.Y --out python_env.tar.gz

- `--packages` holds every conda package of the lock (by file name), `--wheels` every pip wheel:
  nothing is downloaded here, and every file is checked against the lock's sha256.
- The env is installed at `--prefix`, a fixed path (the same on every machine and in every
  sandbox), since the prefix is written into the env's files and conda-pack's output.
- The archive is conda-pack's, re-tarred so the same lock gives the same bytes: sorted members,
  fixed mtime, uid/gid 0, normalised modes, gzip header mtime 0, no `.pyc`.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from triton_mme.scripts.deterministic_tar import gzipped_tar, member_order, normalized

FIXED_MTIME = 315532800  # 1980-01-01


def fail(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr)
    sys.stderr.flush()
    os._exit(1)


def verified(directory: Path, package: dict) -> Path:
    path = directory / package["file_name"]
    if not path.exists():
        fail(f"{package['file_name']} of the lock was not provided to the build.")
    if hashlib.sha256(path.read_bytes()).hexdigest() != package["sha256"]:
        fail(f"{package['file_name']} does not match the sha256 in the lock.")
    return path


async def install_conda(lock: dict, packages: Path, prefix: Path, cache: Path) -> None:
    from rattler import RepoDataRecord, install
    from rattler.platform import Platform

    records = []
    for package in lock["conda"]:
        path = verified(packages, package)
        record = await RepoDataRecord.from_package_archive(path)
        record.url = path.resolve().as_uri()
        records.append(record)
    await install(
        records,
        target_prefix=prefix,
        cache_dir=cache,
        platform=Platform("linux-64"),
        execute_link_scripts=False,
        show_progress=False,
    )


def normalise_conda_meta(lock: dict, prefix: Path) -> None:
    """Records the locked URLs, not this sandbox's paths, in `conda-meta/*.json`."""
    urls = {package["file_name"]: package["url"] for package in lock["conda"]}
    for meta_path in sorted((prefix / "conda-meta").glob("*.json")):
        meta = json.loads(meta_path.read_text())
        file_name = meta.get("fn") or f"{meta['name']}-{meta['version']}-{meta['build']}.tar.bz2"
        meta["url"] = urls.get(file_name, meta.get("url"))
        meta["channel"] = meta["url"].rsplit("/", 2)[0]
        # conda-pack reads `link` and `extracted_package_dir`: both sit under the fixed prefix.
        meta.pop("package_tarball_full_path", None)
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def install_pip(lock: dict, wheels: Path, prefix: Path) -> None:
    if not lock["pip"]:
        return
    requirements = prefix.parent / f"{prefix.name}.requirements.txt"
    requirements.write_text(
        "".join(
            f"{verified(wheels, wheel).resolve()} --hash=sha256:{wheel['sha256']}\n"
            for wheel in lock["pip"]
        )
    )
    env = {
        "PATH": f"{prefix}/bin:/usr/bin:/bin",
        "PIP_CONFIG_FILE": os.devnull,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }
    command = [str(prefix / "bin" / "python3"), "-m", "pip", "install", "--quiet", "--no-index"]
    command += ["--no-deps", "--require-hashes", "--no-compile", "--disable-pip-version-check"]
    command += ["--no-cache-dir", "--no-warn-script-location", "-r", str(requirements)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    requirements.unlink()
    if result.returncode != 0:
        fail(f"pip could not install the locked wheels:\n{result.stderr}")
    # pip records where each wheel came from: a sandbox path that differs on every build.
    for direct_url in prefix.glob("lib/python*/site-packages/*.dist-info/direct_url.json"):
        record = direct_url.parent / "RECORD"
        lines = record.read_text().splitlines(keepends=True)
        record.write_text("".join(line for line in lines if "/direct_url.json," not in line))
        direct_url.unlink()


def is_packing_litter(name: str) -> bool:
    """Bytecode (it embeds the build prefix) and rattler's cache tag."""
    return name.endswith((".pyc", ".pyo")) or name == "CACHEDIR.TAG"


def repack(packed: Path, out: Path) -> list[str]:
    """Re-tars conda-pack's output deterministically; returns the member names."""
    with tarfile.open(packed, "r:*") as source:
        by_name = {m.name: m for m in source.getmembers() if not is_packing_litter(m.name)}
        members = [by_name[name] for name in member_order(by_name)]
        with gzipped_tar(str(out)) as target:
            for member in members:
                content = source.extractfile(member) if member.isfile() else None
                target.addfile(normalized(member, FIXED_MTIME), content)
    return [m.name for m in members]


def check(members: list[str], python: str) -> None:
    names = set(members)
    required = ["bin/activate", "bin/python3", f"lib/libpython{python}.so.1.0"]
    missing = [name for name in required if name not in names]
    if f"lib/python{python}/site-packages/numpy/__init__.py" not in names:
        missing.append(f"numpy (lib/python{python}/site-packages/numpy)")
    if missing:
        found = sorted(n for n in names if n.startswith("lib/libpython"))
        fail(
            f"the env archive lacks {', '.join(missing)}, which Triton's python backend needs "
            f"for a Python {python} stub (libpython found: {found or 'none'}). Check the env's "
            "`python` field and that numpy is in its conda specs or requirements."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--packages", type=Path, required=True)
    parser.add_argument("--wheels", type=Path, required=True)
    parser.add_argument("--prefix", type=Path, required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    lock = json.loads(args.lock.read_text())
    prefix: Path = args.prefix
    prefix.parent.mkdir(parents=True, exist_ok=True)
    cache = prefix.parent / f"{prefix.name}.pkgs"
    packed = prefix.parent / f"{prefix.name}.conda-pack.tar"
    # The prefix is shared by every build of this lock on the machine: one at a time.
    with open(prefix.parent / f"{prefix.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            for leftover in (prefix, cache):
                shutil.rmtree(leftover, ignore_errors=True)
            asyncio.run(install_conda(lock, args.packages, prefix, cache))
            normalise_conda_meta(lock, prefix)
            install_pip(lock, args.wheels, prefix)
            import conda_pack  # type: ignore[import]

            conda_pack.pack(
                prefix=str(prefix),
                output=str(packed),
                format="tar",
                force=True,
                verbose=False,
                n_threads=1,
            )
            members = repack(packed, args.out)
        finally:
            for leftover in (prefix, cache, packed):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                elif leftover.exists():
                    leftover.unlink()
    check(members, args.python)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # py-rattler's threads can crash the interpreter at shutdown.


if __name__ == "__main__":
    main()
