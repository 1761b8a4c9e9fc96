"""`[triton-testing]`: options of `./pants test` on `triton_test` targets."""

from __future__ import annotations

from pants.option.option_types import IntOption, SkipOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap


class TritonTestSubsystem(Subsystem):
    options_scope = "triton-testing"
    name = "Triton tests"
    help = "Runs `triton_test` targets: model test cases against a real Triton server in Docker."

    skip = SkipOption("test")
    batch_size = IntOption(
        default=8,
        help=softwrap(
            """
            The most `triton_test` targets (with `share_server=True`) that one Triton server
            serves. Pants caches a batch's result as one: changing one model reruns the tests of
            its batch, so smaller batches retest less after a change, larger ones start fewer
            containers on a cold run. Where a batch ends depends on the targets' addresses, not
            on how many targets come before, so adding or removing a model changes only the
            batches around it.
            """
        ),
    )
    batch_max_megabytes = IntOption(
        default=4096,
        help=softwrap(
            """
            The most bytes, in MiB, of model directories (config, code, weights, env archives;
            each directory counted once) that one Triton server loads for a batch. A server
            holds every model of its batch in memory at once: keep this below the memory your
            machine can give Triton. A model larger than this gets a server of its own.
            """
        ),
    )

    @property
    def batch_max_bytes(self) -> int:
        return self.batch_max_megabytes * 1024 * 1024
