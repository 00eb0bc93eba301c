"""Report figures (matplotlib, Agg canvas; no pyplot state): per-AU F1 bars of several runs, and a curve of
ours beside a paper's series over one ablated setting. A paper's own figures live in `papers/<method>.py`.

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

from aubench.report.tables import ours_dataset, per_au_values


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def rounded(number: float | None) -> float | None:
    """A plot value: rounded to 4 decimals, None where missing or not finite."""
    return None if number is None or not np.isfinite(number) else round(float(number), 4)


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


def curve_figure(rows: Sequence[Mapping[str, Any]], path: Path, x: str, x_label: str, title: str,
                 ours_label: str, paper_label: str, paper_key: str) -> Path:
    """Mean F1 ± std over the setting `x` of the rows: ours (`ours_f1`, `ours_f1_std`) and, as a second
    series, the paper's (`paper_key`, its std under the same name with `paper_f1` → `paper_f1_std`)."""
    figure = Figure(figsize=(6.5, 4.5))
    axes = figure.add_subplot()
    xs = np.array([row[x] for row in rows], dtype=float)

    def series(key: str) -> np.ndarray:
        return np.array([np.nan if row.get(key) is None else row[key] for row in rows], dtype=float)

    std_key = paper_key.replace("paper_f1", "paper_f1_std")
    paper_style = {"color": "tab:gray", "marker": "s", "linestyle": "--"}
    for key, std, label, style in ((paper_key, std_key, paper_label, paper_style),
                                   ("ours_f1", "ours_f1_std", ours_label, {"color": "tab:blue", "marker": "o"})):
        means, stds = series(key), series(std)
        shown = np.isfinite(means)
        if shown.any():
            axes.errorbar(xs[shown], means[shown], yerr=np.nan_to_num(stds[shown]), capsize=3, label=label, **style)
    axes.set_xticks(xs)
    axes.set_xlabel(x_label)
    axes.set_ylabel("mean F1 over AUs (%), ± std over folds")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    return _save(figure, path)
