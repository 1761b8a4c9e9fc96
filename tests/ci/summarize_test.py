from __future__ import annotations

from pathlib import Path

import pytest
from ci.summarize import main, parse_results

LOG = """\
16:28:09.09 [INFO] Starting: something
✓ models/text_normalizer/tests:tests succeeded in 12.30s.
✓ pants-plugins/triton_mme/config/model_test.py:tests succeeded in 3.10s (cached locally).
✓ tests/model_group_test.py:tests and 5 other files succeeded in 831.00s.
✕ models/screen_detection/screen_detection_pipeline:screen_detection_pipeline failed in 7.40s.
"""

PASSING_XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2">
<testcase classname="config.model_test" name="test_a" time="0.1"/>
<testcase classname="config.model_test" name="test_b" time="0.1"/>
</testsuite></testsuites>
"""
SKIPPING_XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2">
<testcase classname="model_group_test" name="test_group" time="1"/>
<testcase classname="remote_cache_test" name="test_remote" time="0">
<skipped type="pytest.skip" message="BuildGrid needs Python 3.13">reason</skipped></testcase>
</testsuite></testsuites>
"""


def write(tmp_path: Path, log: str, reports: dict[str, str]) -> list[str]:
    (tmp_path / "log").write_text(log)
    (tmp_path / "reports").mkdir()
    for name, text in reports.items():
        (tmp_path / "reports" / name).write_text(text)
    return ["--log", str(tmp_path / "log"), "--reports", str(tmp_path / "reports")]


def test_result_lines_are_parsed() -> None:
    results = parse_results(LOG)
    assert [(r.address, r.others, r.passed, r.seconds, r.cached) for r in results] == [
        ("models/text_normalizer/tests:tests", 0, True, 12.3, False),
        ("pants-plugins/triton_mme/config/model_test.py:tests", 0, True, 3.1, True),
        ("tests/model_group_test.py:tests", 5, True, 831.0, False),
        (
            "models/screen_detection/screen_detection_pipeline:screen_detection_pipeline",
            0,
            False,
            7.4,
            False,
        ),
    ]


def test_counts_test_cases_and_skips_and_lists_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = write(tmp_path, LOG, {"a.xml": PASSING_XML, "batch-of-b+5-files.xml": SKIPPING_XML})
    assert main(args) == 1  # the failed load check
    out = capsys.readouterr().out
    # 3 pytest cases + 1 Triton test target passed; the load check failed; one skip.
    assert out.splitlines()[-1] == "4 passed, 1 failed, 1 skipped"
    assert "  remote_cache_test::test_remote: BuildGrid needs Python 3.13" in out
    assert "run with CI=true to fail on them" in out
    assert "| tests/model_group_test.py:tests and 5 other files | 831.0 |" in out
    # Cached results did not run: they are not among the slowest.
    assert "model_test.py" not in out.split("Skipped")[0]


def test_under_ci_a_skip_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = "✓ tests/model_group_test.py:tests and 5 other files succeeded in 831.00s.\n"
    args = write(tmp_path, log, {"b.xml": SKIPPING_XML})
    assert main(args) == 0
    assert main([*args, "--ci"]) == 1
    assert "Skipped tests (a failure under CI):" in capsys.readouterr().out


def test_a_pytest_target_that_died_without_a_report_counts_as_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = "✕ tests/remote_cache_test.py:tests failed in 1800.00s.\n"
    assert main(write(tmp_path, log, {})) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "0 passed, 1 failed, 0 skipped"


def test_no_result_at_all_is_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(write(tmp_path, "nothing ran\n", {})) == 1
    assert "`./pants test` printed no test result." in capsys.readouterr().out
