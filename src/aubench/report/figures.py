"""Ablation figures (matplotlib, Agg canvas; no pyplot state): per-AU F1 of every run, and STF's Top-K curve.

Our side is always labelled with the dataset named in our metrics JSON; the paper's series with the paper's
dataset and table. Missing values are left out of a plot (no bar, a gap in the curve), never drawn as 0.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aubench.io import write_json
from aubench.report.tables import (
    STF_METHOD,
    PaperTable,
    ours_dataset,
    per_au_values,
    stf_topk_runs,
    summary_value,
)
from aubench.train.runs import Run


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def per_au_f1_figure(results: Mapping[str, Mapping[str, Any] | None], path: Path, title: str) -> Path:
    """Grouped bars: per AU, our F1 (%, mean over folds) of every run in `results` (runs without results skipped)."""
    present = {name: metrics for name, metrics in results.items() if metrics is not None}
    values = {name: per_au_values(metrics, "f1") for name, metrics in present.items()}
    aus: list[str] = []
    for per_au in values.values():
        aus += [au for au in per_au if au not in aus]
    figure = Figure(figsize=(max(8.0, 1.1 * len(aus) + 0.25 * len(present)), 5.0))
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(present))
    positions = np.arange(len(aus))
    palette = colormaps["tab20"]
    for index, (name, per_au) in enumerate(values.items()):
        heights = [per_au[au].mean if au in per_au and per_au[au].defined else np.nan for au in aus]
        axes.bar(positions - 0.4 + (index + 0.5) * width, heights, width, label=name, color=palette(index % 20))
    axes.set_xticks(positions, aus)
    axes.set_ylabel("F1 (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"{title}\nours: {ours_dataset(present.values())}")
    axes.grid(axis="y", alpha=0.3)
    if present:
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", title="run")
    return _save(figure, path)


def stf_k_curve_rows(paper: PaperTable, runs: Mapping[str, Run],
                     results: Mapping[str, Mapping[str, Any] | None]) -> list[dict[str, Any]]:
    """Rows {k, ours_f1, ours_f1_std, ours_run, paper_f1_<dataset>, paper_f1_std_<dataset>} in %, K ascending.

    Ours at K is the run trained with that SRM K (the main run when it has that K, else a `stf_K*` variant);
    null where there is no run or no value. `paper` is the paper's Top-K F1 table (columns K1…K5).
    """
    paper_key = f"paper_f1_{paper.dataset.lower()}"
    paper_columns = {int(key.removeprefix("K")): key for key in paper.columns}
    by_k = stf_topk_runs(runs)
    rows = []
    for k in sorted(set(paper_columns) | set(by_k)):
        name = next((run for run in by_k.get(k, []) if results.get(run) is not None), None)
        ours = summary_value(results.get(name), "f1") if name else None
        theirs = paper.value(paper_columns.get(k), "mean")
        rows.append({"k": k,
                     "ours_f1": _rounded(ours.mean if ours else None),
                     "ours_f1_std": _rounded(ours.std if ours else None),
                     "ours_run": name,
                     paper_key: _rounded(theirs.mean if theirs else None),
                     paper_key.replace("paper_f1", "paper_f1_std"): _rounded(theirs.std if theirs else None)})
    return rows


def _rounded(number: float | None) -> float | None:
    return None if number is None or not np.isfinite(number) else round(float(number), 4)


def k_curve_figure(rows: Sequence[Mapping[str, Any]], path: Path, ours_label: str, paper_label: str,
                   paper_key: str) -> Path:
    """Mean F1 ± std over K: ours and, as a second series, the paper's (`paper_key` in the rows)."""
    figure = Figure(figsize=(6.5, 4.5))
    axes = figure.add_subplot()
    ks = np.array([row["k"] for row in rows], dtype=float)

    def series(key: str) -> np.ndarray:
        return np.array([np.nan if row.get(key) is None else row[key] for row in rows], dtype=float)

    std_key = paper_key.replace("paper_f1", "paper_f1_std")
    paper_style = {"color": "tab:gray", "marker": "s", "linestyle": "--"}
    for key, std, label, style in ((paper_key, std_key, paper_label, paper_style),
                                   ("ours_f1", "ours_f1_std", ours_label, {"color": "tab:blue", "marker": "o"})):
        means, stds = series(key), series(std)
        shown = np.isfinite(means)
        if shown.any():
            axes.errorbar(ks[shown], means[shown], yerr=np.nan_to_num(stds[shown]), capsize=3, label=label, **style)
    axes.set_xticks(ks)
    axes.set_xlabel("SRM Top-K (K)")
    axes.set_ylabel("mean F1 over AUs (%), ± std over folds")
    axes.set_title("STF: SRM Top-K ablation")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    return _save(figure, path)


def write_stf_figures(paper: Mapping[str, Any], runs: Mapping[str, Run],
                      results: Mapping[str, Mapping[str, Any] | None], plots_dir: Path) -> list[Path]:
    """plots_dir/stf_per_au_f1.png, stf_k_curve.png and stf_k_curve.json (the DVC plot data, x: k)."""
    plots_dir = Path(plots_dir)
    ordered = sorted(runs, key=lambda name: (name != STF_METHOD, name))
    labels = {name: name for name in ordered}
    if STF_METHOD in runs:
        labels[STF_METHOD] = f"{STF_METHOD} (main run, K = {runs[STF_METHOD].method_config.srm_top_k})"
    written = [per_au_f1_figure({labels[name]: results.get(name) for name in ordered},
                                plots_dir / "stf_per_au_f1.png", "STF variants: per-AU F1 (ours)")]
    table = paper["tables"]["table4_f1"]
    rows = stf_k_curve_rows(table, runs, results)
    used = [row["ours_run"] for row in rows if row["ours_run"]]
    paper_key = f"paper_f1_{table.dataset.lower()}"
    written.append(k_curve_figure(rows, plots_dir / "stf_k_curve.png",
                                  f"ours ({ours_dataset(results.get(name) for name in used)})",
                                  f"paper ({table.dataset}, {table.source})", paper_key))
    write_json(plots_dir / "stf_k_curve.json", rows)
    written.append(plots_dir / "stf_k_curve.json")
    return written
