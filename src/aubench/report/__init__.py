"""Reports: each paper's tables and figures (the paper's numbers beside ours) and every method beside the
reference predictors.

`tables` is the generic table kit (values, comparison tables, Markdown and CSV, which of our runs fills a
paper's row and under which protocol), `figures` the generic plots, `references` the methods-beside-references
table, and `papers/<method>.py` with `papers/<method>.yaml` one paper's tables, figures and published numbers.
`write_reports` is what the `tables` stage runs.
"""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

PAPERS = "aubench.report.papers"


def paper_module(method: str) -> ModuleType | None:
    """`aubench.report.papers.<method>`, the module with that method's paper tables, or None if it has none."""
    name = f"{PAPERS}.{method}"
    return importlib.import_module(name) if importlib.util.find_spec(name) is not None else None


def write_reports(params: Mapping[str, Any], metrics_dir: Path = Path("metrics"),
                  tables_dir: Path = Path("metrics/tables"), plots_dir: Path = Path("plots/ablations")) -> list[Path]:
    """For each entry of params `methods` that has a paper module, its `write_tables(params, metrics_dir,
    tables_dir, plots_dir)`; then tables_dir/references.{md,csv}: every method of `methods` beside the
    reference predictors of metrics/difficulty.json. Returns the written paths."""
    from aubench.report.references import write_reference_table
    from aubench.report.tables import read_run_metrics

    metrics_dir, tables_dir, plots_dir = Path(metrics_dir), Path(tables_dir), Path(plots_dir)
    methods = list(params.get("methods") or ())
    written: list[Path] = []
    for method in methods:
        module = paper_module(method)
        if module is not None:
            written += module.write_tables(params, metrics_dir, tables_dir, plots_dir)
    scored = {name: read_run_metrics(metrics_dir / f"{name}.json", f"the stage that trains {name}")
              for name in methods}
    difficulty = read_run_metrics(metrics_dir / "difficulty.json", "the `difficulty` stage")
    return written + list(write_reference_table(scored, difficulty, tables_dir / "references"))
