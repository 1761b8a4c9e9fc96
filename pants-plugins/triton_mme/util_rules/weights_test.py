from __future__ import annotations

import json
from textwrap import dedent

import pytest
from pants.backend.python.util_rules import pex
from pants.engine.addresses import Address
from pants.engine.fs import FileDigest
from pants.testutil.rule_runner import QueryRule, RuleRunner, engine_error
from triton_mme.util_rules import repository
from triton_mme.util_rules import weights
from triton_mme.util_rules.repository import ModelDirectory, ModelDirectoryRequest
from triton_mme.subsystems import dvc
from triton_mme.target_types import TritonModelTarget
from triton_mme.testutil import ADD_ONE_CONFIG
from triton_mme.util_rules.weights import (
    DvcOut,
    DvcPointer,
    DvcPointerError,
    RemoteLocations,
    WeightsError,
    check_pointers_do_not_overlap,
    check_sources_match_weights,
    object_path,
    parse_dvc_pointer,
    remote_locations,
)

FILE_POINTER = dedent(
    """\
    outs:
    - md5: b1946ac92492d2347c6235b4d2611184
      size: 6
      hash: md5
      path: model.onnx
    """
)

DIRECTORY_POINTER = dedent(
    """\
    outs:
    - md5: 849835d274483dc683eb416d6e4f887d.dir
      size: 4
      nfiles: 2
      hash: md5
      path: tokenizer
    """
)


def digest(n: int) -> FileDigest:
    return FileDigest(f"{n:064x}", n)


def test_parse_file_pointer() -> None:
    pointer = parse_dvc_pointer("models/m/1/model.onnx.dvc", FILE_POINTER.encode())
    assert pointer.outs == (
        DvcOut("model.onnx", "b1946ac92492d2347c6235b4d2611184", False, 6, None, None),
    )
    assert pointer.out_path(pointer.outs[0]) == "models/m/1/model.onnx"


def test_parse_directory_pointer() -> None:
    pointer = parse_dvc_pointer("models/m/1/tokenizer.dvc", DIRECTORY_POINTER.encode())
    (out,) = pointer.outs
    assert out.is_directory and out.md5 == "849835d274483dc683eb416d6e4f887d"
    assert (out.size, out.nfiles) == (4, 2)


def test_fetch_request_names_outs_from_the_build_root() -> None:
    pointer = parse_dvc_pointer("models/m/1/tokenizer.dvc", DIRECTORY_POINTER.encode())
    request = json.loads(pointer.fetch_request_json("/repo/.dvc"))
    assert request["pointer"] == "models/m/1/tokenizer.dvc"
    assert request["dvc_dir"] == "/repo/.dvc"
    assert request["outs"] == [
        {
            "path": "models/m/1/tokenizer",
            "md5": "849835d274483dc683eb416d6e4f887d",
            "is_directory": True,
            "size": 4,
            "nfiles": 2,
            "remote": None,
        }
    ]


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"outs: [\n", "not valid YAML on line 2"),
        (b"- a\n- b\n", "not a YAML mapping"),
        (b"md5: x\n", "no `outs` list"),
        (b"\x89PNG\r\n\x1a\n\x00\xff", "not UTF-8"),
        (FILE_POINTER.replace("  hash: md5\n", "").encode(), "has no `hash: md5`"),
        (FILE_POINTER.replace("b1946ac9", "zz").encode(), "is not 32 hex digits"),
        (FILE_POINTER.replace("path: model.onnx", "path: ../../x").encode(), "not inside"),
        (FILE_POINTER.replace("path: model.onnx", "path: /abs").encode(), "not inside"),
        (FILE_POINTER.replace("size: 6", "size: six").encode(), "`size` is not a whole"),
        (FILE_POINTER.replace("  path: model.onnx\n", "").encode(), "no `path`"),
        (b"deps:\n- path: s3://x\n" + FILE_POINTER.encode(), "stage or import"),
    ],
)
def test_malformed_pointer_names_file_problem_and_fix(content: bytes, problem: str) -> None:
    with pytest.raises(DvcPointerError) as error:
        parse_dvc_pointer("models/m/1/model.onnx.dvc", content)
    message = str(error.value)
    assert message.startswith("models/m/1/model.onnx.dvc: ")
    assert problem in message
    assert "dvc add models/m/1/model.onnx" in message


def pointer(path: str, *out_paths: str) -> DvcPointer:
    return DvcPointer(path, tuple(DvcOut(p, "0" * 32, False, 1, None, None) for p in out_paths))


