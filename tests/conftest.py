"""Fixtures for end-to-end tests: copies of this checkout, `./pants package` run in them, the
Triton image, and a remote cache on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from reapi_cache import buildgrid_cache
from checkout import copy_checkout, find_checkout, run_pants
from standin import ImageUnavailable, available_image


@dataclass(frozen=True)
class PackagedCheckout:
    root: Path
    output: str

    def tarballs(self) -> dict[str, Path]:
        """The model tarballs, without the env archives `package` also writes for each
        `triton_python_env` (to dist/models.<dir>.python_env/)."""
        dist = self.root / "dist"
        return {str(p.relative_to(dist)): p for p in sorted((dist / "models").rglob("*.tar.gz"))}


def run_package(
    root: Path, umask: int, *, use_cache: bool, seed_remote_cache: str | None = None
) -> PackagedCheckout:
    """`./pants package models/::` in `root`. With `seed_remote_cache`, also `test`, and every
    process (all of them run: see below) is written to that remote cache for a fresh runner."""
    previous = os.umask(umask)
    try:
        # Without the cache, the tarballs are really written again, not replayed.
        cache = "--local-cache" if use_cache else "--no-local-cache"
        seed = (
            ("--stats-log", "--remote-cache-write", f"--remote-store-address={seed_remote_cache}")
            if seed_remote_cache
            else ()
        )
        goals = ("package", "test") if seed_remote_cache else ("package",)
        result = run_pants(root, cache, *seed, *goals, "models/::")
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stdout
    return PackagedCheckout(root, result.stdout)


@pytest.fixture(scope="session")
def checkout() -> Path:
    found = find_checkout()
    if found is None:
        pytest.skip("TRITON_MME_BUILDROOT is not set: run this test with `./pants test`")
    return found


@pytest.fixture(scope="session")
def image() -> str:
    """The Triton image `./pants test` uses, present in a running Docker engine; else the test is
    skipped with the reason (scripts/test fails a run with skips under CI). pants.toml comes from
    the sandbox (targets depending on //:launcher) or else from the checkout."""
    repo = Path.cwd() if (Path.cwd() / "pants.toml").is_file() else find_checkout()
    if repo is None:
        pytest.skip("no pants.toml: depend on //:launcher, or run this test with `./pants test`")
    try:
        return available_image(repo)
    except ImageUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def packaged(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> PackagedCheckout:
    """`./pants package models/::` in a copy of the checkout (Pants' cache may replay it)."""
    root = tmp_path_factory.mktemp("checkout-a")
    copy_checkout(checkout, root, reverse=False, mtime=946_684_800)
    return run_package(root, 0o022, use_cache=True)


@pytest.fixture(scope="session")
def remote_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a BuildGrid REAPI cache on loopback, for this test session."""
    with buildgrid_cache(tmp_path_factory.mktemp("buildgrid")) as address:
        yield address


@pytest.fixture(scope="session")
def packaged_twice(
    packaged: PackagedCheckout,
    checkout: Path,
    remote_cache: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[PackagedCheckout, PackagedCheckout]:
    """`packaged`, and `./pants package test models/::` again in a second copy that differs from
    the first in file order, mtimes and umask, without the local cache: every process runs
    again (a really cold build), and is written to `remote_cache`, which then serves a fresh
    runner (remote_cache_test.py). One cold build serves both tests."""
    second = tmp_path_factory.mktemp("checkout-b")
    copy_checkout(checkout, second, reverse=True, mtime=1_700_000_000)
    return packaged, run_package(second, 0o077, use_cache=False, seed_remote_cache=remote_cache)
