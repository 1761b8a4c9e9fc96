from __future__ import annotations

from textwrap import dedent

import pytest
from triton_mme.config.backend import complete_backend_fields
from triton_mme.config.checks import check_model_directory
from triton_mme.config.completion import serve_version
from triton_mme.config.ensemble import EnsembleMembers, check_ensemble_steps, shapes_compatible
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.files import ModelDirectoryListing
from triton_mme.config.parse import ModelConfigFile, parse_model_config
from triton_mme.testutil import QA_AUTO_COMPLETE, QA_INCOMPLETE_INPUT

PREPROCESS = dedent(
    """\
    name: "pre"
    backend: "python"
    max_batch_size: 8
    input [{ name: "IMAGE", data_type: TYPE_UINT8, dims: [-1, -1, 3] }]
    input [{ name: "HINT", data_type: TYPE_STRING, dims: [1], optional: true }]
    output [{ name: "PIXELS", data_type: TYPE_FP32, dims: [3, 32, 32] }]
    """
)

CLASSIFY = dedent(
    """\
    name: "classify"
    platform: "onnxruntime_onnx"
    max_batch_size: 8
    input [{ name: "pixels", data_type: TYPE_FP32, dims: [3, -1, -1] }]
    output [{ name: "scores", data_type: TYPE_FP32, dims: [4] }]
    """
)

PIPELINE = dedent(
    """\
    name: "pipeline"
    platform: "ensemble"
    max_batch_size: 8
    input [
      { name: "IMAGE", data_type: TYPE_UINT8, dims: [-1, -1, 3] }
    ]
    output [
      { name: "SCORES", data_type: TYPE_FP32, dims: [4] }
    ]
    ensemble_scheduling {
      step [
        {
          model_name: "pre"
          model_version: -1
          input_map { key: "IMAGE", value: "IMAGE" }
          output_map { key: "PIXELS", value: "pixels" }
        },
        {
          model_name: "classify"
          model_version: -1
          input_map { key: "pixels", value: "pixels" }
          output_map { key: "scores", value: "SCORES" }
        }
      ]
    }
    """
)


def parse(text: str, path: str = "models/pipeline/config.pbtxt") -> ModelConfigFile:
    return parse_model_config(path, text)


def members(**overrides: str) -> dict[str, ModelConfigFile]:
    texts = {"pre": PREPROCESS, "classify": CLASSIFY, **overrides}
    return {name: parse(text, f"models/{name}/config.pbtxt") for name, text in texts.items()}


def ensemble_errors(text: str = PIPELINE, **member_overrides: str) -> list[str]:
    return [
        str(e)
        for e in check_ensemble_steps(
            parse(text),
            EnsembleMembers(
                configs=members(**member_overrides),
                versions={},
                known_model_names=("pre", "classify", "classifier_v2"),
            ),
        )
    ]


def directory_errors(
    text: str,
    *,
    name: str = "pre",
    alias: str = "triton_model",
    folders=("1",),
    files=("config.pbtxt",),
) -> list[str]:
    path = f"models/{name}/config.pbtxt"
    return [
        str(e)
        for e in check_model_directory(
            parse(text, path),
            model_name=name,
            target_alias=alias,
            listing=ModelDirectoryListing(
                folders=tuple(folders),
                files=tuple(files),
                shipped=tuple(f"{folder}/model.py" for folder in folders),
            ),
        )
    ]


def only(errors: list[str]) -> str:
    assert len(errors) == 1, errors
    return errors[0]


def test_valid_configs_have_no_errors() -> None:
    assert ensemble_errors() == []
    assert directory_errors(PREPROCESS) == []
    assert directory_errors(PIPELINE, name="pipeline", alias="triton_ensemble", folders=()) == []


def test_unknown_field_names_file_and_line() -> None:
    with pytest.raises(ModelConfigError) as e:
        parse('name: "pre"\nbackend: "python"\nmax_batch_sise: 8\n')
    assert e.value.line == 3
    assert str(e.value).startswith("models/pipeline/config.pbtxt:3: ")
    assert 'no field named "max_batch_sise"' in str(e.value)
    assert "Did you mean `max_batch_size`?" in str(e.value)


def test_unknown_nested_field_suggests_names_of_its_message() -> None:
    with pytest.raises(ModelConfigError) as e:
        parse('input [{ name: "X", data_typ: TYPE_FP32, dims: [1] }]\n')
    assert e.value.line == 1
    assert "Did you mean `data_type`?" in str(e.value)


def test_name_differs_from_directory() -> None:
    message = only(directory_errors(PREPROCESS, name="preprocessing"))
    assert message.startswith("models/preprocessing/config.pbtxt:1: ")
    assert '`name: "pre"` differs from the model name `preprocessing`' in message
    assert 'set `name: "preprocessing"`' in message


