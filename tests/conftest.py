"""Fixtures for end-to-end tests: copies of this checkout, and `./pants package` run in them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
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


def run_package(root: Path, umask: int, *, use_cache: bool) -> PackagedCheckout:
    previous = os.umask(umask)
    try:
        # Without the cache, the tarballs are really written again, not replayed.
        cache = "--local-cache" if use_cache else "--no-local-cache"
        result = run_pants(root, cache, "package", "models/::")
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
def packaged_twice(
    packaged: PackagedCheckout, checkout: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PackagedCheckout, PackagedCheckout]:
    """`packaged`, and `./pants package models/::` again in a second copy that differs from the
    first in file order, mtimes and umask, written without the cache."""
    second = tmp_path_factory.mktemp("checkout-b")
    copy_checkout(checkout, second, reverse=True, mtime=1_700_000_000)
    return packaged, run_package(second, 0o077, use_cache=False)
