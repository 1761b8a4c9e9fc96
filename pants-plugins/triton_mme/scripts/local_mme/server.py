"""A local SageMaker multi-model endpoint: Triton in Docker behind SageMaker's runtime API.

    python -m triton_mme.scripts.local_mme.server --source dist --image <triton image>

serves `POST /endpoints/<endpoint>/invocations` with the `X-Amzn-SageMaker-Target-Model`
header (what boto3's `sagemaker-runtime` `invoke_endpoint(TargetModel=...)` sends to an
`endpoint_url`), `GET /metrics` (JSON), `GET /models` (loaded models) and `GET /ping`.
The Triton container is removed on exit, Ctrl-C and SIGTERM; metrics are printed on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from triton_mme.scripts.local_mme.budget import Budget
from triton_mme.scripts.local_mme.container import TritonContainer
from triton_mme.scripts.local_mme.endpoint import MultiModelEndpoint, Reply, log
from triton_mme.scripts.local_mme.metrics import Metrics, render
from triton_mme.scripts.local_mme.sources import ModelSource, SourceError, open_source
from triton_mme.scripts.local_mme.tarball import ExtractionLimits
from triton_mme.scripts.triton_container import ContainerError, remove_stale_containers

TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"
EXAMPLE_BODY = '{"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1],"data":[1.0]}]}'


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGHUP so cleanup runs as for Ctrl-C."""


