from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence, cast

from triton_mme.scripts.model_client import ModelNames
from triton_mme.scripts.run_triton_tests import (
    TargetResult,
    TargetSpec,
    load_errors,
    name_map,
    not_run,
    report,
    served_configs,
)
from triton_mme.scripts.triton_server import Server


def test_a_target_passes_only_once_it_ran() -> None:
    result = TargetResult(address="models/a", model="a")
    assert not result.passed
    result.finished = True
    assert result.passed
    assert report([result]) == "PASSED models/a (model `a`): loaded, no cases"


def test_targets_the_batch_did_not_get_to_are_not_run() -> None:
    done = TargetResult(address="models/a", model="a", finished=True)
    left = TargetResult(address="models/b", model="b")
    not_run([done, left], "Triton did not start (see the error above)")
    assert done.passed and done.error is None
    assert not left.passed
    assert report([left]) == (
        "FAILED models/b (model `b`): no cases ran\n"
        "  not run: Triton did not start (see the error above)"
    )


PIPELINE = TargetSpec(
    address="models/pipe:tests",
    result_name="models.pipe.tests",
    model="pipe",
    names=ModelNames({"pipe": "pipe", "pre": "pipe_1.0.0.pre"}),
    cases=(),
    pytest=(),
)


class RefusingServer:
    """Triton after the load of `pipe` failed because its member did not load."""

    loaded: dict[str, Sequence[str]] = {}

    def load_models(self, models: Mapping[str, Sequence[str]]) -> dict[str, str]:
        self.loaded = dict(models)
        return {"pipe": "load failed for model 'pipe': ensemble step failed;"}

    def log(self) -> str:
        return "E1128 model_lifecycle.cc:1] failed to load 'pipe_1.0.0.pre': ImportError: cv2\n"

    def repository_index(self) -> list[dict[str, Any]]:
        return [{"name": "pipe_1.0.0.pre", "state": "UNAVAILABLE", "reason": "ImportError: cv2"}]


def test_load_errors_name_members_by_their_source_names() -> None:
    server = RefusingServer()
    errors = load_errors(cast(Server, server), [PIPELINE])
    assert server.loaded == {"pipe": ("pipe", "pipe_1.0.0.pre")}
    assert errors["pipe"].splitlines() == [
        "load failed for model 'pipe': ensemble step failed",
        "model `pre` (served as `pipe_1.0.0.pre`) is UNAVAILABLE: ImportError: cv2",
        "Triton's log says:",
        "  E1128 model_lifecycle.cc:1] failed to load 'pipe_1.0.0.pre': ImportError: cv2",
    ]


def test_serve_mode_lists_the_renamed_members() -> None:
    assert name_map([PIPELINE]) == (
        "Models are served as their tarballs ship them: an ensemble's members are named "
        "`<artifact>.<member>` (docs/models.md).\n"
        "  `pre` of `pipe` is served as `pipe_1.0.0.pre`\n"
    )
    assert name_map([replace(PIPELINE, names=ModelNames({"pipe": "pipe"}))]) == ""


class ConfigServer:
    """Triton with `pipe_1.0.0.pre` loaded and `pipe` refused: only a loaded model has a config."""

    def request(self, method: str, path: str, timeout: float = 5.0) -> tuple[int, Any]:
        assert method == "GET"
        if path == "/v2/models/pipe_1.0.0.pre/config":
            return 200, {"name": "pipe_1.0.0.pre", "output": [{"name": "Y"}]}
        return 400, {"error": "Request for unknown model"}


def test_served_configs_are_recorded_by_source_name_for_loaded_models() -> None:
    configs = served_configs(cast(Server, ConfigServer()), PIPELINE)
    assert configs == {"pre": {"name": "pipe_1.0.0.pre", "output": [{"name": "Y"}]}}
