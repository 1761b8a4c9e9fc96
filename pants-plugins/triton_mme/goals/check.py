"""`./pants check` type-checks the Python code of model version folders with MyPy.

Every python-backend model keeps its code in `<model>/<version>/model.py`, so one MyPy run would
see many modules named `model` and stop with "Duplicate module named 'model'". Such files are
therefore left out of Pants' own `mypy` (`skip_mypy=True` on their `python_sources` target) and
checked here, one MyPy run per version folder, with Pants' MyPy setup (`[mypy]` options, config
file, the target's resolve and the stub of `triton_python_backend_utils`).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import (
    InterpreterConstraintsField,
    PythonResolveField,
    PythonSourceField,
)
from pants.backend.python.typecheck.mypy.rules import MyPyPartition
from pants.backend.python.typecheck.mypy.subsystem import MyPy, MyPyFieldSet
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.core.goals.check import CheckRequest, CheckResult, CheckResults
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import CoarsenedTargets, CoarsenedTargetsRequest, FieldSet, Target
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel
from pants.util.ordered_set import FrozenOrderedSet, OrderedSet

_VERSION_FOLDER = re.compile(r"[0-9]+")


def version_folder_of(path: str) -> str | None:
    """The version folder (`models/x/1`) holding `path`, if its parent is a numeric folder."""
    folder = os.path.dirname(path)
    return folder if _VERSION_FOLDER.fullmatch(os.path.basename(folder)) else None


@dataclass(frozen=True)
class ModelCodeFieldSet(FieldSet):
    required_fields = (PythonSourceField,)

    source: PythonSourceField
    resolve: PythonResolveField
    interpreter_constraints: InterpreterConstraintsField

    @classmethod
    def opt_out(cls, tgt: Target) -> bool:
        return version_folder_of(tgt[PythonSourceField].file_path) is None


class ModelCodeMyPyRequest(CheckRequest):
    field_set_type = ModelCodeFieldSet
    tool_name = "mypy-triton-models"


@rule(desc="Typecheck model code with MyPy, one version folder at a time", level=LogLevel.DEBUG)
async def typecheck_model_code(
    request: ModelCodeMyPyRequest, mypy: MyPy, python_setup: PythonSetup
) -> CheckResults:
    if mypy.skip:
        return CheckResults([], checker_name=request.tool_name)
    by_folder: dict[str, list[ModelCodeFieldSet]] = defaultdict(list)
    for field_set in request.field_sets:
        by_folder[version_folder_of(field_set.source.file_path) or ""].append(field_set)
    coarsened = await Get(
        CoarsenedTargets, CoarsenedTargetsRequest(fs.address for fs in request.field_sets)
    )
    coarsened_by_address = coarsened.by_address()
    partitions = [
        MyPyPartition(
            FrozenOrderedSet(
                MyPyFieldSet(fs.address, fs.source, fs.resolve, fs.interpreter_constraints)
                for fs in field_sets
            ),
            CoarsenedTargets(OrderedSet(coarsened_by_address[fs.address] for fs in field_sets)),
            folder,
            InterpreterConstraints.create_from_compatibility_fields(
                (fs.interpreter_constraints for fs in field_sets), python_setup
            ),
        )
        for folder, field_sets in sorted(by_folder.items())
    ]
    results = await MultiGet(Get(CheckResult, MyPyPartition, p) for p in partitions)
    return CheckResults(results, checker_name=request.tool_name)


def rules() -> Iterable:
    return (*collect_rules(), UnionRule(CheckRequest, ModelCodeMyPyRequest))
