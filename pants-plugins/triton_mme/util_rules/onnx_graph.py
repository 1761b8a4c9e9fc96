"""The ONNX graphs of a model served by Triton's onnxruntime backend.

For each `model.onnx` of the model directory (committed, or fetched by DVC through the
`ModelFilesRequest` union: the bytes that ship) one sandboxed process of the `[onnx-graph]` tool
(`scripts/onnx_graph.py`, the `onnx` package) reads the graph's inputs and outputs without its
external data. The process's only input is that file, so Pants caches the result by the weights'
digest: an unchanged model is read once. `util_rules/served_config.py` completes the config from
it as the backend does, and `config/onnx_graph.py` compares the two.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Iterable

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.engine.engine_aware import EngineAwareParameter
from pants.engine.fs import Digest, DigestSubset, PathGlobs, RemovePrefix, Snapshot
from pants.engine.process import FallibleProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel
from pants.engine.target import Target
from triton_mme.config.onnx_graph import OnnxGraph
from triton_mme.subsystems.onnx_graph import OnnxGraphReaderSubsystem
from triton_mme.subsystems import tool
from triton_mme.subsystems.tool import ScriptTool, ScriptToolRequest
from triton_mme.util_rules.repository import ModelDirectory, ModelDirectoryRequest


class OnnxGraphError(Exception):
    """An ONNX file that cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class OnnxGraphRequest:
    """One ONNX file: `digest` holds only it, at `path` (relative to the model directory)."""

    model: str
    path: str
    digest: Digest


@rule(desc="Read an ONNX graph", level=LogLevel.DEBUG)
async def read_onnx_graph(
    request: OnnxGraphRequest, subsystem: OnnxGraphReaderSubsystem
) -> OnnxGraph:
    reader = await Get(ScriptTool, ScriptToolRequest, subsystem.tool_request())
    result = await Get(
        FallibleProcessResult,
        VenvPexProcess(
            reader.pex,
            argv=(request.path,),
            description=f"Read the ONNX graph of {request.model}/{request.path}",
            input_digest=request.digest,
            level=LogLevel.DEBUG,
        ),
    )
    if result.exit_code != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise OnnxGraphError(f"{request.model}/{message}")
    return OnnxGraph.from_json(request.path, json.loads(result.stdout)[request.path])


@dataclass(frozen=True)
class OnnxGraphsRequest(EngineAwareParameter):
    """The ONNX graphs of a model's version folders; `file_name` is the model file's name
    (`default_model_filename`, or `model.onnx`)."""

    target: Target
    file_name: str

    def debug_hint(self) -> str:
        return self.target.address.spec


@dataclass(frozen=True)
class OnnxGraphs:
    """One graph per numeric version folder that holds the model file, by version."""

    graphs: tuple[OnnxGraph, ...]

    def for_version(self, version: int) -> OnnxGraph | None:
        return next((g for g in self.graphs if g.path.split("/")[0] == str(version)), None)


def onnx_file_globs(model_name: str, file_name: str) -> PathGlobs:
    """The ONNX file of every version folder (a folder of that name holds `model.onnx`)."""
    return PathGlobs(
        [
            os.path.join(model_name, "*", file_name),
            os.path.join(model_name, "*", file_name, "model.onnx"),
        ]
    )


@rule(desc="Read the ONNX graphs of a model", level=LogLevel.DEBUG)
async def model_onnx_graphs(request: OnnxGraphsRequest) -> OnnxGraphs:
    directory = await Get(ModelDirectory, ModelDirectoryRequest(request.target))
    name = directory.model_name
    found = await Get(
        Snapshot, DigestSubset(directory.digest, onnx_file_globs(name, request.file_name))
    )
    # Triton loads numeric version folders only.
    paths = [p for p in found.files if p.split("/")[1].isdigit()]
    files = await MultiGet(
        Get(Digest, DigestSubset(directory.digest, PathGlobs([path]))) for path in paths
    )
    relative = await MultiGet(Get(Digest, RemovePrefix(digest, name)) for digest in files)
    graphs = await MultiGet(
        Get(OnnxGraph, OnnxGraphRequest(name, os.path.relpath(path, name), digest))
        for path, digest in zip(paths, relative)
    )
    return OnnxGraphs(tuple(graphs))


def rules() -> Iterable:
    return (*collect_rules(), *tool.rules(), *OnnxGraphReaderSubsystem.rules())
