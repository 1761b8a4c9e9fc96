"""`./pants fmt` (and `lint`) on model targets: config.pbtxt in the canonical layout.

The layout and its guarantees are in `triton_mme.config.format`; this module only runs it on the
config of each `triton_model` and `triton_ensemble` target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pants.core.goals.fmt import FmtResult, FmtTargetsRequest
from pants.core.util_rules.partitions import PartitionerType
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent, Snapshot
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import FieldSet
from pants.util.logging import LogLevel
from triton_mme.config.format import format_model_config
from triton_mme.subsystems.config_format import TritonConfigFormatSubsystem
from triton_mme.target_types import TritonConfigSourceField, TritonVersionSourcesField


@dataclass(frozen=True)
class TritonConfigFmtFieldSet(FieldSet):
    required_fields = (TritonConfigSourceField, TritonVersionSourcesField)

    # The config is also one of the model's `sources`: those are what fmt hands over.
    sources: TritonVersionSourcesField
    config: TritonConfigSourceField


class TritonConfigFmtRequest(FmtTargetsRequest):
    field_set_type = TritonConfigFmtFieldSet
    tool_subsystem = TritonConfigFormatSubsystem
    partitioner_type = PartitionerType.DEFAULT_SINGLE_PARTITION


@rule(desc="Format config.pbtxt files", level=LogLevel.DEBUG)
async def format_configs(request: TritonConfigFmtRequest.Batch) -> FmtResult:
    contents = await Get(DigestContents, Digest, request.snapshot.digest)
    # The batch holds the models' `sources`; their `.pbtxt` files are Triton configs.
    formatted = [
        FileContent(c.path, format_model_config(c.path, c.content.decode("utf-8")).encode("utf-8"))
        if c.path.endswith(".pbtxt")
        else c
        for c in contents
    ]
    output = await Get(Snapshot, CreateDigest(formatted))
    return FmtResult(
        input=request.snapshot, output=output, stdout="", stderr="", tool_name=request.tool_name
    )


def rules() -> Iterable:
    return (*collect_rules(), *TritonConfigFmtRequest.rules())
