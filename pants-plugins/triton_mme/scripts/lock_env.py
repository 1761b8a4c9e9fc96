"""Solves one conda env and writes its lock file. Runs inside the conda tools PEX.

Usage: lock_env.py --request request.json --out python_env.lock

The request (written by the plugin) holds the inputs: conda specs, channels (the offline channel
as `<OFFLINE>`, found at `offline_channel_dir`), the requirements file, the target glibc, and
the hash of all of these. The lock records:
- every conda package: exact URL, sha256 and size (URLs in the offline channel are written
  relative to `<OFFLINE>`, so the lock is the same on every machine);
- every pip package from the requirements: one wheel per package, its URL, sha256 and size.
Packages that conda already provides are pinned to the conda version and not installed twice.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

OFFLINE = "<OFFLINE>"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def channel_location(channel: str, offline_dir: Path) -> str:
    return (offline_dir.resolve().as_uri() + "/") if channel == OFFLINE else channel


def virtual_packages(glibc: str) -> list:
    from rattler import GenericVirtualPackage, PackageName, Version
    from rattler.package.build_string import BuildString

    packages = [("__unix", "0", "0"), ("__linux", "5.15", "0"), ("__glibc", glibc, "0")]
    packages.append(("__archspec", "1", "x86_64"))
    return [
        GenericVirtualPackage(PackageName(name), Version(version), BuildString(build))
        for name, version, build in packages
    ]


async def solve_conda(request: dict, offline_dir: Path) -> list[dict]:
    from rattler import Channel, solve

    locations = {channel_location(c, offline_dir): c for c in request["channels"]}
    records = await solve(
        sources=[Channel(location) for location in locations],
        specs=request["conda_specs"],
        platforms=["linux-64", "noarch"],
        virtual_packages=virtual_packages(request["glibc"]),
    )
    packages = []
    for record in sorted(records, key=lambda r: r.name.normalized):
        url = str(record.url)
        offline_prefix = channel_location(OFFLINE, offline_dir)
        if url.startswith(offline_prefix):
            url = f"{OFFLINE}/{url[len(offline_prefix):]}"
        packages.append(
            {
                "name": record.name.normalized,
                "version": str(record.version),
                "build": str(record.build),
                "file_name": str(record.file_name),
                "url": url,
                "sha256": record.sha256.hex() if record.sha256 else None,
                "size": record.size,
            }
        )
    missing = [p["file_name"] for p in packages if not p["sha256"] or not p["size"]]
    if missing:
        raise SystemExit(f"The channel gives no sha256 or size for {missing}: cannot lock them.")
    return packages


def pip_report(request: dict, requirements: Path, constraints: dict[str, str]) -> list[dict]:
    glibc_minor = int(request["glibc"].split(".")[1])
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(17, glibc_minor + 1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    with tempfile.TemporaryDirectory() as work:
        constraints_file = Path(work) / "constraints.txt"
        constraints_file.write_text("".join(f"{n}=={v}\n" for n, v in sorted(constraints.items())))
        report = Path(work) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--disable-pip-version-check",
            "--no-cache-dir",
            "--only-binary=:all:",
            f"--python-version={request['python']}",
            "--implementation=cp",
            *(f"--platform={p}" for p in platforms),
            f"--target={work}/target",
            f"--report={report}",
            f"--constraint={constraints_file}",
            f"--requirement={requirements}",
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(
                f"pip could not resolve {request['requirements_path']} for Python "
                f"{request['python']} (wheels only):\n{result.stderr}"
            )
        return json.loads(report.read_text())["install"]


def download_size(url: str, sha256: str) -> int:
    with urllib.request.urlopen(url, timeout=120) as response:
        content = response.read()
    if hashlib.sha256(content).hexdigest() != sha256:
        raise SystemExit(f"{url} does not match the sha256 its index announced.")
    return len(content)


def lock_pip(request: dict, conda_packages: list[dict]) -> list[dict]:
    requirements = Path(request["requirements_path"])
    if not request["has_requirements"]:
        return []
    conda_versions = {normalize(p["name"]): p["version"] for p in conda_packages}
    installs = pip_report(request, requirements, {})
    overlap = {
        normalize(i["metadata"]["name"])
        for i in installs
        if normalize(i["metadata"]["name"]) in conda_versions
    }
    if overlap:
        # Resolve again with those packages held at the versions conda installs.
        pins = {name: conda_versions[name] for name in overlap}
        installs = pip_report(request, requirements, pins)
    packages = []
    for install in installs:
        name = normalize(install["metadata"]["name"])
        if name in conda_versions:
            continue
        info = install["download_info"]
        sha256 = info["archive_info"]["hashes"]["sha256"]
        packages.append(
            {
                "name": name,
                "version": install["metadata"]["version"],
                "file_name": info["url"].rsplit("/", 1)[-1],
                "url": info["url"],
                "sha256": sha256,
                "size": download_size(info["url"], sha256),
            }
        )
    return sorted(packages, key=lambda p: p["name"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--request", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    request = json.loads(args.request.read_text())
    offline_dir = Path(request["offline_channel_dir"])
    conda_packages = asyncio.run(solve_conda(request, offline_dir))
    lock = {
        "//": f"Generated by `{request['command']}`. Do not edit: run it again instead.",
        "lock_version": 1,
        "inputs_hash": request["inputs_hash"],
        "inputs": request["inputs"],
        "conda": conda_packages,
        "pip": lock_pip(request, conda_packages),
    }
    args.out.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # py-rattler's threads can crash the interpreter at shutdown.


if __name__ == "__main__":
    main()
