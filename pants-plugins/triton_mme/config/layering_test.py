"""`config/` is pure: none of its modules imports the plugin's rules, goals or targets, or the
Pants engine. The dependency goes the other way (`target_types` imports its constants from here).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FORBIDDEN = (
    "triton_mme.target_types",
    "triton_mme.goals",
    "triton_mme.util_rules",
    "triton_mme.subsystems",
    "triton_mme.register",
    "triton_mme.dependency_inference",
    "pants.engine",
)
PACKAGE = "triton_mme.config"
CONFIG_DIR = Path(__file__).parent


def imported_modules(source: str, module: str) -> set[str]:
    """Every module `source` (the module `module`) imports, anywhere in it, as absolute names;
    `from a import b` counts as `a` and `a.b`."""
    package = module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden_imports(source: str, module: str) -> list[str]:
    return sorted(
        name
        for name in imported_modules(source, module)
        if any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN)
    )


def config_modules() -> list[Path]:
    return sorted(p for p in CONFIG_DIR.glob("*.py") if not p.name.endswith("_test.py"))


def test_the_modules_are_all_here() -> None:
    # BUILD gives this test every module of the package; a few known ones prove it.
    names = {p.name for p in config_modules()}
    assert {"__init__.py", "parse.py", "model.py", "format.py", "bls_calls.py"} <= names


@pytest.mark.parametrize("path", config_modules(), ids=lambda p: p.name)
def test_config_imports_no_rules_goals_or_targets(path: Path) -> None:
    module = f"{PACKAGE}.{path.stem}"
    assert forbidden_imports(path.read_text(), module) == [], (
        f"{path.name} imports from the plugin's rules, goals or targets (or the Pants engine). "
        "Move the constant or helper it needs into config/ and import it from there instead."
    )


@pytest.mark.parametrize(
    "source",
    [
        "from triton_mme.target_types import ENV_ARCHIVE_NAME",
        "import triton_mme.goals.fmt",
        "from triton_mme import util_rules",
        "from ..subsystems.triton import TritonSubsystem",
        "from .. import target_types",
        "from pants.engine.rules import rule",
        "def f():\n    from triton_mme.register import rules\n",
    ],
)
def test_a_forbidden_import_is_found(source: str) -> None:
    assert forbidden_imports(source, f"{PACKAGE}.model")


@pytest.mark.parametrize(
    "source",
    [
        "from triton_mme.config.parse import ModelConfigFile",
        "from .errors import ModelConfigError",
        "from triton_mme.scripts.config_platform import ENSEMBLE_PLATFORM",
        "from pants.util.frozendict import FrozenDict",
        "import triton_mme.target_types_notes",
    ],
)
def test_an_allowed_import_passes(source: str) -> None:
    assert forbidden_imports(source, f"{PACKAGE}.model") == []