def test_no_version_folder() -> None:
    message = only(directory_errors(PREPROCESS, folders=()))
    assert "`models/pre/` has no numeric version folder" in message
    assert "put the model's files in `1/`" in message


def test_ensemble_needs_no_version_folder() -> None:
    assert directory_errors(PIPELINE, name="pipeline", alias="triton_ensemble", folders=()) == []


def test_version_folder_with_leading_zero() -> None:
    message = only(directory_errors(PREPROCESS, folders=("01", "tests")))
    assert "version folder `models/pre/01/` starts with 0" in message
    assert "rename it to `1/`" in message


def test_version_folder_not_a_number() -> None:
    assert "`models/pre/1a/` is not a number" in only(directory_errors(PREPROCESS, folders=["1a"]))


def test_triton_model_with_ensemble_platform() -> None:
    message = only(directory_errors(PIPELINE, name="pipeline", folders=()))
    assert message.startswith("models/pipeline/config.pbtxt:2: ")
    assert "use `triton_ensemble()` for an ensemble" in message


def test_triton_ensemble_without_ensemble_platform() -> None:
    message = only(directory_errors(PREPROCESS, alias="triton_ensemble"))
    assert "declares `triton_ensemble()` but this config does not have" in message
    assert "otherwise use `triton_model()`" in message


@pytest.mark.parametrize(
    "field, text",
    [
        ("instance_group", "instance_group [{ kind: KIND_CPU }]\n"),
        ("optimization", "optimization { priority: PRIORITY_MAX }\n"),
        ("model_warmup", 'model_warmup [{ name: "w", batch_size: 1 }]\n'),
    ],
)
def test_ensemble_forbidden_fields(field: str, text: str) -> None:
    config = PIPELINE + text
    message = only(directory_errors(config, name="pipeline", alias="triton_ensemble"))
    assert message.startswith(f"models/pipeline/config.pbtxt:{PIPELINE.count(chr(10)) + 1}: ")
    assert f"an ensemble cannot have `{field}`" in message


def test_ensemble_without_steps() -> None:
    config = PIPELINE.split("ensemble_scheduling")[0]
    message = only(directory_errors(config, name="pipeline", alias="triton_ensemble"))
    assert "needs `ensemble_scheduling { step [...] }`" in message


@pytest.mark.parametrize(
    "value, problem",
    [
        ("/opt/envs/python_env.tar.gz", "does not start with `$$TRITON_MODEL_DIRECTORY/`"),
        ("$$TRITON_MODEL_DIRECTORY/../shared/env.tar.gz", "points outside the model directory"),
        ("$$TRITON_MODEL_DIRECTORY/", "points outside the model directory"),
    ],
)
def test_execution_env_path(value: str, problem: str) -> None:
    config = PREPROCESS + dedent(
        f"""\
        parameters: {{
          key: "EXECUTION_ENV_PATH",
          value: {{ string_value: "{value}" }}
        }}
        """
    )
    message = only(directory_errors(config))
    assert message.startswith("models/pre/config.pbtxt:8: ")
    assert problem in message
    assert "$$TRITON_MODEL_DIRECTORY/python_env.tar.gz" in message


def test_execution_env_path_inside_model_directory_is_fine() -> None:
    config = PREPROCESS + (
        'parameters: { key: "EXECUTION_ENV_PATH", value: { string_value: '
        '"$$TRITON_MODEL_DIRECTORY/envs/../python_env.tar.gz" } }\n'
    )
    assert directory_errors(config) == []


def test_step_lines() -> None:
    assert [step.line for step in parse(PIPELINE).steps] == [13, 19]


def test_step_without_maps() -> None:
    text = PIPELINE.replace('output_map { key: "PIXELS", value: "pixels" }', "")
    errors = ensemble_errors(text)
    assert "step 1 (`pre`) has no `output_map`" in errors[0]
    assert errors[0].startswith("models/pipeline/config.pbtxt:13: ")


def test_step_model_unknown_lists_close_matches() -> None:
    text = PIPELINE.replace('model_name: "classify"', 'model_name: "classifier"')
    message = only(ensemble_errors(text))
    assert message.startswith("models/pipeline/config.pbtxt:19: ")
    assert "step 2 (`classifier`) calls model `classifier`" in message
    assert "Did you mean `classifier_v2` or `classify`?" in message


def test_input_map_key_not_an_input() -> None:
    text = PIPELINE.replace('key: "pixels", value: "pixels"', 'key: "pixel", value: "pixels"')
    errors = ensemble_errors(text)
    assert errors[0].startswith("models/pipeline/config.pbtxt:21: ")
    assert "input_map key `pixel` is not an input of model `classify` (its inputs: pixels)" in (
        errors[0]
    )
    assert "required input `pixels` of model `classify` is not in the step's input_map" in (
        errors[1]
    )
    assert len(errors) == 2


