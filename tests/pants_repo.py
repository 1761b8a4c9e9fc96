"""A copy of this repository's Pants setup in which end-to-end tests run `./pants`.

The tests depend on `//:pants-repo`, whose files Pants puts into their sandbox; `copy_pants_repo`
copies them into a temporary directory, where a test writes its fixture models. Containers are
counted through Docker events carrying a label unique to the test run, passed with
`--triton-docker-run-args`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

from checkout import run_pants
from standin import configured_image, docker

REPO_FILES = ("pants", "pants.toml", "3rdparty", "build-support", "pants-plugins")
_ONE_STEP_ENSEMBLE = """\
platform: "ensemble"
max_batch_size: 0
input [{ name: "X", data_type: TYPE_FP32, dims: [-1] }]
output [{ name: "Y", data_type: TYPE_FP32, dims: [-1] }]
ensemble_scheduling {
  step [{
    model_name: "STEP"
    model_version: -1
    input_map { key: "INPUT0", value: "X" }
    output_map { key: "OUTPUT0", value: "Y" }
  }]
}
"""


def one_step_ensemble(step_model: str) -> str:
    """The config of an ensemble `X -> step_model (INPUT0 -> OUTPUT0) -> Y`, FP32, no batching."""
    return _ONE_STEP_ENSEMBLE.replace('"STEP"', f'"{step_model}"')


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = f"triton_mme.e2e={uuid.uuid4().hex}"

    def clear(self) -> None:
        """Removes what tests wrote: their fixture models and what Pants put into dist/."""
        for directory in ("fixtures", "dist"):
            shutil.rmtree(self.root / directory, ignore_errors=True)

    def write(self, files: dict[str, str]) -> None:
        for path, content in files.items():
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)

    def pants_test(self, *args: str) -> tuple[subprocess.CompletedProcess, int]:
        """Run `./pants test` here; also return how many of our containers were created."""
        return self.pants("test", *args)

    def pants(self, goal: str, *args: str) -> tuple[subprocess.CompletedProcess, int]:
        """Run `./pants <goal>` here; also return how many of our containers were created."""
        since = time.time()
        result = run_pants(
            self.root,
            f"--triton-docker-run-args=+['--label={self.label}']",
            goal,
            *args,
            separate_stderr=True,
        )
        print(result.stdout, result.stderr)
        return result, self.containers_created(since)

    def containers_created(self, since: float) -> int:
        return containers_created(self.label, since)

    def leftover_containers(self) -> list[str]:
        return docker("ps", "-a", "-q", "--filter", f"label={self.label}").stdout.split()

    def triton_image(self) -> str:
        """The image this copy's `./pants test` uses."""
        return configured_image(self.root)


def containers_created(label: str, since: float) -> int:
    """How many containers carrying `label` Docker created since `since` (epoch seconds)."""
    events = docker(
        *("events", "--since", f"{since - 1:.0f}", "--until", f"{time.time() + 1:.0f}"),
        *("--filter", "type=container", "--filter", "event=create"),
        *("--filter", f"label={label}", "--format", "{{.ID}}"),
    )
    return len(events.stdout.split())


def copy_pants_repo(root: Path, source: Path = Path(".")) -> Repo:
    """The Pants setup of `source` copied to `root`: by default the sandbox's working directory,
    which holds the //:pants-repo files; benchmarks pass the checkout."""
    for name in REPO_FILES:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, root / name)
        else:
            shutil.copy2(path, root / name)
    return Repo(root)


_shared: list[Repo] = []


def shared_pants_repo(tmp_path: Path) -> Repo:
    """The one copy of this test process, made in the first caller's `tmp_path`: its pantsd then
    serves every test (Pants starts in ~1.5 s instead of ~20 s). Each call clears what earlier
    tests wrote, so a test starts from the Pants setup alone."""
    if not _shared:
        root = tmp_path / "pants-repo"
        root.mkdir()
        _shared.append(copy_pants_repo(root))
    _shared[0].clear()
    return _shared[0]
