from __future__ import annotations

import pytest
from triton_mme.config.endpoint import check_invocable, decoupled_members
from triton_mme.config.parse import ModelConfigFile, parse_model_config


def model(name: str, *, decoupled: bool = False) -> ModelConfigFile:
    text = f'name: "{name}"\nbackend: "python"\n' + (
        "model_transaction_policy {\n  decoupled: true\n}\n" if decoupled else ""
    )
    return parse_model_config(f"models/{name}/config.pbtxt", text)


def ensemble(name: str, *steps: str) -> ModelConfigFile:
    text = f'name: "{name}"\nplatform: "ensemble"\nensemble_scheduling {{\n' + "".join(
        f'  step {{ model_name: "{step}" }}\n' for step in steps
    )
    return parse_model_config(f"models/{name}/config.pbtxt", text + "}\n")


def test_request_response_models_are_invocable() -> None:
    assert check_invocable(model("m"), "m", {}) == []
    called = {"a": model("a"), "b": model("b")}
    assert check_invocable(ensemble("e", "a", "b"), "e", called) == []


def test_a_decoupled_model_is_refused_at_its_line() -> None:
    (error,) = check_invocable(model("stream", decoupled=True), "stream", {})
    assert str(error).startswith("models/stream/config.pbtxt:4: `stream` is decoupled")
    assert "ensemble_member_only=True" in str(error)


def test_an_ensemble_running_a_decoupled_step_is_refused() -> None:
    inner = ensemble("inner", "stream", "a")
    called = {"inner": inner, "stream": model("stream", decoupled=True), "a": model("a")}
    outer = ensemble("outer", "inner", "a")
    assert decoupled_members(outer, called) == ["stream"]
    (error,) = check_invocable(outer, "outer", called)
    assert str(error).startswith("models/outer/config.pbtxt:3: ensemble `outer` runs decoupled")
    assert "`stream`" in str(error)


def test_an_ensemble_calling_itself_or_unknown_models_terminates() -> None:
    looping = ensemble("loop", "loop", "missing")
    assert decoupled_members(looping, {"loop": looping}) == []


def test_a_backend_from_the_model_name_does_not_survive_packaging() -> None:
    from triton_mme.config.backend import complete_backend_fields
    from triton_mme.config.endpoint import check_backend_from_name

    # Triton's qa case autofill_noplatform_success/custom/empty_config.identity: Triton accepts
    # it (backend `identity`), but not under the names the endpoint serves it by.
    config = parse_model_config("models/empty_config.identity/config.pbtxt", "")
    fields = complete_backend_fields(config, "empty_config.identity", ())
    assert [str(e) for e in check_backend_from_name(config, fields)] == [
        "models/empty_config.identity/config.pbtxt:1: Triton takes this model's backend, "
        "`identity`, from the model name's suffix (config.pbtxt names none), but on the "
        "endpoint the model never runs under that name: SageMaker registers a tarball's model "
        "under its TargetModel (`<model_name>_<version>.tar.gz`), and an ensemble's members "
        "ship as `<artifact>.<member>`, from which Triton would read another backend. Set "
        '`backend: "identity"` in config.pbtxt.'
    ]
    named = parse_model_config("models/x.identity/config.pbtxt", 'backend: "identity"\n')
    assert check_backend_from_name(named, complete_backend_fields(named, "x.identity", ())) == []


@pytest.mark.parametrize(
    "artifact, triton_reads",
    [
        # Triton's core takes the backend from everything after the name's first `.`
        # (`AutoCompleteBackendFields` in core's src/model_config_utils.cc): the stand-in image
        # reported "unable to find backend library for backend '0.0.x.identity'" for this member.
        ("pipe_1.0.0", "0.0.x.identity"),
        ("pipe_v1", "x.identity"),
    ],
)
def test_an_ensemble_member_does_not_keep_a_backend_from_its_name(
    artifact: str, triton_reads: str
) -> None:
    from triton_mme.config.backend import complete_backend_fields
    from triton_mme.config.endpoint import check_backend_from_name
    from triton_mme.config.rewrite import shipped_member_name

    # An ensemble member ships as `<artifact>.<member>`: its own `.identity` suffix stays at the
    # end of the name, but Triton reads the backend from the first `.`, so it is another one.
    served = shipped_member_name(artifact, "x.identity")
    config = parse_model_config(f"models/{served}/config.pbtxt", "")
    assert complete_backend_fields(config, served, ()).backend == triton_reads
    source = parse_model_config("models/x.identity/config.pbtxt", "")
    fields = complete_backend_fields(source, "x.identity", ())
    assert fields.backend == "identity"
    (error,) = check_backend_from_name(source, fields)
    assert "an ensemble's members ship as `<artifact>.<member>`" in str(error)
