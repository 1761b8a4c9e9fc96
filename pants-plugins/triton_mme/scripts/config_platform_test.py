"""Every case of "is this config an ensemble", for every caller: the raw-text reading the tools
and `tailor` use, and, for configs that parse, `ModelConfigFile.is_ensemble` on Triton's schema,
which must agree with it."""

from __future__ import annotations

from textwrap import dedent

import pytest
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.parse import parse_model_config
from triton_mme.scripts.config_platform import declared_platform, declares_ensemble

PIPELINE = dedent(
    """\
    # The detection pipeline: preprocessing, then the detector.
    name: "pipeline"
    platform: "ensemble"
    max_batch_size: 8
    input [
      { name: "IMAGE", data_type: TYPE_UINT8, dims: [ -1 ] }
    ]
    output [
      { name: "BOXES", data_type: TYPE_FP32, dims: [ -1, 4 ] }
    ]
    ensemble_scheduling {
      step [
        {
          model_name: "preprocessing"
          model_version: -1
          input_map { key: "RAW", value: "IMAGE" }
          output_map { key: "PIXELS", value: "pixels" }
        },
        {
          model_name: "detector"
          model_version: -1
          input_map { key: "PIXELS", value: "pixels" }
          output_map { key: "BOXES", value: "BOXES" }
        }
      ]
    }
    """
)

PYTHON_MODEL = dedent(
    """\
    name: "ensemble"
    backend: "python"
    max_batch_size: 8
    parameters {
      key: "platform"
      value { string_value: "ensemble" }
    }
    parameters: { key: "note", value: { string_value: "platform: \\"ensemble\\"" } }
    """
)

# (config.pbtxt text, the platform it declares, whether Triton's schema parses it)
CASES = [
    pytest.param('platform: "ensemble"\n', "ensemble", True, id="platform-ensemble"),
    pytest.param('backend: "python"\n', None, True, id="backend-python"),
    pytest.param('platform: "onnxruntime_onnx"\n', "onnxruntime_onnx", True, id="other-platform"),
    pytest.param("", None, True, id="empty"),
    pytest.param('platform:"ensemble"', "ensemble", True, id="no-spaces"),
    pytest.param('platform : "ensemble" ;\n', "ensemble", True, id="spaces-and-separator"),
    pytest.param('  platform: "ensemble"  # the pipeline\n', "ensemble", True, id="comment-after"),
    pytest.param(
        '# platform: "ensemble"\nbackend: "python"\n', None, True, id="commented-out-platform"
    ),
    pytest.param(
        'name: "a # platform: \\"ensemble\\""\nbackend: "python"\n',
        None,
        True,
        id="comment-sign-and-quotes-in-a-string",
    ),
    pytest.param(PYTHON_MODEL, None, True, id="strings-and-nested-fields-saying-ensemble"),
    pytest.param(
        'name: "ensemble_pipeline"\nplatform: "onnxruntime_onnx"\n',
        "onnxruntime_onnx",
        True,
        id="name-containing-ensemble",
    ),
    pytest.param('platform: "Ensemble"\n', "Ensemble", True, id="case-sensitive"),
    pytest.param('platform: "my_ensemble"\n', "my_ensemble", True, id="not-a-substring-match"),
    pytest.param(PIPELINE, "ensemble", True, id="multi-line-pipeline"),
    pytest.param(
        'name: "p" platform: "ensemble" max_batch_size: 0', "ensemble", True, id="one-line"
    ),
    pytest.param("platform: 'ensemble'\n", "ensemble", True, id="single-quotes"),
    pytest.param('platform: "ens"\n  "emble"\n', "ensemble", True, id="adjacent-strings"),
    pytest.param('platform: "ens\\145mble"\n', "ensemble", True, id="escaped-character"),
    pytest.param(
        'platform: "ensemble"\ninput [{ name: ', "ensemble", False, id="half-written-after"
    ),
    pytest.param(
        'name: "p\nplatform: "ensemble"\n', "ensemble", False, id="unterminated-string-before"
    ),
    pytest.param('platform: \nbackend: "python"\n', None, False, id="platform-without-value"),
]


@pytest.mark.parametrize("text, platform, parses", CASES)
def test_the_platform_a_config_declares(text: str, platform: str | None, parses: bool) -> None:
    assert declared_platform(text) == platform
    assert declares_ensemble(text) is (platform == "ensemble")


@pytest.mark.parametrize("text, platform, parses", CASES)
def test_the_parsed_config_decides_the_same(text: str, platform: str | None, parses: bool) -> None:
    if not parses:
        # What `tailor` may see while a config is being written: only the text reading answers.
        with pytest.raises(ModelConfigError):
            parse_model_config("m/config.pbtxt", text)
        return
    parsed = parse_model_config("m/config.pbtxt", text)
    assert parsed.platform == (platform or "")
    assert parsed.is_ensemble is declares_ensemble(text)
