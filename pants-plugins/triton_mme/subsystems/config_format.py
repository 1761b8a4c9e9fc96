"""`[triton-config-fmt]`: the config.pbtxt formatter's options."""

from __future__ import annotations

from pants.option.option_types import SkipOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import help_text


class TritonConfigFormatSubsystem(Subsystem):
    options_scope = "triton-config-fmt"
    name = "config.pbtxt formatter"
    help = help_text(
        """
        Writes every model's config.pbtxt in one layout: fields in the order of Triton's
        model_config.proto, each repeated field as one list (two `input [...]` lists become one),
        two-space indentation. Comments are kept, and the formatted file parses into exactly the
        same config. `./pants fmt` rewrites the files; `./pants lint` reports unformatted ones.
        """
    )

    skip = SkipOption("fmt", "lint")
