"""Python models that call other models by name (BLS), checked against the names that ship.

A python model may call another model with `pb_utils.InferenceRequest(model_name=...)`. In an
ensemble's tarball the members are renamed (see `config/rewrite.py`), so a literal name written
in `model.py` would call a model the tarball does not hold. Such calls are refused with the way
to write them: read the name from the `triton_mme.model_names` config parameter, which `package`
and `test` add to every python model that builds inference requests (pure functions; no rules).
"""

from __future__ import annotations

import ast
from typing import Iterable, Mapping

from triton_mme.config.rewrite import MODEL_NAMES_PARAMETER

INFERENCE_REQUEST = "InferenceRequest"


def builds_inference_requests(source: str) -> bool:
    return INFERENCE_REQUEST in source


def _literal_calls(source: str) -> list[tuple[int, str]]:
    """(line, name) of every `...InferenceRequest(model_name="name", ...)` in `source`."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # Triton reports it when the model loads; nothing to check here.
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called != INFERENCE_REQUEST:
            continue
        for keyword in node.keywords:
            value = keyword.value
            if (
                keyword.arg == "model_name"
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                calls.append((node.lineno, value.value))
    return calls


def how_to_name(name: str) -> str:
    """The way to call the model `name` from a python model so that it works in any artifact."""
    attribute = f"{name}_model"
    return f"""\
Read the name from the `{MODEL_NAMES_PARAMETER}` config parameter that packaging adds:

    def initialize(self, args):
        parameters = json.loads(args["model_config"]).get("parameters", {{}})
        names = parameters.get("{MODEL_NAMES_PARAMETER}", {{}}).get("string_value", "{{}}")
        self.{attribute} = json.loads(names).get("{name}", "{name}")

and call `pb_utils.InferenceRequest(model_name=self.{attribute}, ...)` (see docs/models.md)."""


def check_bls_calls(
    path: str,
    source: str,
    *,
    artifact: str,
    renames: Mapping[str, str],
    shipped_names: Iterable[str],
) -> list[str]:
    """Problems with the literal model names `source` (a shipped `.py` file) calls by BLS."""
    shipped = set(shipped_names)
    problems = []
    for line, name in _literal_calls(source):
        if name in renames:
            problems.append(
                f"{path}:{line}: calls the model `{name}` by its literal name, but in the "
                f"tarball of `{artifact}` it is named `{renames[name]}` (member names are "
                f"unique to each artifact so that artifacts load side by side). {how_to_name(name)}"
            )
        elif name not in shipped:
            problems.append(
                f"{path}:{line}: calls the model `{name}`, which is not in the tarball of "
                f"`{artifact}` (it holds {', '.join(sorted(shipped))}). Add `{name}` as a "
                "dependency of the ensemble (a step, or `dependencies` in its BUILD file)."
            )
    return problems
