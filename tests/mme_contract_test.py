"""The MME contract check: every tarball `./pants package models/::` writes is published with
`./pants publish` to a loopback S3 server (SeaweedFS), loaded from there through Triton's
SageMaker API under its S3 name (its TargetModel, `<model_name>_<version>.tar.gz`) and answers its
model's test cases, all of them loaded side by side on one instance: with them, the
screen-detection pipeline at a second artifact version whose postprocessing answers upper-case
labels, and a second ensemble sharing the pipeline's postprocessing member (their members are
renamed per artifact, docs/models.md, so `publish` accepts them in one prefix).

A layout SageMaker would pick wrongly (several models without an ensemble, the wrong ensemble, a
file at the tar root) fails here, not in the cloud. The local MME (the front service of
`./pants run :local-mme`, with the stand-in Triton image in Docker) plays SageMaker's part; the
cases are the `tests/*.json` files beside the model whose BUILD file packaged the tarball
(docs/testing.md), compared with the same functions `./pants test` uses.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from checkout import copy_checkout, run_pants
from conftest import PackagedCheckout, run_package
from local_mme_process import LocalMme
from seaweedfs import S3Server

from triton_mme.scripts.config_platform import declares_ensemble
from triton_mme.scripts.triton_cases import TRITON_DTYPES, Case, compare_output, load_case_file

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

DOCKER = shutil.which("docker") or "docker"

# The `seaweedfs` fixture: a loopback S3 server per module.
pytest_plugins = ["seaweedfs"]
BUCKET, PREFIX = "contract-models", "mme"


SCREEN_DETECTION = Path("models/screen_detection")
LABELS = ("no_screen", "phone_screen", "monitor_screen")
# A second ensemble over the pipeline's postprocessing: scores -> label, with its cases.
LABELS_ENSEMBLE = """\
name: "screen_detection_labels"
platform: "ensemble"
max_batch_size: 0
input [{ name: "SCORES", data_type: TYPE_FP32, dims: [1, 3] }]
output [
  { name: "LABEL", data_type: TYPE_STRING, dims: [1] },
  { name: "SCORE", data_type: TYPE_FP32, dims: [1] }
]
ensemble_scheduling {
  step [{
    model_name: "screen_detection_postprocessing"
    model_version: -1
    input_map { key: "SCORES" value: "SCORES" }
    output_map [{ key: "LABEL" value: "LABEL" }, { key: "SCORE" value: "SCORE" }]
  }]
}
"""


@dataclass(frozen=True)
class Deployable:
    """One packaged tarball and the test cases of the model that packaged it."""

    target_model: str  # the S3 object name: what clients pass as TargetModel
    tarball: Path
    cases: tuple[Case, ...]  # from tests/ beside the BUILD file that packaged it


@dataclass(frozen=True)
class Answers:
    """What the local MME answered once every case of every tarball was sent to it."""

    failures: tuple[str, ...]
    metrics: dict[str, Any]
    front_service_models: list[str]
    triton_models: dict[str, Any]


def deployables(packaged: PackagedCheckout) -> list[Deployable]:
    """`dist/<BUILD file's directory>/<name>.tar.gz`: the cases are in that directory's tests/."""
    found = []
    for relpath, tarball in packaged.tarballs().items():
        model_dir = packaged.root / os.path.dirname(relpath)
        assert (model_dir / "BUILD").is_file(), f"{relpath}: no BUILD file in {model_dir}"
        cases = tuple(
            # Named as in the repository in failure messages.
            replace(case, file=str(case_file.relative_to(packaged.root)))
            for case_file in sorted((model_dir / "tests").glob("*.json"))
            for case in load_case_file(str(case_file))
        )
        found.append(Deployable(os.path.basename(relpath), tarball, cases))
    assert found, f"`./pants package models/::` wrote no tarball:\n{packaged.output}"
    names = [d.target_model for d in found]
    assert len(set(names)) == len(names), f"two tarballs share an S3 name: {sorted(names)}"
    return found


