"""Helpers for the plugin's RuleRunner tests: small model configs, and the local `pex` tool."""

from __future__ import annotations

import glob
import hashlib
import os
from textwrap import dedent

PEX_VERSION = "v2.1.137"

# A python-backend model, and an ensemble with one step over it.
ADD_ONE_CONFIG = dedent(
    """\
    name: "add_one"
    backend: "python"
    max_batch_size: 0
    input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1] }]
    """
)

PIPELINE_CONFIG = dedent(
    """\
    name: "pipeline"
    platform: "ensemble"
    max_batch_size: 0
    input [{ name: "X", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "Y", data_type: TYPE_FP32, dims: [-1] }]
    ensemble_scheduling {
      step [{
        model_name: "add_one"
        model_version: -1
        input_map { key: "INPUT0", value: "X" }
        output_map { key: "OUTPUT0", value: "Y" }
      }]
    }
    """
)


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
