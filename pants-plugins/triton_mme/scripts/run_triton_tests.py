"""Run the test cases (and pytest tests) of a batch of `triton_test` targets against one server.

Runs inside the `triton-client` PEX. Pants writes `manifest.json` (the targets, their model
names and case files, the server settings) and the model repository beside it; this script
starts one Triton container for the whole batch (see triton_server.py), loads every model under
test, runs each target's cases and pytest files, writes one JSON result per target plus the
server log into the results directory, and prints a report a data scientist can act on.

Modes: `test` (the default), `debug` (`test --debug`: run, then keep serving), `serve`
(`run`: load the models and keep serving until Ctrl-C) and `record` (`record-outputs`: write
each case's answers into a copy of its case file, see record_cases.py).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from triton_mme.scripts.model_client import MODEL_NAMES_ENV, ModelClient, ModelNames
from triton_mme.scripts.record_cases import (
    Outputs,
    RecordError,
    record_case_file,
    record_lines,
)
from triton_mme.scripts.triton_cases import Case, CaseFileError, compare_output, load_case_file
from triton_mme.scripts.triton_container import (
    ContainerError,
    Interrupted,
    install_signal_handlers,
)
from triton_mme.scripts.triton_server import (
    Server,
    ServerSettings,
    model_log_errors,
    start_server,
)

SERVER_LOG = "triton-server.log"


class BatchTimedOut(Exception):
    """The batch ran past its timeout (`timeout` fields, `[test].timeout_default`)."""


@dataclass(frozen=True)
class Deadline:
    """When the batch's cases must be done (None: no limit)."""

    at: float | None
    seconds: float | None

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        return cls(None if seconds is None else time.monotonic() + seconds, seconds)

    def remaining(self, doing: str) -> float | None:
        """Seconds left, or raise BatchTimedOut naming what was about to run."""
        if self.at is None:
            return None
        left = self.at - time.monotonic()
        if left <= 0:
            raise BatchTimedOut(
                f"timed out at {doing}: the batch's cases may take {self.seconds:g}s (the sum "
                "of its targets' `timeout` fields, or [test].timeout_default)"
            )
        return left


@dataclass
class CaseResult:
    case: str
    passed: bool
    mismatches: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class TargetResult:
    address: str
    model: str
    finished: bool = False  # its model loaded (or failed to) and its cases ran: else not passed
    load_error: str | None = None
    cases: list[CaseResult] = field(default_factory=list)
    pytest_exit_code: int | None = None
    pytest_output: str | None = None
    error: str | None = None
    # The config Triton reports for each model of the target's artifact once loaded
    # (`GET /v2/models/<served name>/config`), by source name: the effective config, which a
    # python model's `auto_complete_config` may have completed. The plugin checks an ensemble's
    # steps against these after the batch (goals/test.py).
    served_configs: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return (
            self.finished
            and self.load_error is None
            and self.error is None
            and all(c.passed for c in self.cases)
            and self.pytest_exit_code in (None, 0)
        )