def served_model(tarball: Path) -> str:
    """The model SageMaker serves from `tarball`, after checking that its root holds only model
    directories: one model, or one ensemble plus its members."""
    with tarfile.open(tarball) as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
    roots = {name.split("/")[0] for name in members}
    files_at_root = sorted(r for r in roots if r in members and not members[r].isdir())
    assert not files_at_root, f"{tarball.name}: files at the tar root: {files_at_root}"
    missing = sorted(r for r in roots if f"{r}/config.pbtxt" not in members)
    assert not missing, f"{tarball.name}: root directories without a config.pbtxt: {missing}"
    if len(roots) == 1:
        return roots.pop()
    with tarfile.open(tarball) as tar:
        ensembles = [
            root for root in sorted(roots) if declares_ensemble(_read(tar, f"{root}/config.pbtxt"))
        ]
    assert len(ensembles) == 1, (
        f"{tarball.name}: {len(roots)} model directories and {len(ensembles)} ensembles "
        f"({ensembles}): SageMaker serves a tarball's one ensemble, or its only model"
    )
    return ensembles[0]


def _read(tar: tarfile.TarFile, name: str) -> str:
    extracted = tar.extractfile(name)
    assert extracted is not None, name
    return extracted.read().decode()


def request_body(case: Case) -> bytes:
    """The case's inputs as a KServe v2 JSON request, as a client sends it to `invoke_endpoint`."""
    inputs = []
    for name, (datatype, array) in case.inputs.items():
        if datatype == "BYTES":
            data = [_text(case, name, element) for element in array.reshape(-1)]
        else:
            data = array.reshape(-1).tolist()
        inputs.append(
            {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}
        )
    return json.dumps({"inputs": inputs}).encode()


def _text(case: Case, tensor: str, element: bytes) -> str:
    try:
        return element.decode("utf-8")
    except UnicodeDecodeError:
        pytest.fail(f"{case.label} input `{tensor}`: JSON requests carry UTF-8 text only")


def output_arrays(reply: dict[str, Any]) -> dict[str, tuple[str, np.ndarray]]:
    """Triton's JSON reply as numpy arrays, like tritonclient's `as_numpy`."""
    arrays = {}
    for output in reply.get("outputs", []):
        datatype, shape = output["datatype"], output["shape"]
        if datatype == "BYTES":
            array = np.array([str(e).encode() for e in output["data"]], dtype=np.object_)
        else:
            array = np.array(output["data"], dtype=TRITON_DTYPES[datatype])
        arrays[output["name"]] = (datatype, array.reshape(shape))
    return arrays


def check_case(mme: LocalMme, target_model: str, case: Case) -> list[str]:
    """Sends one case by TargetModel; returns what is wrong with the answer (nothing: passed)."""
    status, reply = mme.invoke_json(target_model, request_body(case))
    if status != 200:
        return [f"{target_model} {case.label}: HTTP {status}: {reply}"]
    actual = output_arrays(reply)
    mismatches = []
    for expected in case.outputs:
        datatype, array = actual.get(expected.name, (None, None))
        mismatch = compare_output(f"{target_model} {case.label}", expected, array, datatype)
        if mismatch:
            mismatches.append(mismatch.render())
    return mismatches


def _upper_case_labels(case_file: Path) -> None:
    text = case_file.read_text()
    for label in LABELS:
        text = text.replace(f'"{label}"', f'"{label.upper()}"')
    case_file.write_text(text)


def second_version(root: Path) -> None:
    """The checkout at `root` after a visible change: postprocessing answers upper-case labels
    (pipeline 1.1.0), and a new ensemble `screen_detection_labels` 1.0.0 shares that member."""
    postprocessing = root / SCREEN_DETECTION / "screen_detection_postprocessing"
    model_py = postprocessing / "1" / "model.py"
    original = 'LABELS = ("no_screen", "phone_screen", "monitor_screen")'
    assert original in model_py.read_text()
    model_py.write_text(model_py.read_text().replace(original, original.upper()))
    pipeline = root / SCREEN_DETECTION / "screen_detection_pipeline"
    (pipeline / "model_version.txt").write_text("1.1.0\n")
    _upper_case_labels(pipeline / "tests" / "frames.json")
    labels = root / SCREEN_DETECTION / "screen_detection_labels"
    (labels / "tests").mkdir(parents=True)
    (labels / "BUILD").write_text("triton_ensemble()\n")
    (labels / "config.pbtxt").write_text(LABELS_ENSEMBLE)
    (labels / "model_version.txt").write_text("1.0.0\n")
    (labels / "tests" / "scores.json").write_bytes(
        (postprocessing / "tests" / "scores.json").read_bytes()
    )
    _upper_case_labels(labels / "tests" / "scores.json")


