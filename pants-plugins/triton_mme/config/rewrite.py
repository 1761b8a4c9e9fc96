"""Member model names unique to one artifact, and the config.pbtxt rewrite that applies them.

SageMaker MME registers every extracted tarball as a model repository of one Triton server and
maps only the served directory (the ensemble, or the single model) to the TargetModel name.
Member models keep their directory names in Triton's one model namespace, so two tarballs that
hold a member of the same name (two versions of one pipeline, or two pipelines sharing a
`preprocessing`) cannot be loaded side by side. In an ensemble's tarball every member therefore
gets a name unique to the artifact: `<artifact>.<member>`, e.g.
`screen_detection_pipeline_1.1.0.screen_detection_preprocessing` (pure functions; no rules).
"""

from __future__ import annotations

import json
from typing import Mapping

from google.protobuf import text_format
from triton_mme.config.parse import parse_model_config

# A config parameter holding `{"<source name>": "<name in the tarball>", ...}` as JSON, for
# python models that call other models by name (BLS).
MODEL_NAMES_PARAMETER = "triton_mme.model_names"


def shipped_member_name(artifact: str, member: str) -> str:
    """The name of an ensemble's member model in the artifact `<model_name>_<version>`."""
    return f"{artifact}.{member}"


def rewrite_config(
    path: str,
    text: str,
    *,
    name: str,
    renames: Mapping[str, str],
    with_model_names: bool = False,
) -> str | None:
    """`text` with its `name:` set to `name`, ensemble steps calling the renamed models, and,
    when `with_model_names`, the `triton_mme.model_names` parameter; None when nothing changes.

    The result is protobuf text format (deterministic; comments are not kept), headed by a
    comment naming the source file.
    """
    parsed = parse_model_config(path, text).message
    config = type(parsed)()
    config.CopyFrom(parsed)  # the parsed message is shared: rewrite a copy
    before = config.SerializeToString(deterministic=True)
    if config.name:
        config.name = name
    for step in config.ensemble_scheduling.step:
        step.model_name = renames.get(step.model_name, step.model_name)
    if with_model_names:
        mapping = json.dumps(dict(sorted(renames.items())), separators=(",", ":"))
        config.parameters[MODEL_NAMES_PARAMETER].string_value = mapping
    if config.SerializeToString(deterministic=True) == before:
        return None
    return (
        f"# {path}, with the member model names of this artifact (see docs/models.md).\n"
        + text_format.MessageToString(config)
    )