@dataclass(frozen=True)
class TargetSpec:
    address: str
    result_name: str
    model: str
    # Every model of the target's artifact (the ensemble's steps too): source -> served name.
    names: ModelNames
    cases: tuple[str, ...]
    pytest: tuple[str, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TargetSpec:
        return cls(
            address=data["address"],
            result_name=data["result_name"],
            model=data["model"],
            names=ModelNames(dict(data["names"])),
            cases=tuple(data["cases"]),
            pytest=tuple(data["pytest"]),
        )

    @property
    def models(self) -> tuple[str, ...]:
        """The served names of the models loading the target's model loads."""
        return tuple(sorted(self.names.served.values()))


# ---------------------------------------------------------------------------------------------
# Running cases


def run_cases(server: Server, target: TargetSpec, result: TargetResult, deadline: Deadline) -> None:
    from tritonclient.utils import InferenceServerException

    network_timeout = deadline.remaining(f"the cases of {target.address}") or 600.0
    client = ModelClient(server.http_url, target.names, network_timeout)
    try:
        for path in target.cases:
            try:
                cases = load_case_file(path)
            except CaseFileError as e:
                result.cases.append(CaseResult(case=path, passed=False, error=str(e)))
                continue
            for case in cases:
                deadline.remaining(case.label)
                try:
                    response = client.infer(
                        target.model, case.inputs, [o.name for o in case.outputs]
                    )
                except InferenceServerException as e:
                    message = f"Triton rejected the request: {e.message()}"
                    result.cases.append(CaseResult(case.label, passed=False, error=message))
                    continue
                except Exception as e:  # the client's network timeout, a dropped connection
                    deadline.remaining(case.label)
                    message = f"the request failed: {type(e).__name__}: {e}"
                    result.cases.append(CaseResult(case.label, passed=False, error=message))
                    continue
                mismatches = []
                for expected in case.outputs:
                    meta = response.get_output(expected.name)
                    actual = response.as_numpy(expected.name) if meta else None
                    mismatch = compare_output(
                        case.label, expected, actual, meta["datatype"] if meta else None
                    )
                    if mismatch:
                        mismatches.append(mismatch.render())
                result.cases.append(CaseResult(case.label, not mismatches, mismatches))
    finally:
        client.close()


def record_cases(
    server: Server, target: TargetSpec, result: TargetResult, overwrite: bool, output_dir: str
) -> None:
    """Record the expected outputs of the target's case files into `output_dir` (same paths)."""
    from tritonclient.utils import InferenceServerException

    client = ModelClient(server.http_url, target.names, network_timeout=600.0)
    order: list[str] = []  # the config's outputs: an ensemble answers them in any order

    def send(case: Case) -> Outputs:
        try:
            response = client.infer(target.model, case.inputs, order)
        except InferenceServerException as e:
            raise RecordError(f"Triton rejected the request: {e.message()}") from e
        returned = {output["name"]: output for output in response.get_response()["outputs"]}
        return {
            name: (returned[name]["datatype"], response.as_numpy(name))
            for name in sorted(returned, key=lambda n: order.index(n) if n in order else len(order))
        }

    try:
        order.extend(o["name"] for o in client.metadata(target.model)["outputs"])
        for path in target.cases:
            try:
                recorded = record_case_file(path, send, overwrite)
            except CaseFileError as e:
                print(f"FAILED {e}", flush=True)
                result.cases.append(CaseResult(case=path, passed=False, error=str(e)))
                continue
            print("\n".join(record_lines(recorded)), flush=True)
            result.cases.extend(CaseResult(f"{path} [{n}]", True) for n in recorded.recorded)
            result.cases.extend(CaseResult(e, False, error=e) for e in recorded.errors)
            written = os.path.join(output_dir, path)
            os.makedirs(os.path.dirname(written), exist_ok=True)
            with open(written, "w", encoding="utf-8") as f:
                f.write(recorded.text)
    finally:
        client.close()


def run_pytest(
    server: Server, target: TargetSpec, result: TargetResult, results_dir: str, deadline: Deadline
) -> None:
    env = {
        **os.environ,
        "TRITON_HTTP_URL": server.http_url,
        "TRITON_GRPC_URL": server.grpc_url,
        "TRITON_MODEL_NAME": target.model,
        MODEL_NAMES_ENV: target.names.to_json(),
    }
    junit = os.path.join(results_dir, f"{target.result_name}.pytest.xml")
    timeout = deadline.remaining(f"the pytest files of {target.address}")
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "triton_mme.scripts.triton_pytest_plugin",
                "-p",
                "no:cacheprovider",
                # Tests of different models may share file names (tests/test_model.py).
                "--import-mode=importlib",
                "--rootdir=.",
                "-q",
                f"--junitxml={junit}",
                *target.pytest,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        result.pytest_output = e.output if isinstance(e.output, str) else None
        deadline.remaining(f"the pytest files of {target.address}")
        raise
    result.pytest_exit_code = completed.returncode
    result.pytest_output = completed.stdout


def load_errors(server: Server, targets: list[TargetSpec]) -> dict[str, str]:
    """Load every model under test; for each target whose model failed, Triton's reasons."""
    failed = server.load_models({t.model: t.models for t in sorted(targets, key=lambda t: t.model)})
    if not failed:
        return {}
    log = server.log()
    index = {entry.get("name"): entry for entry in server.repository_index()}
    errors = {}
    for target in targets:
        if target.model not in failed:
            continue
        lines = [failed[target.model].rstrip(";\n ")]
        members = {
            source: served
            for source, served in sorted(target.names.served.items())
            if served != target.model
        }
        for source, served in members.items():
            reason = index.get(served, {}).get("reason")
            if reason and index[served].get("state") != "READY":
                state = index[served].get("state")
                lines.append(f"model {target.names.describe(source)} is {state}: {reason.strip()}")
        # The root model's own error is the response above; the log adds its members' errors.
        log_lines = model_log_errors(log, list(members.values()))
        if log_lines:
            lines.append("Triton's log says:\n" + "\n".join(f"  {line}" for line in log_lines))
        errors[target.model] = "\n".join(lines)
    return errors


def served_configs(server: Server, target: TargetSpec) -> dict[str, Any]:
    """The config Triton serves for each loaded model of the target's artifact, by source name
    (a model that did not load has none)."""
    configs = {}
    for source, served in sorted(target.names.served.items()):
        status, config = server.request("GET", f"/v2/models/{served}/config")
        if status == 200 and isinstance(config, dict):
            configs[source] = config
    return configs


# ---------------------------------------------------------------------------------------------
# Reporting


def report(results: list[TargetResult]) -> str:
    lines = []
    for result in results:
        passed_cases = sum(c.passed for c in result.cases)
        status = "PASSED" if result.passed else "FAILED"
        pytest_note = (
            ""
            if result.pytest_exit_code is None
            else f", pytest {'passed' if result.pytest_exit_code == 0 else 'FAILED'}"
        )
        ran = result.cases or result.pytest_exit_code is not None
        outcome = (
            f"{passed_cases}/{len(result.cases)} cases passed{pytest_note}"
            if ran
            else "loaded, no cases"
            if result.passed
            else "no cases ran"
        )
        lines.append(f"{status} {result.address} (model `{result.model}`): {outcome}")
        if result.error:
            lines.append(f"  {result.error}")
        if result.load_error:
            lines.append(f"  model `{result.model}` failed to load in Triton:")
            lines.extend(f"    {line}" for line in result.load_error.splitlines())
        for case in result.cases:
            if case.passed:
                continue
            if case.error:
                lines.append(f"  FAIL {case.case}: {case.error}")
            for mismatch in case.mismatches:
                lines.append("  FAIL " + mismatch.replace("\n", "\n  "))
        if result.pytest_exit_code not in (None, 0) and result.pytest_output:
            lines.append("  pytest output:")
            lines.extend(f"    {line}" for line in result.pytest_output.rstrip().splitlines())
    return "\n".join(lines)


def record_report(results: list[TargetResult]) -> str:
    """After recording (whose cases were reported as they ran): the models that did not load."""
    lines = []
    for result in results:
        if result.load_error:
            lines.append(f"FAILED {result.address}: model `{result.model}` failed to load:")
            lines.extend(f"    {line}" for line in result.load_error.splitlines())
        elif result.error:
            lines.append(f"FAILED {result.address}: {result.error}")
    return "\n".join(lines)


def not_run(results: list[TargetResult], reason: str) -> None:
    """Marks the targets the batch did not get to: they never count as passed."""
    for result in results:
        if not result.finished:
            result.error = f"not run: {reason}"


def write_results(results_dir: str, specs: list[TargetSpec], results: list[TargetResult]) -> None:
    for spec, result in zip(specs, results):
        data = {**asdict(result), "passed": result.passed}
        with open(os.path.join(results_dir, f"{spec.result_name}.json"), "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)


def curl_example(server: Server, model: str) -> str:
    status, metadata = server.request("GET", f"/v2/models/{model}")
    if status != 200 or not isinstance(metadata, dict):
        return f"curl -s http://{server.http_url}/v2/models/{model}"
    inputs = []
    for tensor in metadata.get("inputs", []):
        shape = [d if d > 0 else 1 for d in tensor.get("shape", [])]
        size = math.prod(shape)
        value: Any = "text" if tensor["datatype"] == "BYTES" else 0
        inputs.append(
            {"name": tensor["name"], "datatype": tensor["datatype"], "shape": shape}
            | {"data": [value] * size}
        )
    body = json.dumps({"inputs": inputs}, separators=(",", ":"))
    return (
        f"curl -s -X POST http://{server.http_url}/v2/models/{model}/infer "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


def name_map(specs: list[TargetSpec]) -> str:
    """The members served under their artifact's names, one line each (empty: none renamed)."""
    lines = [
        f"  `{source}` of `{spec.model}` is served as `{served}`"
        for spec in specs
        for source, served in spec.names.renamed().items()
    ]
    if not lines:
        return ""
    return (
        "Models are served as their tarballs ship them: an ensemble's members are named "
        "`<artifact>.<member>` (docs/models.md).\n" + "\n".join(sorted(set(lines))) + "\n"
    )


def serve_forever(server: Server, specs: list[TargetSpec]) -> None:
    models = [spec.model for spec in specs]
    print(
        f"\nTriton is serving {', '.join(f'`{m}`' for m in models)}.\n"
        f"  HTTP: http://{server.http_url}    gRPC: {server.grpc_url}\n"
        f"  Container: {server.container_id[:12]} (removed when you press Ctrl-C)\n",
        flush=True,
    )
    print(name_map(specs), flush=True)
    for model in models:
        print(f"  {curl_example(server, model)}\n", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    while server.is_running():
        time.sleep(1.0)
    print("The Triton container stopped. Its log:\n" + server.log()[-4000:], flush=True)


# ---------------------------------------------------------------------------------------------


def main(manifest_path: str) -> int:
    install_signal_handlers()
    # Paths in the manifest are relative to it (the sandbox, or the chroot of `run`).
    os.chdir(os.path.dirname(os.path.abspath(manifest_path)))
    with open(manifest_path) as f:
        manifest = json.load(f)
    mode = manifest["mode"]
    settings = ServerSettings.from_json(manifest["server"])
    specs = [TargetSpec.from_json(t) for t in manifest["targets"]]
    results_dir = manifest["results_dir"]
    os.makedirs(results_dir, exist_ok=True)
    results = [TargetResult(address=s.address, model=s.model) for s in specs]
    timeout = manifest.get("timeout")
    server_log = ""
    exit_code = 0
    try:
        with start_server(settings, manifest["repository"]) as server:
            try:
                errors = load_errors(server, specs)
                # Start-up and loading have their own limit ([triton].startup_timeout); the
                # targets' timeouts are for their cases and pytest files.
                deadline = Deadline.after(timeout if mode == "test" else None)
                timed_out = False
                for spec, result in zip(specs, results):
                    # Members load even when their ensemble does not: their configs say why.
                    result.served_configs = served_configs(server, spec)
                    if spec.model in errors:
                        result.load_error = errors[spec.model]
                    elif timed_out:
                        result.error = "not run: the batch ran out of time"
                    elif mode == "record":
                        overwrite = manifest["overwrite"]
                        record_cases(server, spec, result, overwrite, manifest["recorded_dir"])
                    elif mode != "serve":
                        try:
                            run_cases(server, spec, result, deadline)
                            if spec.pytest:
                                run_pytest(server, spec, result, results_dir, deadline)
                        except BatchTimedOut as e:
                            result.error, timed_out = str(e), True
                    result.finished = True
                if mode != "serve":
                    print((record_report if mode == "record" else report)(results), flush=True)
                exit_code = 3 if timed_out else 0 if all(r.passed for r in results) else 1
                if mode in ("serve", "debug"):
                    for result in results:
                        if result.load_error:
                            print(f"`{result.model}` failed to load:\n{result.load_error}")
                    serve_forever(server, [s for s in specs if s.model not in errors])
            finally:
                server_log = server.log()
    except ContainerError as e:
        print(f"Could not start Triton ({settings.image}): {e}", file=sys.stderr, flush=True)
        not_run(results, "Triton did not start (see the error above)")
        exit_code = 2
    except Interrupted as e:
        print(f"Interrupted ({e}); the Triton container was removed.", file=sys.stderr)
        not_run(results, "interrupted")
        exit_code = 130
    except Exception as e:
        traceback.print_exc()
        not_run(results, f"the test runner failed: {type(e).__name__}: {e}")
        exit_code = 2
    finally:
        if mode == "test":
            write_results(results_dir, specs, results)
            with open(os.path.join(results_dir, SERVER_LOG), "w") as f:
                f.write(server_log)
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "manifest.json"))
