"""`[triton-package]`: the tool that writes MME tarballs for `./pants package`, and how."""

from __future__ import annotations

from enum import Enum

from pants.option.option_types import EnumOption
from pants.util.strutil import softwrap
from triton_mme.subsystems.tool import ScriptToolBase


class TarballCompression(Enum):
    """What `scripts/write_tarball.py` deflates (see its docstring for the format)."""

    auto = "auto"
    best = "best"
    none = "none"


COMPRESSION_HELP = softwrap(
    """
    How model tarballs are compressed. `auto`: compress configs, code and text, and store (do
    not compress) files that barely compress, such as float weights and the already compressed
    `python_env.tar.gz`; the tarball is a few percent larger than with `best`, and much faster to
    write and to extract on the endpoint (every cold load extracts it). `best`: compress
    everything, for the smallest objects in S3 and the slowest writes and extractions. `none`:
    store everything: the fastest, and the largest. Every setting gives a standard, byte-
    reproducible `.tar.gz`.
    """
)


class TarballWriterSubsystem(ScriptToolBase):
    options_scope = "triton-package"
    name = "Triton package"
    help = softwrap(
        """
        How `package` writes `<model_name>_<artifact_version>.tar.gz`: a sandboxed Python
        process (standard library only) writes the tarball with sorted members, fixed mtimes and
        owners, so the same model always gives the same bytes.
        """
    )
    main_module = "write_tarball"
    scripts = ("write_tarball.py", "deterministic_tar.py")

    compression = EnumOption(
        default=TarballCompression.auto,
        help=COMPRESSION_HELP + " A model's `compression` field overrides this for its tarball.",
    )
