"""`--changed-since` knows every edge: CI runs only what a push changed (docs/ci-cd.md).

In one git copy of this repo, each step changes one file, commits, and asks Pants (or
build-support/changed-targets, the CI's way to ask) what changed since the commit before. The
answer must be exactly the targets that file feeds, with every transitive dependent: a changed
env file reaches the models shipping the env and the ensemble shipping those; a changed weights
pointer reaches its model and the ensemble; a case file only its tests; a change outside the
models none; a change of Pants' own configuration everything.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from checkout import copy_checkout, run_in, run_pants

GROUP = "models/screen_detection"
ENV = f"{GROUP}/python_env:python_env"
PRE = f"{GROUP}/screen_detection_preprocessing"
POST = f"{GROUP}/screen_detection_postprocessing"
INFERENCER = f"{GROUP}/screen_detection_inferencer"
PIPELINE = f"{GROUP}/screen_detection_pipeline"
TEXT = "models/text_normalizer"


def model(path: str) -> set[str]:
    """A model directory's model target and its tests."""
    return {f"{path}:{path.rsplit('/', 1)[-1]}", f"{path}:tests"}


PIPELINE_TARGETS = model(PIPELINE)
# The env, both python models shipping it, and the ensemble shipping them.
ENV_DEPENDENTS = {ENV} | model(PRE) | model(POST) | PIPELINE_TARGETS


def run(root: Path, *argv: str) -> str:
    result = run_in(root, *argv)
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}"
    return result.stdout


@pytest.fixture(scope="module")
def repo(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("changed-since")
    copy_checkout(checkout, root, pants_bootstrap=True)
    run(root, "git", "init", "-q")
    run(root, "git", "add", "-A")
    commit(root, "checkout")
    return root


def commit(root: Path, message: str) -> None:
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", message)


def change(root: Path, path: str, line: str = "\n# changed\n") -> None:
    """Appends `line` to `path` (a new file if absent) and commits it."""
    with open(root / path, "a") as f:
        f.write(line)
    run(root, "git", "add", path)
    commit(root, f"change {path}")


def changed(root: Path) -> set[str]:
    """What Pants lists as changed by the last commit, with transitive dependents."""
    result = run_pants(
        root,
        "--changed-since=HEAD~1",
        "--changed-dependents=transitive",
        "list",
        separate_stderr=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return set(result.stdout.split())


def changed_targets(root: Path) -> set[str]:
    """What build-support/changed-targets prints for the last commit."""
    result = run_in(root, "build-support/changed-targets", "HEAD~1", separate_stderr=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return set(result.stdout.split())


# (file changed, line appended, exactly what must be listed); one commit each, in this order.
EDGES = [
    (f"{GROUP}/python_env/requirements.txt", "\n# changed\n", ENV_DEPENDENTS),
    (f"{GROUP}/python_env/python_env.lock", "\n# changed\n", ENV_DEPENDENTS),
    (f"{GROUP}/python_env/BUILD", "\n# changed\n", ENV_DEPENDENTS),
    # A DVC weights pointer: its model, its tests, and the ensemble shipping the model.
    (f"{INFERENCER}/1/model.onnx.dvc", "\n# changed\n", model(INFERENCER) | PIPELINE_TARGETS),
    (f"{INFERENCER}/config.pbtxt", "\n# changed\n", model(INFERENCER) | PIPELINE_TARGETS),
    # model.py is also linted by the python_sources of models/BUILD: its generated target counts.
    (
        f"{PRE}/1/model.py",
        "\n# changed\n",
        model(PRE) | PIPELINE_TARGETS | {f"{PRE}/1/model.py:../../../model_code"},
    ),
    (f"{PIPELINE}/model_version.txt", "\n", PIPELINE_TARGETS),
    (f"{PIPELINE}/config.pbtxt", "\n# changed\n", PIPELINE_TARGETS),
    # A case file: only the tests that own it.
    (f"{POST}/tests/scores.json", " ", {f"{POST}:tests"}),
    (f"{TEXT}/model_version.txt", "\n", model(TEXT)),
    # A label file beside the config (`label_filename`): the model's sources take every `.txt`.
    (f"{TEXT}/labels.txt", "label\n", model(TEXT)),
]


def test_every_edge_lists_exactly_what_it_feeds(repo: Path) -> None:
    failures = []
    for path, line, expected in EDGES:
        change(repo, path, line)
        found = changed(repo)
        if found != expected:
            failures.append(
                f"{path}: missing {sorted(expected - found)}, extra {sorted(found - expected)}"
            )
    assert not failures, "\n".join(failures)

    # The script CI runs agrees, and a push outside the models lists no target of them.
    change(repo, f"{PRE}/1/model.py")
    assert changed_targets(repo) == changed(repo)
    change(repo, "docs/ci-cd.md")
    assert not {a for a in changed_targets(repo) if a.startswith("models/")}
    assert changed(repo) == set()

    # Pants maps no target to its own configuration: the script says "everything".
    for path in ("pants.toml", "pants-plugins/triton_mme/target_types.py", "3rdparty/python/BUILD"):
        change(repo, path)
        assert changed_targets(repo) == {"::"}, path


def test_changed_targets_falls_back_to_everything_without_a_base(repo: Path) -> None:
    for base in ("", "0" * 40, "f" * 40):
        result = run_in(repo, "build-support/changed-targets", base, separate_stderr=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["::"], base
    assert (
        subprocess.run(
            ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True
        ).stdout
        == ""
    )
