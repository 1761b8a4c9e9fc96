"""The closing lines of scripts/test: what `./pants test` ran, skipped and how long it took.

    python3 tests/ci/summarize.py --log LOG --reports dist/test/reports [--ci] [--slowest 10]

Pants prints one line per test target (`✓ <address> succeeded in 12.34s`, `✕ ... failed`) and,
with `--test-report`, writes pytest's JUnit XML for each pytest process. A pytest target whose
tests all skipped still "succeeded", so this reads the XML: every pytest test case counts once
(passed, failed or skipped, with its reason); a target without a report (Triton model tests,
load checks) counts once as a whole. With `--ci`, a skipped test is a failure: a skip means the
machine lacks something the test command promises to provide or check.

Prints the skipped tests, the slowest targets, and ends with `N passed, N failed, N skipped`.
Exits 1 when anything failed, or (with --ci) was skipped.
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

# `✓ tests/x_test.py:tests and 5 other files succeeded in 831.00s (cached locally).`
RESULT_LINE = re.compile(
    r"^(?P<sigil>[✓✕]) (?P<address>\S+)(?: and (?P<others>\d+) other files?)? "
    r"(?P<status>succeeded|failed)(?: in (?P<seconds>[0-9.]+)s)?(?P<rest>.*)$"
)


@dataclass(frozen=True)
class TargetResult:
    address: str
    others: int
    passed: bool
    seconds: float | None
    cached: bool

    @property
    def description(self) -> str:
        more = f" and {self.others} other files" if self.others else ""
        return f"{self.address}{more}"

    @property
    def is_pytest(self) -> bool:
        # python_test targets are file addresses (`dir/x_test.py:tests`); Triton test and load
        # targets are directory or model addresses.
        return ".py:" in self.address or self.address.endswith(".py")


@dataclass
class Summary:
    passed: int = 0
    failed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (test id, reason)
    failed_targets: list[str] = field(default_factory=list)


def parse_results(log: str) -> list[TargetResult]:
    results = []
    for line in log.splitlines():
        found = RESULT_LINE.match(line.strip())
        if found:
            results.append(
                TargetResult(
                    address=found["address"],
                    others=int(found["others"] or 0),
                    passed=found["status"] == "succeeded",
                    seconds=float(found["seconds"]) if found["seconds"] else None,
                    cached="cached" in found["rest"] or "memoized" in found["rest"],
                )
            )
    return results


def count_reports(reports: Path, summary: Summary) -> None:
    """Adds every pytest test case of the JUnit XML files under `reports`."""
    for report in sorted(reports.rglob("*.xml")) if reports.is_dir() else ():
        for case in ET.parse(report).getroot().iter("testcase"):
            test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
            skipped = case.find("skipped")
            if skipped is not None:
                reason = skipped.get("message") or (skipped.text or "").strip() or "no reason given"
                summary.skipped.append((test_id, reason))
            elif case.find("failure") is not None or case.find("error") is not None:
                summary.failed += 1
            else:
                summary.passed += 1


def summarize(results: list[TargetResult], reports: Path) -> Summary:
    summary = Summary()
    count_reports(reports, summary)
    xml_failures = summary.failed
    for result in results:
        if not result.passed:
            summary.failed_targets.append(result.description)
        if not result.is_pytest:
            if result.passed:
                summary.passed += 1
            else:
                summary.failed += 1
    # A pytest process that died or timed out writes no failing test case: count its target.
    pytest_failures = sum(1 for r in results if r.is_pytest and not r.passed)
    summary.failed += max(0, pytest_failures - xml_failures)
    return summary


def slowest_table(results: list[TargetResult], count: int) -> list[str]:
    ran = sorted(
        (r for r in results if r.seconds is not None and not r.cached),
        key=lambda r: -(r.seconds or 0.0),
    )[:count]
    if not ran:
        return ["(every test target came from Pants' cache)"]
    lines = ["| test target | seconds |", "|---|---:|"]
    lines += [f"| {r.description} | {r.seconds:.1f} |" for r in ran]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", type=Path, required=True, help="the output of `./pants test`")
    parser.add_argument("--reports", type=Path, required=True, help="--test-report-dir")
    parser.add_argument("--ci", action="store_true", help="a skipped test is a failure")
    parser.add_argument("--slowest", type=int, default=10, help="rows of the slowest targets")
    args = parser.parse_args(argv)

    results = parse_results(args.log.read_text(errors="replace"))
    summary = summarize(results, args.reports)
    print(f"\nSlowest test targets that ran (not from cache), of {len(results)}:")
    print("\n".join(slowest_table(results, args.slowest)))
    if summary.failed_targets:
        print("\nFailed test targets:")
        print("\n".join(f"  {t}" for t in summary.failed_targets))
    if summary.skipped:
        verdict = "a failure under CI" if args.ci else "run with CI=true to fail on them"
        print(f"\nSkipped tests ({verdict}):")
        print("\n".join(f"  {test}: {reason}" for test, reason in summary.skipped))
    if not results:
        print("\n`./pants test` printed no test result.")
    print(f"\n{summary.passed} passed, {summary.failed} failed, {len(summary.skipped)} skipped")
    bad = summary.failed or not results or (args.ci and summary.skipped)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
