"""The `[triton-config]` options: the config.pbtxt checks that `./pants lint` runs."""

from __future__ import annotations

from pants.option.option_types import SkipOption
from pants.option.subsystem import Subsystem


class TritonConfigLint(Subsystem):
    options_scope = "triton-config"
    name = "triton-config"
    help = (
        "Checks every `triton_model` and `triton_ensemble` config.pbtxt as Triton would when it "
        "loads the model (schema, backend, platform, tensors, batching, instance groups, version "
        "folders and model files, ensemble wiring, EXECUTION_ENV_PATH), on the config Triton "
        "serves (completed from the ONNX graph as Triton's onnxruntime backend does; what a "
        "python model's auto_complete_config may fill in is not refused), plus the artifact "
        "version and python env that `package` and `test` check before they build anything. "
        "`./pants served-config` prints the completed config. See docs/models.md for every rule."
    )

    skip = SkipOption("lint")