@pytest.fixture(scope="module")
def packaged_second_version(
    checkout: Path, tmp_path_factory: pytest.TempPathFactory
) -> PackagedCheckout:
    root = tmp_path_factory.mktemp("checkout-v2")
    copy_checkout(checkout, root, mtime=946_684_800)
    second_version(root)
    return run_package(root, 0o022, use_cache=True)


@pytest.fixture(scope="module")
def all_deployables(
    packaged: PackagedCheckout, packaged_second_version: PackagedCheckout
) -> list[Deployable]:
    """Every tarball of both checkouts; one that both wrote (unchanged models) once."""
    found: dict[str, Deployable] = {}
    for deployable in (*deployables(packaged), *deployables(packaged_second_version)):
        first = found.setdefault(deployable.target_model, deployable)
        assert (
            first.tarball.read_bytes() == deployable.tarball.read_bytes()
        ), f"{deployable.target_model}: packaged twice from the same sources, with other bytes"
    return list(found.values())


@pytest.fixture(scope="module")
def packaged_deployables(all_deployables: list[Deployable]) -> list[Deployable]:
    """The tarballs whose model has case files to send (a model tested by pytest files alone
    is checked for its layout only)."""
    with_cases = [d for d in all_deployables if d.cases]
    assert with_cases, "no packaged model has case files to check the endpoint with"
    return with_cases


def test_both_versions_and_the_second_ensemble_are_loaded_together(
    packaged_deployables: list[Deployable], answers: Answers
) -> None:
    names = {d.target_model for d in packaged_deployables}
    both = {
        "screen_detection_pipeline_1.0.0.tar.gz",
        "screen_detection_pipeline_1.1.0.tar.gz",
        "screen_detection_labels_1.0.0.tar.gz",
    }
    assert both <= names, sorted(names)
    assert both <= set(answers.front_service_models)
    # Each answers its own version's labels (the cases above); their members never collide.
    member_dirs = [
        name
        for deployable in packaged_deployables
        for name in model_dirs(deployable.tarball)
        if name != served_model(deployable.tarball)
    ]
    assert len(member_dirs) == len(set(member_dirs)), sorted(member_dirs)
    assert "screen_detection_pipeline_1.1.0.screen_detection_postprocessing" in member_dirs
    assert "screen_detection_labels_1.0.0.screen_detection_postprocessing" in member_dirs


