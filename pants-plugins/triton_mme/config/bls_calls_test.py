from __future__ import annotations

from textwrap import dedent

from triton_mme.config.bls_calls import builds_inference_requests, check_bls_calls

SOURCE = dedent(
    """\
    import triton_python_backend_utils as pb_utils

    class TritonPythonModel:
        def execute(self, requests):
            a = pb_utils.InferenceRequest(model_name="classifier", inputs=[])
            b = pb_utils.InferenceRequest(model_name=self.classifier_model, inputs=[])
            c = InferenceRequest(model_name="missing", inputs=[])
            d = pb_utils.InferenceRequest(model_name="pipeline_1.classifier", inputs=[])
    """
)


def problems(source: str = SOURCE) -> list[str]:
    return check_bls_calls(
        "models/pre/1/model.py",
        source,
        artifact="pipeline_1",
        renames={"classifier": "pipeline_1.classifier"},
        shipped_names=["pipeline", "pipeline_1.classifier"],
    )


def test_a_literal_member_name_is_refused_with_the_way_to_write_it() -> None:
    first = problems()[0]
    assert first.startswith(
        "models/pre/1/model.py:5: calls the model `classifier` by its literal name, but in the "
        "tarball of `pipeline_1` it is named `pipeline_1.classifier`"
    )
    assert 'self.classifier_model = json.loads(names).get("classifier", "classifier")' in first
    assert "pb_utils.InferenceRequest(model_name=self.classifier_model, ...)" in first


def test_a_model_the_tarball_lacks_is_refused() -> None:
    assert problems()[1].startswith(
        "models/pre/1/model.py:7: calls the model `missing`, which is not in the tarball of "
        "`pipeline_1` (it holds pipeline, pipeline_1.classifier)."
    )
    assert len(problems()) == 2, "names read at run time, and shipped names, are accepted"


def test_sources_that_do_not_parse_or_call_nothing_pass() -> None:
    assert problems("def broken(:\n") == []
    assert problems("x = 1\n") == []
    assert builds_inference_requests(SOURCE) and not builds_inference_requests("x = 1\n")
