"""DVC-tracked weights end to end: the plugin's rules run the real DVC tool against real remotes.

Remotes: a local directory (the repo's default kind, addressed relative to `.dvc/`) and an S3
bucket on a SeaweedFS server on loopback that checks credentials. Objects are written into the
remotes the way `dvc push` lays them out (`files/md5/<2 hex>/<30 hex>`), so each test controls
exactly what the remote holds: everything, a missing object, or a corrupt one.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import pytest
from pants.backend.python.util_rules import pex
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error
from interpreters import find_python
from seaweedfs import S3Server
from triton_mme.util_rules import repository
from triton_mme.util_rules import weights
from triton_mme.util_rules.repository import ModelDirectory, ModelDirectoryRequest
from triton_mme.subsystems import dvc
from triton_mme.target_types import TritonModelTarget
from triton_mme.util_rules.weights import WeightsError

# The `seaweedfs` fixture: a loopback S3 server per module.
pytest_plugins = ["seaweedfs"]

CA_CERTS = "/etc/ssl/certs/ca-certificates.crt"
MODEL = "models/tiny"
CONFIG = dedent(
    """\
    name: "tiny"
    backend: "python"
    max_batch_size: 0
    input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [-1] }]
    output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [-1] }]
    """
)
ONNX_BYTES = b"\x08\x07pretend-onnx-weights" * 1000
TOKENIZER_FILES = {"vocab.txt": b"a\nb\nc\n", "merges/rules.txt": b"a b\n"}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def object_key(md5_hex: str) -> str:
    return f"files/md5/{md5_hex[:2]}/{md5_hex[2:]}"


@dataclass
class TrackedWeights:
    """Pointer files (model-directory-relative) and the remote objects `dvc push` would upload."""

    pointers: dict[str, str] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)

    def track_file(self, path: str, data: bytes) -> str:
        self.pointers[f"{path}.dvc"] = dedent(
            f"""\
            outs:
            - md5: {md5(data)}
              size: {len(data)}
              hash: md5
              path: {os.path.basename(path)}
            """
        )
        self.objects[object_key(md5(data))] = data
        return object_key(md5(data))

    def track_directory(self, path: str, files: dict[str, bytes]) -> str:
        listing = json.dumps(
            [{"md5": md5(data), "relpath": name} for name, data in sorted(files.items())]
        ).encode()
        self.pointers[f"{path}.dvc"] = dedent(
            f"""\
            outs:
            - md5: {md5(listing)}.dir
              size: {sum(len(data) for data in files.values())}
              nfiles: {len(files)}
              hash: md5
              path: {os.path.basename(path)}
            """
        )
        self.objects[object_key(md5(listing)) + ".dir"] = listing
        for data in files.values():
            self.objects[object_key(md5(data))] = data
        return object_key(md5(listing)) + ".dir"


def example_weights() -> TrackedWeights:
    tracked = TrackedWeights()
    tracked.track_file("1/model.onnx", ONNX_BYTES)
    tracked.track_directory("1/tokenizer", TOKENIZER_FILES)
    return tracked


def launcher_pex() -> Path:
    """The pex tool that ./pants built from PyPI (Pants' default download is not reachable)."""
    cache = os.environ.get("TRITON_MME_BOOTSTRAP_CACHE") or os.path.expanduser(
        "~/.cache/triton-mme-bootstrap"
    )
    found = sorted(glob.glob(os.path.join(cache, "pex-v*-*")))
    if not found:
        raise RuntimeError(f"No pex tool under {cache}: run ./pants once to build it.")
    return Path(found[-1])


def python311_dir() -> str:
    """The directory of a real Python 3.11, which the DVC tool runs on."""
    return os.path.dirname(find_python("3.11"))


def pants_options() -> list[str]:
    tool = launcher_pex()
    version = tool.name.split("-")[1]
    sha256 = hashlib.sha256(tool.read_bytes()).hexdigest()
    return [
        f"--ca-certs-path={CA_CERTS}",
        "--python-enable-resolves",
        "--python-resolves={'dvc': '3rdparty/python/dvc.lock'}",
        "--python-interpreter-constraints=['CPython==3.11.*']",
        f"--python-bootstrap-search-path=['{python311_dir()}']",
        f"--pex-cli-version={version}",
        f"--pex-cli-known-versions=['{version}|linux_x86_64|{sha256}|{tool.stat().st_size}']",
        f"--pex-cli-url-template=file://{tool}",
        "--subprocess-environment-env-vars=['PIP_CONFIG_FILE=/dev/null', "
        "'AWS_EC2_METADATA_DISABLED=true']",
    ]


@pytest.fixture(scope="module")
def options() -> list[str]:
    return pants_options()


def new_rule_runner(options: list[str], env: dict[str, str] | None = None) -> RuleRunner:
    rule_runner = RuleRunner(
        rules=[
            *repository.rules(),
            *weights.rules(),
            *dvc.rules(),
            *pex.rules(),
            QueryRule(ModelDirectory, [ModelDirectoryRequest]),
            QueryRule(DigestContents, [Digest]),
        ],
        target_types=[TritonModelTarget],
        # `.dvc/` and the local remote are hidden, and Pants ignores hidden directories unless
        # told otherwise.
        bootstrap_args=["--pants-ignore=+['!/.dvc/', '!/.dvc-storage/']"],
        ca_certs_path=CA_CERTS,
    )
    rule_runner.set_options(options, env=env, env_inherit={"PATH", "HOME", "PYENV_ROOT"})
    rule_runner.write_files(
        {"3rdparty/python/dvc.lock": Path("3rdparty/python/dvc.lock").read_text()}
    )
    return rule_runner


def write_model(rule_runner: RuleRunner, dvc_config: str, tracked: TrackedWeights) -> None:
    rule_runner.write_files(
        {
            ".dvc/config": dvc_config,
            f"{MODEL}/BUILD": "triton_model()",
            f"{MODEL}/config.pbtxt": CONFIG,
            f"{MODEL}/1/model.py": "# pre-processing\n",
            **{f"{MODEL}/{path}": text for path, text in tracked.pointers.items()},
        }
    )


def model_files(rule_runner: RuleRunner) -> dict[str, bytes]:
    directory = rule_runner.request(
        ModelDirectory, [ModelDirectoryRequest(rule_runner.get_target(Address(MODEL)))]
    )
    contents = rule_runner.request(DigestContents, [directory.digest])
    return {file.path: file.content for file in contents}


def assert_example_weights_in(files: dict[str, bytes]) -> None:
    assert files["tiny/1/model.onnx"] == ONNX_BYTES
    for name, data in TOKENIZER_FILES.items():
        assert files[f"tiny/1/tokenizer/{name}"] == data
    assert "tiny/1/model.onnx.dvc" not in files
    assert "tiny/1/model.py" in files


# --- A local directory remote, as the repo's default `.dvc-storage` is. -----------------------

LOCAL_CONFIG = dedent(
    """\
    [core]
        remote = local-store
    ['remote "local-store"']
        url = ../.dvc-storage
    """
)


def push_to_directory(root: Path, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)


@pytest.fixture
def local_runner(options: list[str]) -> RuleRunner:
    return new_rule_runner(options)


def test_local_remote_fetches_files_and_directories(local_runner: RuleRunner) -> None:
    tracked = example_weights()
    write_model(local_runner, LOCAL_CONFIG, tracked)
    push_to_directory(Path(local_runner.build_root, ".dvc-storage"), tracked.objects)
    assert_example_weights_in(model_files(local_runner))


def test_unchanged_pointer_is_not_fetched_again(local_runner: RuleRunner, tmp_path: Path) -> None:
    tracked = example_weights()
    # A local remote outside the repo: unlike the repo's own store, its objects are no input of
    # the fetch, so only the process cache can answer once it is gone.
    store = tmp_path / "store"
    outside_config = LOCAL_CONFIG.replace("../.dvc-storage", str(store))
    write_model(local_runner, outside_config, tracked)
    push_to_directory(store, tracked.objects)
    model_files(local_runner)
    shutil.rmtree(store)
    # Rewriting the pointers (same bytes) makes the rules run again; the fetch process is then
    # answered from Pants' process cache: no remote is needed any more.
    write_model(local_runner, outside_config, tracked)
    assert_example_weights_in(model_files(local_runner))


def test_workspace_copy_of_the_weights_is_accepted(local_runner: RuleRunner) -> None:
    tracked = example_weights()
    write_model(local_runner, LOCAL_CONFIG, tracked)
    push_to_directory(Path(local_runner.build_root, ".dvc-storage"), tracked.objects)
    # What `dvc add` leaves beside the pointer (git ignores it; Pants' sources glob sees it).
    local_runner.write_files({f"{MODEL}/1/model.onnx": ONNX_BYTES})
    assert_example_weights_in(model_files(local_runner))


def test_changed_workspace_weights_collide_with_the_pointer(local_runner: RuleRunner) -> None:
    tracked = example_weights()
    write_model(local_runner, LOCAL_CONFIG, tracked)
    push_to_directory(Path(local_runner.build_root, ".dvc-storage"), tracked.objects)
    local_runner.write_files({f"{MODEL}/1/model.onnx": b"retrained, not yet `dvc add`ed"})
    with engine_error(
        WeightsError, contains=f"{MODEL}/1/model.onnx is a file of the model and also tracked"
    ):
        model_files(local_runner)


def test_local_remote_missing_object(local_runner: RuleRunner) -> None:
    tracked = example_weights()
    write_model(local_runner, LOCAL_CONFIG, tracked)
    missing = object_key(md5(ONNX_BYTES))
    push_to_directory(
        Path(local_runner.build_root, ".dvc-storage"),
        {key: data for key, data in tracked.objects.items() if key != missing},
    )
    with engine_error(
        WeightsError,
        contains=(
            f"{MODEL}/1/model.onnx.dvc: remote `local-store` "
            f"(.dvc-storage) does not have {missing}. "
            "Did you `dvc push`?"
        ),
    ):
        model_files(local_runner)


def test_local_remote_corrupt_object(local_runner: RuleRunner) -> None:
    tracked = example_weights()
    write_model(local_runner, LOCAL_CONFIG, tracked)
    corrupt = b"bit rot"
    vocab_key = object_key(md5(TOKENIZER_FILES["vocab.txt"]))
    push_to_directory(
        Path(local_runner.build_root, ".dvc-storage"), {**tracked.objects, vocab_key: corrupt}
    )
    with engine_error(
        WeightsError,
        contains=(
            f"{MODEL}/1/tokenizer/vocab.txt: expected md5 {md5(TOKENIZER_FILES['vocab.txt'])}, "
            f"got {md5(corrupt)}"
        ),
    ):
        model_files(local_runner)


def test_local_remote_corrupt_file_object(local_runner: RuleRunner) -> None:
    tracked = example_weights()
    write_model(local_runner, LOCAL_CONFIG, tracked)
    onnx_key = object_key(md5(ONNX_BYTES))
    push_to_directory(
        Path(local_runner.build_root, ".dvc-storage"), {**tracked.objects, onnx_key: b"rot"}
    )
    with engine_error(
        WeightsError,
        contains=(
            f"{MODEL}/1/model.onnx.dvc: the bytes fetched from remote `local-store` "
            "(.dvc-storage) do not match the pointer:\n"
            f"  - {MODEL}/1/model.onnx: expected md5 {md5(ONNX_BYTES)}, got {md5(b'rot')} "
            f"(remote object {onnx_key})"
        ),
    ):
        model_files(local_runner)


# --- An S3 remote on a loopback SeaweedFS server that checks credentials. ----------------------

BUCKET = "weights"


@pytest.fixture(scope="module")
def s3_server(seaweedfs: S3Server) -> S3Server:
    seaweedfs.create_bucket(BUCKET)
    return seaweedfs


def s3_config(server: S3Server, prefix: str) -> str:
    return dedent(
        f"""\
        [core]
            remote = team-s3
        ['remote "team-s3"']
            url = s3://{BUCKET}/{prefix}
            endpointurl = {server.endpoint_url}
        """
    )


def push_to_s3(server: S3Server, prefix: str, objects: dict[str, bytes]) -> None:
    client = server.client()
    for key, data in objects.items():
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{key}", Body=data)


def s3_runner(
    options: list[str], server: S3Server, tmp_path: Path, secret: str | None = None
) -> RuleRunner:
    credentials = tmp_path / "aws-credentials"
    server.write_credentials_file(credentials, secret_key=secret)
    # The location of the credentials enters the process, never the credentials themselves.
    return new_rule_runner(options, env={"AWS_SHARED_CREDENTIALS_FILE": str(credentials)})


def test_s3_remote_fetches_files_and_directories(
    options: list[str], s3_server: S3Server, tmp_path: Path
) -> None:
    rule_runner = s3_runner(options, s3_server, tmp_path)
    tracked = example_weights()
    write_model(rule_runner, s3_config(s3_server, "ok"), tracked)
    push_to_s3(s3_server, "ok", tracked.objects)
    assert_example_weights_in(model_files(rule_runner))


def test_s3_remote_missing_object(options: list[str], s3_server: S3Server, tmp_path: Path) -> None:
    rule_runner = s3_runner(options, s3_server, tmp_path)
    tracked = example_weights()
    write_model(rule_runner, s3_config(s3_server, "missing"), tracked)
    missing = object_key(md5(TOKENIZER_FILES["merges/rules.txt"]))
    push_to_s3(s3_server, "missing", {k: v for k, v in tracked.objects.items() if k != missing})
    with engine_error(
        WeightsError,
        contains=(
            f"{MODEL}/1/tokenizer.dvc: remote `team-s3` (s3://{BUCKET}/missing) does not have "
            f"{missing}. Did you `dvc push`?"
        ),
    ):
        model_files(rule_runner)


def test_s3_remote_corrupt_object(options: list[str], s3_server: S3Server, tmp_path: Path) -> None:
    rule_runner = s3_runner(options, s3_server, tmp_path)
    tracked = example_weights()
    write_model(rule_runner, s3_config(s3_server, "corrupt"), tracked)
    onnx_key = object_key(md5(ONNX_BYTES))
    push_to_s3(s3_server, "corrupt", {**tracked.objects, onnx_key: b"truncated"})
    with engine_error(
        WeightsError,
        contains=(
            f"{MODEL}/1/model.onnx.dvc: the bytes fetched from remote `team-s3` "
            f"(s3://{BUCKET}/corrupt) do not match the pointer:\n"
            f"  - {MODEL}/1/model.onnx: expected md5 {md5(ONNX_BYTES)}, got {md5(b'truncated')}"
        ),
    ):
        model_files(rule_runner)


def test_s3_remote_refuses_wrong_credentials_without_printing_them(
    options: list[str], s3_server: S3Server, tmp_path: Path
) -> None:
    wrong_secret = "not-the-secret-0123456789"
    rule_runner = s3_runner(options, s3_server, tmp_path, secret=wrong_secret)
    tracked = example_weights()
    write_model(rule_runner, s3_config(s3_server, "denied"), tracked)
    push_to_s3(s3_server, "denied", tracked.objects)
    with pytest.raises(Exception) as error:
        model_files(rule_runner)
    message = str(error.value)
    assert "could not fetch from remote `team-s3`" in message
    assert "Forbidden" in message
    assert wrong_secret not in message
