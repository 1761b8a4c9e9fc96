"""`./pants served-config`: print the config Triton will serve for each model given.

Triton completes config.pbtxt at load: its core fills in the backend fields, the onnxruntime
backend takes inputs, outputs and max_batch_size from the graph, the python backend runs
model.py's `auto_complete_config`. `lint`, `package` and `test` check that completed config
(`util_rules/served_config.py`); this goal shows it, each filled-in field with a comment saying
where it comes from (`config/served_text.py`).
"""

from __future__ import annotations

from typing import Iterable

from pants.engine.console import Console
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.rules import Get, MultiGet, collect_rules, goal_rule
from pants.engine.target import Targets
from pants.util.logging import LogLevel
from pants.util.strutil import softwrap
from triton_mme.config.served_text import served_configs_text
from triton_mme.util_rules.repository import TritonModelFieldSet
from triton_mme.util_rules.served_config import ServedConfigRequest, ServedModelConfig


class ServedConfigSubsystem(GoalSubsystem):
    name = "served-config"
    help = softwrap(
        """
        Print the config Triton will serve for each `triton_model` and `triton_ensemble`
        given: config.pbtxt as Triton completes it at load.

        Fields config.pbtxt leaves out are filled in, each with a comment saying who fills it
        in: Triton's core (`backend`, `platform` and `default_model_filename`, from the model
        file in the first version folder), the onnxruntime backend (inputs, outputs and
        `max_batch_size` from the ONNX graph, read as `lint` reads it), or what is left to a
        python model's `auto_complete_config`. Versions served alike are printed once. See
        docs/models.md.
        """
    )


class ServedConfig(Goal):
    subsystem_cls = ServedConfigSubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


@goal_rule(desc="Print the configs Triton serves", level=LogLevel.DEBUG)
async def served_config(console: Console, targets: Targets) -> ServedConfig:
    addresses = [t.address for t in targets if TritonModelFieldSet.is_applicable(t)]
    if not addresses:
        console.print_stderr(
            "No Triton model given: name `triton_model` or `triton_ensemble` targets, e.g. "
            "`./pants served-config models/my_model:` or `models::`."
        )
        return ServedConfig(exit_code=0)
    served = await MultiGet(
        Get(ServedModelConfig, ServedConfigRequest(address)) for address in addresses
    )
    console.print_stdout(
        "\n".join(
            served_configs_text(model.source, model.model_name, model.versions, model.fields)
            for model in served
        ),
        end="",
    )
    return ServedConfig(exit_code=0)


def rules() -> Iterable:
    return collect_rules()