def test_identical_workspace_copy_of_weights_is_no_collision() -> None:
    identical = check_sources_match_weights(
        [pointer("m/1/model.onnx.dvc", "model.onnx")],
        fetched_files={"m/1/model.onnx": digest(1)},
        source_files={"m/1/model.onnx": digest(1), "m/1/model.py": digest(2)},
    )
    # The workspace copy was compared with the fetched weights; model.py is no weights file.
    assert identical == ["m/1/model.onnx"]


def test_source_file_differing_from_tracked_weights_is_an_error() -> None:
    with pytest.raises(WeightsError, match=r"m/1/model.onnx is a file of the model and also"):
        check_sources_match_weights(
            [pointer("m/1/model.onnx.dvc", "model.onnx")],
            fetched_files={"m/1/model.onnx": digest(1)},
            source_files={"m/1/model.onnx": digest(3)},
        )


def test_source_file_inside_tracked_directory_is_an_error() -> None:
    with pytest.raises(WeightsError, match=r"m/1/tok/extra.txt is a file of the model"):
        check_sources_match_weights(
            [pointer("m/1/tok.dvc", "tok")],
            fetched_files={"m/1/tok/a.txt": digest(1)},
            source_files={"m/1/tok/extra.txt": digest(3)},
        )


def test_two_pointers_tracking_one_path_is_an_error() -> None:
    with pytest.raises(WeightsError, match="both track m/1/tok"):
        check_pointers_do_not_overlap(
            [pointer("m/1/tok.dvc", "tok"), pointer("m/1/other.dvc", "tok/a.txt")]
        )


# The rule, up to the point where DVC would run (end-to-end fetches are in tests/).


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *repository.rules(),
            *weights.rules(),
            *dvc.rules(),
            *pex.rules(),
            QueryRule(ModelDirectory, [ModelDirectoryRequest]),
        ],
        target_types=[TritonModelTarget],
        bootstrap_args=["--pants-ignore=+['!/.dvc/']"],
    )


def write_model(rule_runner: RuleRunner, files: dict[str, str]) -> None:
    rule_runner.write_files(
        {
            "models/add_one/BUILD": "triton_model()",
            "models/add_one/config.pbtxt": ADD_ONE_CONFIG,
            "models/add_one/1/model.py": "# model\n",
            **files,
        }
    )


def test_model_without_pointers_needs_no_dvc(rule_runner: RuleRunner) -> None:
    write_model(rule_runner, {})
    directory = rule_runner.request(
        ModelDirectory, [ModelDirectoryRequest(rule_runner.get_target(Address("models/add_one")))]
    )
    assert directory.model_name == "add_one"


def test_malformed_pointer_fails_the_model_directory(rule_runner: RuleRunner) -> None:
    write_model(rule_runner, {".dvc/config": "", "models/add_one/1/model.onnx.dvc": "outs: []\n"})
    with engine_error(DvcPointerError, contains="models/add_one/1/model.onnx.dvc: it has no"):
        rule_runner.request(
            ModelDirectory,
            [ModelDirectoryRequest(rule_runner.get_target(Address("models/add_one")))],
        )


def test_pointers_without_dvc_config_say_how_to_set_one_up(rule_runner: RuleRunner) -> None:
    write_model(rule_runner, {"models/add_one/1/model.onnx.dvc": FILE_POINTER})
    with engine_error(WeightsError, contains="there is no .dvc/config at the repo root"):
        rule_runner.request(
            ModelDirectory,
            [ModelDirectoryRequest(rule_runner.get_target(Address("models/add_one")))],
        )


def test_remote_locations_keep_the_repo_path_out_of_the_key() -> None:
    pointer = parse_dvc_pointer("models/m/1/tokenizer.dvc", DIRECTORY_POINTER.encode())
    config = """\
[core]
    remote = {default}
['remote "repo"']
    url = ../.dvc-storage
['remote "outside"']
    url = ../../shared-store
['remote "absolute"']
    url = /mnt/weights
['remote "s3"']
    url = s3://bucket/dvc
"""
    located = {
        name: remote_locations(config.format(default=name), pointer)
        for name in ("repo", "outside", "absolute", "s3")
    }
    assert located == {
        "repo": RemoteLocations((".dvc-storage",), outside_local=False),
        "outside": RemoteLocations((), outside_local=True),
        "absolute": RemoteLocations((), outside_local=True),
        "s3": RemoteLocations((), outside_local=False),
    }
    assert object_path(".dvc-storage", "849835d274483dc683eb416d6e4f887d") == (
        ".dvc-storage/files/md5/84/9835d274483dc683eb416d6e4f887d"
    )
