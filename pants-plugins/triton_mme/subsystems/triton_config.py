"""The `[triton-config]` options: the config.pbtxt checks that `./pants lint` runs."""

from __future__ import annotations

from pants.option.option_types import SkipOption
from pants.option.subsystem import Subsystem


class TritonConfigLint(Subsystem):
    options_scope = "triton-config"
    name = "triton-config"
    help = (
        "Checks every `triton_model` and `triton_ensemble` config.pbtxt as Triton would when it "
        "loads the model (schema, names, version folders, ensemble wiring, EXECUTION_ENV_PATH). "
        "`package` and `test` always run these checks; this runs them alone in `lint`."
    )

    skip = SkipOption("lint")