def _handler_for(
    endpoint: MultiModelEndpoint, metrics: Metrics, endpoint_name: str
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "triton-local-mme"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: loads, evictions and errors are logged by the endpoint."""

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("X-Amzn-Invoked-Production-Variant", "AllTraffic")
            if reply.error_type:
                self.send_header("x-amzn-ErrorType", reply.error_type)
            self.end_headers()
            self.wfile.write(reply.body)

        def _json(self, value: Any) -> None:
            self._send(Reply(200, json.dumps(value, indent=2).encode()))

        def do_GET(self) -> None:
            if self.path == "/ping":
                self._send(Reply(200, b"", "text/plain"))
            elif self.path == "/metrics":
                self._json(metrics.snapshot())
            elif self.path == "/models":
                self._json({"models": endpoint.loaded_models()})
            else:
                self._send(Reply.error(404, "UnknownOperationException", f"No {self.path}"))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.split("?", 1)[0].strip("/").split("/")
            if len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations":
                self._send(Reply.error(404, "UnknownOperationException", f"No {self.path}"))
            elif parts[1] != endpoint_name:
                self._send(
                    Reply.error(
                        400,
                        "ValidationError",
                        f"Endpoint {parts[1]} not found; this local endpoint is "
                        f"{endpoint_name!r}.",
                    )
                )
            elif not self.headers.get(TARGET_MODEL_HEADER):
                self._send(
                    Reply.error(
                        400,
                        "ValidationError",
                        f"A multi-model endpoint needs the {TARGET_MODEL_HEADER} header "
                        "(boto3: invoke_endpoint(TargetModel=...)).",
                    )
                )
            else:
                target_model = self.headers[TARGET_MODEL_HEADER]
                content_type = self.headers.get("Content-Type") or "application/json"
                self._send(endpoint.invoke(target_model, body, content_type))

    return Handler


def _client_examples(url: str, endpoint_name: str, target_model: str) -> str:
    return f"""\
  curl -s -X POST {url}/endpoints/{endpoint_name}/invocations \\
    -H '{TARGET_MODEL_HEADER}: {target_model}' -H 'Content-Type: application/json' \\
    -d '{EXAMPLE_BODY}'

  import boto3  # Python; any AWS SDK works the same way with this endpoint URL
  runtime = boto3.client("sagemaker-runtime", endpoint_url="{url}", region_name="us-east-1",
                         aws_access_key_id="local", aws_secret_access_key="local")
  reply = runtime.invoke_endpoint(EndpointName="{endpoint_name}", TargetModel="{target_model}",
                                  ContentType="application/json", Body={EXAMPLE_BODY!r})
  print(reply["Body"].read().decode())

  (replace INPUT0, FP32 and the shape with your model's inputs: see its config.pbtxt)"""


def _check_all(endpoint: MultiModelEndpoint, source: ModelSource) -> int:
    """The MME contract check: every tarball loads through Triton's SageMaker API by its name,
    all of them at once (tarballs whose member model names collide are reported by name)."""
    tarballs = source.list_tarballs(limit=100_000)
    failures = {}
    for target_model in tarballs:
        error = endpoint.check(target_model)
        if error is not None:
            failures[target_model] = json.loads(error.body)["Message"]
    print(f"\nMME contract check of {len(tarballs)} tarball(s) in {source.description}:")
    for target_model in tarballs:
        failure = failures.get(target_model)
        print(f"  FAILED {target_model}: {failure}" if failure else f"  ok     {target_model}")
    if not tarballs:
        print("  no tarballs found: run `pants package` first, or check the source.")
    return 1 if failures or not tarballs else 0


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="s3://bucket/prefix or a directory")
    parser.add_argument("--s3-endpoint-url", default=None)
    parser.add_argument("--s3-region", default=None)
    parser.add_argument("--image", required=True, help="the Triton image")
    parser.add_argument("--docker", default="docker", help="the docker client binary")
    parser.add_argument("--docker-run-arg", action="append", default=None)
    parser.add_argument("--server-arg", action="append", default=[])
    parser.add_argument("--startup-timeout", type=float, default=120)
    parser.add_argument("--endpoint-name", default="local-mme")
    parser.add_argument("--port", type=int, default=8080, help="front service port (0: any)")
    parser.add_argument("--max-models", type=int, default=0, help="0: no limit")
    parser.add_argument("--max-bytes", type=int, default=0, help="0: no limit")
    parser.add_argument("--max-tarball-bytes", type=int, default=ExtractionLimits.max_tarball_bytes)
    parser.add_argument(
        "--max-extracted-bytes", type=int, default=ExtractionLimits.max_extracted_bytes
    )
    parser.add_argument("--max-members", type=int, default=ExtractionLimits.max_members)
    parser.add_argument("--ready-file", default=None, help="write the URLs here as JSON")
    parser.add_argument(
        "--check",
        action="store_true",
        help="load every tarball of the source at once as MME would (no budget), report, and "
        "exit (1 on a failure)",
    )
    return parser.parse_args(argv)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _bind(
    args: argparse.Namespace, handler: type[BaseHTTPRequestHandler]
) -> ThreadingHTTPServer | None:
    """The front service's socket, or None (reported) when the port is taken."""
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as e:
        print(
            f"local-mme: cannot listen on 127.0.0.1:{args.port} ({e}); another endpoint "
            "may be running there: stop it, or set another `port` (0 picks a free one).",
            file=sys.stderr,
        )
        return None
    server.daemon_threads = True
    return server


def _announce(
    args: argparse.Namespace,
    url: str,
    source: ModelSource,
    budget: Budget,
    container: TritonContainer,
) -> None:
    """Print the endpoint's URL and how to call it; write `--ready-file`."""
    try:
        available = source.list_tarballs(limit=20)
    except SourceError as e:
        log(f"{e} Requests will fail the same way until this is fixed.")
        available = []
    example = (available or ["<model_name>_<version>.tar.gz"])[0]
    print(
        f"\nLocal SageMaker multi-model endpoint {args.endpoint_name!r} is ready.\n"
        f"  Endpoint URL (sagemaker-runtime endpoint_url): {url}\n"
        f"  Models from: {source.description}\n"
        f"  Budget: {budget.describe()}\n"
        f"  Metrics: {url}/metrics   Loaded models: {url}/models\n"
        f"  TargetModels available: {', '.join(available) or '(none yet)'}\n\n"
        f"Try it:\n"
        f"{_client_examples(url, args.endpoint_name, example)}\n\n"
        "Ctrl-C stops the endpoint and prints its metrics.\n",
        flush=True,
    )
    if args.ready_file:
        ready = {"url": url, "endpoint_name": args.endpoint_name}
        Path(args.ready_file).write_text(
            json.dumps({**ready, "container_id": container.container_id})
        )


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    try:
        source = open_source(args.source, args.s3_endpoint_url, args.s3_region)
    except ValueError as e:
        print(f"local-mme: {e}", file=sys.stderr)
        return 2
    work_dir = Path(tempfile.mkdtemp(prefix="triton-local-mme-"))
    container = TritonContainer(
        docker=args.docker,
        image=args.image,
        host_root=work_dir,
        docker_run_args=(["--shm-size=1g"] if args.docker_run_arg is None else args.docker_run_arg),
        server_args=args.server_arg,
    )
    metrics = Metrics()
    # The check loads every tarball side by side, as one instance may hold them all.
    budget = Budget() if args.check else Budget(args.max_models, args.max_bytes)
    server: ThreadingHTTPServer | None = None
    started = False
    try:
        endpoint = MultiModelEndpoint(
            source=source,
            triton=container,
            models_root=work_dir / "models",
            budget=budget,
            limits=ExtractionLimits(
                max_tarball_bytes=args.max_tarball_bytes,
                max_extracted_bytes=args.max_extracted_bytes,
                max_members=args.max_members,
            ),
            metrics=metrics,
        )
        if not args.check:
            # Bind before starting Triton: a busy port fails at once.
            server = _bind(args, _handler_for(endpoint, metrics, args.endpoint_name))
            if server is None:
                return 1
        for leftover in remove_stale_containers(args.docker):
            log(f"removed container {leftover} left by an earlier run that was killed")
        log(f"starting Triton ({args.image}) ...")
        container.start(args.startup_timeout)
        started = True
        if server is None:
            return _check_all(endpoint, source)
        _announce(args, f"http://127.0.0.1:{server.server_address[1]}", source, budget, container)
        server.serve_forever()
    except (KeyboardInterrupt, _Stop):
        pass
    except (ContainerError, SourceError) as e:
        print(f"local-mme: {e}", file=sys.stderr)
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        if server is not None:
            server.server_close()
        container.remove()
        shutil.rmtree(work_dir, ignore_errors=True)
        if started:
            print("\nLocal MME metrics:\n" + render(metrics.snapshot()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