def model_dirs(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as tar:
        return {m.name.split("/")[0] for m in tar.getmembers()}


def publish(packaged: PackagedCheckout, server: S3Server) -> str:
    """`./pants publish models/::` in a packaged checkout, to `s3://BUCKET/PREFIX` on `server`."""
    destination = {
        "bucket": BUCKET,
        "prefix": PREFIX,
        "region": server.region,
        "endpoint_url": server.endpoint_url,
    }
    env = {
        "PANTS_TRITON_PUBLISH_DESTINATIONS": repr({"contract": destination}),
        "PANTS_TRITON_PUBLISH_DESTINATION": "contract",
        **server.credentials_env(),
    }
    result = run_pants(packaged.root, "publish", "models/::", env=env)
    assert result.returncode == 0, result.stdout
    return result.stdout


@pytest.fixture(scope="module")
def published(
    all_deployables: list[Deployable],
    packaged: PackagedCheckout,
    packaged_second_version: PackagedCheckout,
    seaweedfs: S3Server,
) -> str:
    """Both checkouts published to one prefix, as CI publishes each change; the S3 source."""
    seaweedfs.create_bucket(BUCKET)
    for checkout in (packaged, packaged_second_version):
        publish(checkout, seaweedfs)
    listed = seaweedfs.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    keys = sorted(entry["Key"] for entry in listed.get("Contents", []))
    assert keys == sorted(f"{PREFIX}/{d.target_model}" for d in all_deployables)
    return f"s3://{BUCKET}/{PREFIX}"


@pytest.fixture(scope="module")
def answers(
    image: str,
    packaged_deployables: list[Deployable],
    published: str,
    seaweedfs: S3Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Answers]:
    """One local MME over the published S3 prefix; every case sent to it, then the first case
    of each tarball once more (a warm request)."""
    work_dir = tmp_path_factory.mktemp("local-mme")
    mme = LocalMme(
        DOCKER,
        image,
        work_dir,
        published,
        f"--s3-endpoint-url={seaweedfs.endpoint_url}",
        env=seaweedfs.credentials_env(),
    )
    try:
        failures = []
        for deployable in packaged_deployables:
            for case in (*deployable.cases, deployable.cases[0]):
                failures.extend(check_case(mme, deployable.target_model, case))
        yield Answers(
            failures=tuple(failures),
            metrics=mme.metrics(),
            front_service_models=mme.loaded_models(),
            triton_models=mme.triton_models(),
        )
    finally:
        assert mme.stop() == 0, mme.output()
        mme.assert_container_removed()


def test_tarball_root_holds_only_model_dirs_and_serves_the_named_model(
    all_deployables: list[Deployable],
) -> None:
    for deployable in all_deployables:
        served = served_model(deployable.tarball)
        # `<model_name>_<version>.tar.gz`: the TargetModel names the model SageMaker serves.
        assert deployable.target_model.startswith(
            f"{served}_"
        ), f"{deployable.target_model}: SageMaker would serve `{served}` from it"


def test_every_tarball_answers_its_cases_by_target_model(answers: Answers) -> None:
    if answers.failures:
        pytest.fail("\n".join(answers.failures), pytrace=False)
    assert answers.metrics["InvocationErrors"] == 0


def test_models_are_registered_under_their_target_model(
    packaged_deployables: list[Deployable], answers: Answers
) -> None:
    names = sorted(d.target_model for d in packaged_deployables)
    assert sorted(answers.front_service_models) == names
    # Triton itself knows each model by the TargetModel, as on SageMaker.
    registered = sorted(m["modelName"] for m in answers.triton_models["models"])
    assert registered == names, answers.triton_models


def test_a_second_invoke_is_a_cache_hit(
    packaged_deployables: list[Deployable], answers: Answers
) -> None:
    per_model = answers.metrics["models"]
    for deployable in packaged_deployables:
        counters = per_model[deployable.target_model]
        # Loaded once, on the first case; every later request (at least the repeated first
        # case) found it loaded.
        assert counters.get("Loads") == 1, counters
        assert counters.get("CacheMisses") == 1, counters
        assert counters.get("CacheHits") == len(deployable.cases), counters
    assert answers.metrics["LoadFailures"] == 0
    assert answers.metrics["Evictions"] == 0


def _tarball(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return path


@pytest.mark.parametrize(
    "files, error",
    [
        ({"a/config.pbtxt": "", "b/config.pbtxt": ""}, "2 model directories and 0 ensembles"),
        ({"a/config.pbtxt": "", "README.md": ""}, "files at the tar root: ['README.md']"),
        ({"a/config.pbtxt": "", "a/1/model.py": "", "b/1/model.py": ""}, "without a config"),
    ],
)
def test_layouts_sagemaker_would_pick_wrongly_are_refused(
    tmp_path: Path, files: dict[str, str], error: str
) -> None:
    with pytest.raises(AssertionError, match=re.escape(error)):
        served_model(_tarball(tmp_path / "m_1.tar.gz", files))


def test_the_ensemble_is_served_from_a_tarball_with_its_members(tmp_path: Path) -> None:
    files = {"step/config.pbtxt": "", "pipe/config.pbtxt": 'name: "pipe"\nplatform: "ensemble"\n'}
    assert served_model(_tarball(tmp_path / "pipe_1.tar.gz", files)) == "pipe"
