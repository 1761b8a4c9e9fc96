"""A python model's `auto_complete_config`, found in model.py without running it.

At load, Triton's python backend calls `TritonPythonModel.auto_complete_config(config)` when the
class has that attribute (`Stub::AutoCompleteModelConfig` in python_backend's `src/pb_stub.cc`;
Triton's default `--disable-auto-complete-config=false` leaves it on). Through `add_input`,
`add_output`, `set_max_batch_size`, `set_dynamic_batching` and `set_model_transaction_policy`
it may add tensors, fill in the `dims` and `data_type` config.pbtxt leaves out, raise
`max_batch_size`, turn on dynamic batching and set `decoupled` (python_backend's
`triton_python_backend_utils.py`, class `ModelConfig`). What it does depends on running it, so
the checks only learn that it exists: the fields it may fill in are left open.

The class is read with `ast`: a `def auto_complete_config` (or an assignment to that name) in the
body of the module's `class TritonPythonModel`, or of a class of the same module it derives from.
A base class imported from elsewhere may define it too, so such a class counts as having it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

METHOD = "auto_complete_config"
MODEL_CLASS = "TritonPythonModel"
# The `ModelConfig` methods through which auto_complete_config fills in the config.
SETTERS = (
    "add_input",
    "add_output",
    "set_max_batch_size",
    "set_dynamic_batching",
    "set_model_transaction_policy",
)
# The fields of the config those methods may fill in.
FIELDS = ("input", "output", "max_batch_size", "dynamic_batching", "model_transaction_policy")


@dataclass(frozen=True)
class AutoCompleteMethod:
    """Where model.py defines `auto_complete_config` (or may inherit it)."""

    path: str
    line: int
    # The `ModelConfig` setters its body calls by name, in order of first call (helpers it
    # calls may call others).
    calls: tuple[str, ...] = ()
    # The base class it may come from, when that class is not defined in model.py.
    inherited_from: str = ""

    @property
    def where(self) -> str:
        if self.inherited_from:
            return (
                f"model.py's class {MODEL_CLASS}, which derives from `{self.inherited_from}` "
                f"and may inherit an {METHOD} from it ({self.path}:{self.line})"
            )
        return f"model.py's {METHOD} ({self.path}:{self.line})"


def find_auto_complete_config(path: str, source: str) -> AutoCompleteMethod | None:
    """The `auto_complete_config` of model.py's `TritonPythonModel`, or None when it has none
    (or the file does not parse, which the python checks report)."""
    try:
        module = ast.parse(source)
    except SyntaxError:
        return None
    classes = {node.name: node for node in module.body if isinstance(node, ast.ClassDef)}
    return _lookup(path, classes.get(MODEL_CLASS), classes, set())


def _lookup(
    path: str, cls: ast.ClassDef | None, classes: dict[str, ast.ClassDef], seen: set[str]
) -> AutoCompleteMethod | None:
    if cls is None or cls.name in seen:
        return None
    seen.add(cls.name)
    for node in reversed(cls.body):  # The last definition wins, as in the class namespace.
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == METHOD:
            return AutoCompleteMethod(path, node.lineno, _setter_calls(node))
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == METHOD for t in targets):
                return AutoCompleteMethod(path, node.lineno)
    for base in cls.bases:
        name = ast.unparse(base)
        if name == "object":
            continue
        if name in classes:
            found = _lookup(path, classes[name], classes, seen)
            if found:
                return found
        else:
            return AutoCompleteMethod(path, cls.lineno, inherited_from=name)
    return None


def _setter_calls(function: ast.AST) -> tuple[str, ...]:
    calls = sorted(
        (node.lineno, node.col_offset, node.func.attr)
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SETTERS
    )
    return tuple(dict.fromkeys(name for _, _, name in calls))