def test_optional_input_may_stay_unmapped() -> None:
    assert "HINT" not in " ".join(ensemble_errors())


def test_output_map_key_not_an_output() -> None:
    text = PIPELINE.replace('key: "scores", value: "SCORES"', 'key: "score", value: "SCORES"')
    errors = ensemble_errors(text)
    assert "output_map key `score` is not an output of model `classify`" in errors[0]
    assert errors[0].startswith("models/pipeline/config.pbtxt:22: ")
    assert "ensemble output `SCORES` is not written by any step" in errors[1]


def test_tensor_written_twice() -> None:
    text = PIPELINE.replace('key: "scores", value: "SCORES"', 'key: "scores", value: "pixels"')
    errors = ensemble_errors(text)
    assert (
        "step 2 (`classify`): ensemble tensor `pixels` is written a second time "
        "(step 1 (`pre`) output `PIXELS` writes it too)" in errors[0]
    )
    assert "ensemble output `SCORES` is not written by any step" in errors[-1]


def test_ensemble_input_unused() -> None:
    text = PIPELINE.replace(
        "input [\n", 'input [\n  { name: "EXTRA", data_type: TYPE_FP32, dims: [1] },\n'
    )
    message = only(ensemble_errors(text))
    assert message.startswith("models/pipeline/config.pbtxt:5: ")
    assert "ensemble input `EXTRA` is not read by any step" in message


def test_ensemble_output_never_written() -> None:
    text = PIPELINE.replace(
        "output [\n", 'output [\n  { name: "LABEL", data_type: TYPE_STRING, dims: [1] },\n'
    )
    message = only(ensemble_errors(text))
    assert message.startswith("models/pipeline/config.pbtxt:8: ")
    assert "ensemble output `LABEL` is not written by any step" in message


def test_read_of_a_tensor_nobody_writes() -> None:
    text = PIPELINE.replace('key: "pixels", value: "pixels"', 'key: "pixels", value: "pixel"')
    message = only(ensemble_errors(text))
    assert "reads ensemble tensor `pixel`, which is neither an ensemble input nor written" in (
        message
    )


def test_dtype_mismatch() -> None:
    message = only(
        ensemble_errors(classify=CLASSIFY.replace("TYPE_FP32, dims: [3", "TYPE_FP16, dims: [3"))
    )
    assert message.startswith("models/pipeline/config.pbtxt:21: ")
    assert "input `pixels` of `classify` reads `pixels`: data type mismatch" in message
    assert "step 1 (`pre`) output `PIXELS` is TYPE_FP32, but TYPE_FP16 is expected" in message


def test_shape_mismatch() -> None:
    message = only(ensemble_errors(classify=CLASSIFY.replace("dims: [3, -1, -1]", "dims: [1, 32]")))
    assert "shape mismatch: step 1 (`pre`) output `PIXELS` has shape [-1, 3, 32, 32]" in message
    assert "but [-1, 1, 32] is expected" in message


def test_output_shape_mismatch() -> None:
    message = only(ensemble_errors(PIPELINE.replace("dims: [4]", "dims: [5]")))
    assert message.startswith("models/pipeline/config.pbtxt:8: ")
    assert "ensemble output `SCORES`: shape mismatch" in message


def test_batch_dim_of_unbatched_member() -> None:
    # A member without batching declares the batch dim itself: [-1, 3, 32, 32] matches.
    unbatched = (
        CLASSIFY.replace("max_batch_size: 8", "max_batch_size: 0")
        .replace("dims: [3, -1, -1]", "dims: [-1, 3, 32, 32]")
        .replace("dims: [4]", "dims: [-1, 4]")
    )
    assert ensemble_errors(classify=unbatched) == []
    wrong = unbatched.replace("dims: [-1, 3, 32, 32]", "dims: [3, 32, 32]")
    assert "shape mismatch" in only(ensemble_errors(classify=wrong))


def test_member_max_batch_size_smaller_than_ensemble() -> None:
    message = only(
        ensemble_errors(pre=PREPROCESS.replace("max_batch_size: 8", "max_batch_size: 4"))
    )
    assert message.startswith("models/pipeline/config.pbtxt:13: ")
    assert "step 1 (`pre`): model `pre` has max_batch_size 4, smaller than the ensemble's 8" in (
        message
    )


def test_shapes_compatible() -> None:
    assert shapes_compatible((-1, 3), (8, 3))
    assert not shapes_compatible((-1, 3), (-1, 3, 1))
    assert not shapes_compatible((2, 3), (3, 3))


def test_label_file_missing() -> None:
    config = PREPROCESS.replace(
        "dims: [3, 32, 32] }", 'dims: [3, 32, 32], label_filename: "labels.txt" }'
    )
    message = only(directory_errors(config))
    assert message.startswith("models/pre/config.pbtxt:6: ")
    assert "output `PIXELS` names the label file `labels.txt`, which is not in `models/pre/`" in (
        message
    )
    assert directory_errors(config, files=("config.pbtxt", "labels.txt")) == []


