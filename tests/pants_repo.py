"""A copy of this repository's Pants setup in which end-to-end tests run `./pants`.

The tests depend on `//:pants-repo`, whose files Pants puts into their sandbox; `copy_pants_repo`
copies them into a temporary directory, where a test writes its fixture models. Containers are
counted through Docker events carrying a label unique to the test run, passed with
`--triton-docker-run-args`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

REPO_FILES = ("pants", "pants.toml", "3rdparty", "build-support", "pants-plugins")


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = f"triton_mme.e2e={uuid.uuid4().hex}"

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
        result = subprocess.run(
            [
                "./pants",
                "--no-pantsd",
                f"--triton-docker-run-args=+['--label={self.label}']",
                goal,
                *args,
            ],
            cwd=self.root,
            capture_output=True,
            text=True,
        )
        print(result.stdout, result.stderr)
        return result, self.containers_created(since)

    def containers_created(self, since: float) -> int:
        events = subprocess.run(
            [
                "docker",
                "events",
                "--since",
                f"{since - 1:.0f}",
                "--until",
                f"{time.time() + 1:.0f}",
                "--filter",
                "type=container",
                "--filter",
                "event=create",
                "--filter",
                f"label={self.label}",
                "--format",
                "{{.ID}}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return len(events.stdout.split())

    def leftover_containers(self) -> list[str]:
        listing = subprocess.run(
            ["docker", "ps", "-a", "-q", "--filter", f"label={self.label}"],
            capture_output=True,
            text=True,
            check=True,
        )
        return listing.stdout.split()

    def triton_image(self) -> str:
        """The `[triton].image` of this copy's pants.toml (the stand-in)."""
        found = re.search(r'^image = "([^"]+)"', (self.root / "pants.toml").read_text(), re.M)
        assert found, "pants.toml has no [triton].image"
        return found.group(1)


def copy_pants_repo(root: Path) -> Repo:
    # The sandbox's working directory holds the //:pants-repo files.
    for name in REPO_FILES:
        source = Path(name)
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy2(source, root / name)
    return Repo(root)
