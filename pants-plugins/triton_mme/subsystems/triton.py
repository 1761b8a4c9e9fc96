"""The `[triton]` options: which Triton image serves models, and how its container runs."""

from __future__ import annotations

from pants.option.option_types import DictOption, IntOption, StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

# Triton 2.53 (NGC release 24.12) is the last NGC image on Ubuntu 22.04 / Python 3.10; newer
# ones run Python 3.12. The python backend stub must match the env archives' Python.
DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver:25.01-py3"


class TritonSubsystem(Subsystem):
    options_scope = "triton"
    name = "Triton"
    help = "How Triton Inference Server runs for `test` and `run`: the image and its container."

    image = StrOption(
        default=DEFAULT_IMAGE,
        help=softwrap(
            """
            The Triton Inference Server image that serves models in tests and local runs.
            Use the same release as your SageMaker endpoint's image. The image must already be
            present in the local Docker engine or be pullable by it.
            """
        ),
    )
    image_python_versions = DictOption[str](
        default={DEFAULT_IMAGE: "3.12"},
        help=softwrap(
            """
            Python version (major.minor) of the python backend stub of each image, keyed by
            image reference. Conda env archives of python models must be built for this version:
            Triton cannot load an env whose Python differs from its stub's.
            """
        ),
    )
    startup_timeout = IntOption(
        default=120,
        help="Seconds to wait for a started Triton server to report ready before failing.",
    )
    docker_run_args = StrListOption(
        default=["--shm-size=1g"],
        help=softwrap(
            """
            Extra arguments for `docker run` of a Triton container, e.g. `--gpus=all` on a GPU
            machine. The python backend passes tensors through shared memory: keep `--shm-size`
            large enough for your biggest request.
            """
        ),
    )
    server_args = StrListOption(
        default=[],
        help="Extra `tritonserver` arguments, e.g. `--log-verbose=1`.",
    )
    docker_search_path = StrListOption(
        default=["<PATH>"],
        help=softwrap(
            """
            Directories to search for the `docker` client binary. `<PATH>` expands to the
            PATH of the environment Pants runs in.
            """
        ),
    )

    def python_version_of(self, image: str) -> str | None:
        return self.image_python_versions.get(image)
