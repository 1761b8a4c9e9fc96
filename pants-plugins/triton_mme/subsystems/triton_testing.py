"""`[triton-test]`: options of `./pants test` on `triton_test` targets."""

from __future__ import annotations

from pants.option.option_types import SkipOption
from pants.option.subsystem import Subsystem


class TritonTestSubsystem(Subsystem):
    options_scope = "triton-test"
    name = "triton_test"
    help = "Runs `triton_test` targets: model test cases against a real Triton server in Docker."

    skip = SkipOption("test")
