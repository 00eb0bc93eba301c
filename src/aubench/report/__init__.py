"""Reports: the papers' tables and figures, the paper's numbers beside ours (pipeline.md §2 `tables`).

`tables` holds the general table machinery and the STF tables, `figures` the ablation plots, and
`papers/<method>.yaml` each paper's published numbers as data. `write_stf_report` is what the `tables`
stage runs for STF.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_stf_report(params: Mapping[str, Any], metrics_dir: Path = Path("metrics"),
                     tables_dir: Path = Path("metrics/tables"), plots_dir: Path = Path("plots/ablations"),
                     input_size: int = 256) -> list[Path]:
    """STF Tables 1–4 (Markdown + CSV) and figures from params and the runs' metrics.

    Params read: `k`, `stf`, `ablations`, `ablate.variants`/`ablate.epochs` and `train.epochs`. Every STF run
    the pipeline trains (the main run `stf` and each stf variant that `ablate.variants` lists) must have its
    metrics file (metrics/stf.json, metrics/ablations/<variant>.json); a missing one is a DataError naming the
    file and the stage that writes it. Returns the written paths.
    """
    from aubench.report.figures import write_stf_figures
    from aubench.report.tables import (
        load_paper,
        load_stf_results,
        stf_runs,
        stf_scheduled_epochs,
        stf_tables,
        write_table,
    )

    paper = load_paper("stf")
    runs = stf_runs(params)
    results = load_stf_results(runs, Path(metrics_dir))
    written: list[Path] = []
    epochs = stf_scheduled_epochs(params, runs)
    for stem, table in stf_tables(paper, runs, results, input_size, epochs).items():
        written += write_table(table, Path(tables_dir) / stem)
    return written + write_stf_figures(paper, runs, results, Path(plots_dir))
