"""`[triton-package]`: the tool that writes MME tarballs for `./pants package`."""

from __future__ import annotations

from pants.util.strutil import softwrap
from triton_mme.subsystems.tool import ScriptToolBase


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
