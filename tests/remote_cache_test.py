"""Two checkouts at different paths share every process through a REAPI remote cache.

A BuildGrid server (tests/reapi_cache.py) serves a cache on loopback, as a CI team would run one for
its runners (docs/ci-cd.md). `./pants package test models/::` runs in one copy of this checkout
without the local cache and writes every process to it (conftest.py's `packaged_twice`, whose cold
build also proves the tarballs reproducible); then in another copy at another path, with empty
local stores, as on a fresh runner. From Pants' `[stats]` counters, every process of that run
must come from the remote cache: no absolute path, machine-specific value or secret may sit in a
process's argv, environment or inputs (docs/architecture.md). The Triton test batches are hits
too: they are keyed by the image ID, the same on this machine.
(The machine's warm local cache cannot seed the remote instead: Pants' local cache runner wraps
the remote-cache runner, so a local hit is returned before anything is written remotely.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from checkout import copy_checkout, run_pants
from conftest import PackagedCheckout


@dataclass(frozen=True)
class PantsRun:
    output: str

    def counter(self, name: str) -> int:
        """A counter from the `[stats]` log Pants prints at the end of a run."""
        found = re.findall(rf"^\s*{name}: (\d+)$", self.output, re.MULTILINE)
        assert found, f"no `{name}` in Pants' stats:\n{self.output[-3000:]}"
        return int(found[-1])


def test_a_fresh_runner_is_served_by_the_remote_cache(
    checkout: Path,
    packaged_twice: tuple[PackagedCheckout, PackagedCheckout],
    remote_cache: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    _, seeded = packaged_twice
    assert PantsRun(seeded.output).counter("remote_cache_write_successes") > 0

    # A fresh runner: another path, no local store, no named caches, nothing written back.
    runner = tmp_path_factory.mktemp("runner-at-another-path")
    copy_checkout(checkout, runner, pants_bootstrap=True)
    fresh = tmp_path_factory.mktemp("fresh-runner-caches")
    result = run_pants(
        runner,
        "--stats-log",
        "--remote-cache-read",
        f"--remote-store-address={remote_cache}",
        f"--local-store-dir={fresh / 'lmdb_store'}",
        f"--named-caches-dir={fresh / 'named_caches'}",
        "package",
        "test",
        "models/::",
    )
    assert result.returncode == 0, result.stdout
    served = PantsRun(result.stdout)
    assert served.counter("remote_cache_requests_cached") > 0
    assert served.counter("remote_cache_requests_uncached") == 0, served.output
    assert sorted(p.name for p in (runner / "dist").rglob("*.tar.gz")) == sorted(
        p.name for p in (seeded.root / "dist").rglob("*.tar.gz")
    )