# python_backend's examples/add_sub/config.pbtxt, as Triton's repository ships it.
ADD_SUB = dedent(
    """\
    name: "add_sub"
    backend: "python"

    input [
      {
        name: "INPUT0"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]
    input [
      {
        name: "INPUT1"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]
    output [
      {
        name: "OUTPUT0"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]
    output [
      {
        name: "OUTPUT1"
        data_type: TYPE_FP32
        dims: [ 4 ]
      }
    ]

    instance_group [{ kind: KIND_CPU }]
    """
)


@pytest.mark.parametrize(
    "name, text",
    [
        ("add_sub", ADD_SUB),
        ("auto", 'backend: "python"\n'),  # inputs and outputs from auto_complete_config
        ("pre", PREPROCESS + "dynamic_batching { preferred_batch_size: [4, 8] }\n"),
    ],
)
def test_valid_configs_are_never_refused(name: str, text: str) -> None:
    assert directory_errors(text, name=name) == []


# Triton's qa cases (triton-inference-server/server qa/L0_model_config/): config.pbtxt texts
# copied from autofill_noplatform_success/python/<case>/config.pbtxt; the qa's test.sh puts
# qa/python_models/auto_complete/model.py (its `auto_complete_config` adds INPUT0, INPUT1,
# OUTPUT0 and OUTPUT1, FP32 [4], and sets max_batch_size 0) in `1/`.
QA_INCOMPLETE_OUTPUT = dedent(
    """\
    name: "incomplete_output"

    output [
      {
        name: "OUTPUT0"
        data_type: TYPE_FP32
      },
      {
        name: "OUTPUT1"
        dims: [ 4 ]
      }
    ]
    """
)
NO_AUTO_COMPLETE_MODEL = (
    "class TritonPythonModel:\n    def execute(self, requests):\n        return []\n"
)


def served_directory_errors(text: str, *, name: str, model_py: str) -> list[str]:
    """The checks of a python model directory (`1/model.py`) on the config Triton serves."""
    path = f"models/{name}/config.pbtxt"
    config = parse(text, path)
    listing = ModelDirectoryListing(
        folders=("1",), files=("config.pbtxt",), shipped=("1/model.py",)
    )
    fields = complete_backend_fields(config, name, listing.shipped)
    served = serve_version(
        config,
        model_name=name,
        fields=fields,
        version=1,
        model_py=(f"models/{name}/1/model.py", model_py),
    )
    return [
        str(e)
        for e in check_model_directory(
            config,
            model_name=name,
            target_alias="triton_model",
            listing=listing,
            served=[served.config],
        )
    ]


@pytest.mark.parametrize(
    "name, text",
    [
        ("incomplete_output", QA_INCOMPLETE_OUTPUT),
        ("incomplete_input", QA_INCOMPLETE_INPUT),
        ("empty_config", ""),  # autofill_noplatform_success/python/empty_config: an empty file
    ],
)
def test_triton_qa_python_auto_complete_is_accepted(name: str, text: str) -> None:
    assert served_directory_errors(text, name=name, model_py=QA_AUTO_COMPLETE) == []


def test_without_auto_complete_config_the_file_is_refused_as_before() -> None:
    errors = served_directory_errors(
        QA_INCOMPLETE_OUTPUT, name="incomplete_output", model_py=NO_AUTO_COMPLETE_MODEL
    )
    assert errors == [
        "models/incomplete_output/config.pbtxt:4: output `OUTPUT0` has no `dims`: add them, "
        "without the batch dimension (a scalar is `dims: [1]`, with `reshape: { shape: [] }` "
        "when max_batch_size > 0).",
        "models/incomplete_output/config.pbtxt:8: output `OUTPUT1` has no `data_type`: add one, "
        "e.g. `data_type: TYPE_FP32`.",
    ]
    # As the parsed file alone, which is what the checks saw before.
    assert directory_errors(QA_INCOMPLETE_OUTPUT, name="incomplete_output") == errors


def test_a_python_model_without_auto_complete_config_serves_its_max_batch_size() -> None:
    # No max_batch_size in the file, and nothing that could set it: Triton serves 0, and
    # refuses a scalar reshape there.
    text = (
        'backend: "python"\n'
        'input [{ name: "X", data_type: TYPE_FP32, dims: [1], reshape: { shape: [] } }]\n'
    )
    (message,) = served_directory_errors(text, name="m", model_py=NO_AUTO_COMPLETE_MODEL)
    assert "has an empty `reshape` in a model with max_batch_size 0" in message
    assert served_directory_errors(text, name="m", model_py=QA_AUTO_COMPLETE) == []
