"""Report figures: per-AU bars skip what is missing, and a curve of ours beside a paper's series leaves gaps
where a value is missing (never drawn as 0)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from aubench.report import figures
from aubench.report.figures import curve_figure, per_au_f1_figure, rounded
from tests.report.helpers import make_metrics

PNG = b"\x89PNG\r\n\x1a\n"


def test_per_au_bars_skip_missing_runs_and_undefined_values(tmp_path):
    path = per_au_f1_figure({"a": make_metrics("a", {"AU1": [None, None], "AU2": [0.5, 0.7]}), "b": None},
                            tmp_path / "bars.png", "t")
    assert path.read_bytes().startswith(PNG)


def test_curve_draws_only_the_points_that_have_values(tmp_path, monkeypatch):
    drawn = []

    def save(figure: Figure, path):
        for container in figure.axes[0].containers:  # one ErrorbarContainer per series
            line = container.lines[0]
            drawn.append((container.get_label(), list(line.get_xdata()), list(line.get_ydata())))
        return path

    monkeypatch.setattr(figures, "_save", save)
    rows = [{"k": 1, "ours_f1": 50.0, "ours_f1_std": 1.0, "paper_f1_bp4d": 60.0, "paper_f1_std_bp4d": 0.5},
            {"k": 2, "ours_f1": None, "ours_f1_std": None, "paper_f1_bp4d": 61.0, "paper_f1_std_bp4d": 0.5},
            {"k": 3, "ours_f1": 52.0, "ours_f1_std": None, "paper_f1_bp4d": None, "paper_f1_std_bp4d": None}]
    curve_figure(rows, tmp_path / "curve.png", "k", "K", "title", "ours", "paper", "paper_f1_bp4d")
    series = {label: (xs, ys) for label, xs, ys in drawn}
    assert series == {"paper": ([1.0, 2.0], [60.0, 61.0]), "ours": ([1.0, 3.0], [50.0, 52.0])}


def test_curve_writes_a_png(tmp_path):
    rows = [{"k": k, "ours_f1": 50.0 + k, "ours_f1_std": 1.0, "paper_f1_x": 60.0, "paper_f1_std_x": 0.5}
            for k in (1, 2)]
    path = curve_figure(rows, tmp_path / "curve.png", "k", "K", "title", "ours", "paper", "paper_f1_x")
    assert path.read_bytes().startswith(PNG)


def test_rounded_leaves_missing_values_null():
    assert rounded(None) is None and rounded(float("nan")) is None and rounded(np.float64(1.234567)) == 1.2346
