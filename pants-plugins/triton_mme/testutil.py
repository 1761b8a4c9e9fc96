"""Helpers for RuleRunner tests whose rules run real processes (PEXes)."""

from __future__ import annotations

import glob
import hashlib
import os

PEX_VERSION = "v2.1.137"


def local_pex_cli_options() -> list[str] | None:
    """`[pex-cli]` options that point a RuleRunner at the `pex` tool `./pants` built locally.

    Pants would download it from GitHub otherwise, which these machines cannot reach. `None`
    when `./pants` has not built it on this machine (the caller should skip). The test target
    needs `extra_env_vars=["HOME", "PATH", "PYENV_ROOT", "TRITON_MME_BOOTSTRAP_CACHE"]`.
    """
    cache = os.environ.get("TRITON_MME_BOOTSTRAP_CACHE") or os.path.join(
        os.environ.get("HOME", "/nonexistent"), ".cache", "triton-mme-bootstrap"
    )
    candidates = sorted(glob.glob(os.path.join(cache, f"pex-{PEX_VERSION}-*")))
    if not candidates:
        return None
    path = candidates[0]
    with open(path, "rb") as f:
        content = f.read()
    digest = hashlib.sha256(content).hexdigest()
    return [
        f"--pex-cli-version={PEX_VERSION}",
        f"--pex-cli-known-versions=['{PEX_VERSION}|linux_x86_64|{digest}|{len(content)}']",
        f"--pex-cli-url-template=file://{path}",
    ]
