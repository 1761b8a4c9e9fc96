from __future__ import annotations

from triton_mme.scripts.run_triton_tests import TargetResult, not_run, report


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
