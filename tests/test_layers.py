"""Imports only go down the packages (README, "Adding a method"): a lower package never imports a higher one,
so there is no import circle and models never depend on the training engine or the reports."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "aubench"
#: Low to high. Top-level modules (errors, config, io, seeding, parallel, cli) are the foundation.
LAYERS = ("landmarks", "data", "align", "losses", "models", "eval", "train", "report", "predict")


def layer(module: str) -> int:
    """0 for the foundation, else 1 + the index of the module's package in LAYERS."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) + 1 if len(parts) > 1 and parts[1] in LAYERS else 0


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aubench"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("aubench"))
    return found


def test_no_package_imports_a_higher_one():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = "aubench." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        upward += [f"{module} imports {target}" for target in imports(path) if layer(target) > layer(module)]
    assert not upward, "\n".join(upward)


def test_the_check_sees_an_upward_import():
    assert layer("aubench.train.trainer") > layer("aubench.models.registry") > layer("aubench.data.samples")
    assert layer("aubench.errors") == 0 and layer("aubench.predict.pipeline") == len(LAYERS)
