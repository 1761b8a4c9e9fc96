"""Conda env archives end to end: lock -> build -> Triton loads the env.

The env under test is `env_probe/python_env` (python 3.11 from the offline channel, numpy, and
`six` from PyPI through its lock). `env_probe` is a python model that imports `six`, which the
Triton stand-in image does not have. That env archives are byte-reproducible, built again from
nothing (offline channel included) in a checkout at another path, is shown by
package_models_test.py: the screen-detection tarballs carry their env archive, and the second
checkout packages them without any cache.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from checkout import copy_checkout, run_pants
from standin import serving

ENV = "tests/python_env/env_probe/python_env"
MODEL = "tests/python_env/env_probe"
ARCHIVE = f"dist/{ENV.replace('/', '.')}/python_env.tar.gz"


def pants(root: Path, *args: str) -> str:
    result = run_pants(root, *args)
    assert result.returncode == 0, result.stdout
    return result.stdout


@pytest.fixture(scope="module")
def root(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copied = tmp_path_factory.mktemp("checkout")
    copy_checkout(checkout, copied, pants_bootstrap=True)
    return copied


@pytest.fixture(scope="module")
def archive(root: Path, image: str) -> Path:
    pants(root, f"--triton-image={image}", "package", f"{ENV}:")
    return root / ARCHIVE


def test_the_lock_is_current_and_solves_again_to_the_same_lock(root: Path) -> None:
    lock = root / ENV / "python_env.lock"
    committed = lock.read_text()
    pants(root, "generate-lockfiles", f"--resolve={ENV}:python_env")
    assert json.loads(lock.read_text()) == json.loads(committed)


def test_a_changed_requirement_makes_the_lock_stale(root: Path, image: str) -> None:
    requirements = root / ENV / "requirements.txt"
    original = requirements.read_text()
    requirements.write_text(original + "attrs\n")
    try:
        result = run_pants(root, f"--triton-image={image}", "package", f"{ENV}:")
        assert result.returncode != 0
        assert "python_env.lock is out of date" in result.stdout
        assert f"./pants generate-lockfiles --resolve={ENV}:python_env" in result.stdout
    finally:
        requirements.write_text(original)


def get(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""


@pytest.fixture(scope="module")
def triton(image: str, archive: Path, root: Path, tmp_path_factory) -> Iterator[str]:
    """A stand-in Triton serving `env_probe` with its env and `no_env_probe` without it."""
    repository = tmp_path_factory.mktemp("model-repository")
    source = root / MODEL
    config = (source / "config.pbtxt").read_text()
    with_env = repository / "env_probe"
    shutil.copytree(source / "1", with_env / "1")
    (with_env / "config.pbtxt").write_text(config)
    shutil.copy(archive, with_env / "python_env.tar.gz")
    without_env = repository / "no_env_probe"
    shutil.copytree(source / "1", without_env / "1")
    (without_env / "config.pbtxt").write_text(
        "\n".join(
            line.replace('"env_probe"', '"no_env_probe"')
            for line in config.splitlines()
            if "EXECUTION_ENV_PATH" not in line
        )
    )
    for path in repository.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    # Live, not ready: `no_env_probe` fails to load on purpose, so the server is never ready.
    with serving(
        image,
        repository,
        "--exit-on-error=false",
        ready_path="/v2/health/live",
        docker_args=("--shm-size=256m",),
    ) as port:
        url = f"http://127.0.0.1:{port}"
        # Each model has finished loading (or failed to) once the index says so.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status, body = get(f"{url}/v2/repository/index", data=b"{}")
            states = {m.get("name"): m.get("state") for m in json.loads(body or b"[]")}
            if status == 200 and all(
                states.get(m) in ("READY", "UNAVAILABLE") for m in ("env_probe", "no_env_probe")
            ):
                break
            time.sleep(1)
        yield url


def test_triton_runs_the_model_in_its_env(triton: str) -> None:
    request = {"inputs": [{"name": "INPUT0", "shape": [2], "datatype": "FP32", "data": [1.5, 2]}]}
    status, body = get(f"{triton}/v2/models/env_probe/infer", data=json.dumps(request).encode())
    assert status == 200, body
    assert json.loads(body)["outputs"][0]["data"] == [3.0, 4.0]


def test_without_the_env_the_import_fails(triton: str) -> None:
    status, body = get(f"{triton}/v2/repository/index", data=b"{}")
    states = {m["name"]: m for m in json.loads(body)}
    assert states["no_env_probe"]["state"] == "UNAVAILABLE"
    assert "No module named 'six'" in states["no_env_probe"].get("reason", "")
