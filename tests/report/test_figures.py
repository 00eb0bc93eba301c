"""Ablation figures: PNG files are written, and the K-curve data (a DVC plot, x: k) has K = 1…5 with ours beside
the paper's BP4D means (spec stf.md §5.3, Tables 4/5)."""
from __future__ import annotations

import json

from aubench.report.figures import per_au_f1_figure, stf_k_curve_rows, write_stf_figures
from aubench.report.tables import load_paper, stf_runs

SYNTH = "SynthAU (BP4D layout, synthetic)"
AUS = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
PNG = b"\x89PNG\r\n\x1a\n"
PARAMS = {"k": 3, "ablations": {
    "stf_A1_baseline": {"method": "stf", "overrides": {"use_trm": False, "use_srm": False, "use_sff": False}},
    "stf_K1": {"method": "stf", "overrides": {"srm_top_k": 1}},
    "stf_K2": {"method": "stf", "overrides": {"srm_top_k": 2}},
    "stf_K4": {"method": "stf", "overrides": {"srm_top_k": 4}},
    "stf_K5": {"method": "stf", "overrides": {"srm_top_k": 5}},
}}


def metrics(mean_f1: float, std_f1: float = 0.01, undefined_au: str | None = None) -> dict:
    per_au = {f"AU{au}": (None if f"AU{au}" == undefined_au else mean_f1) for au in AUS}
    folds = {f"fold{n}": {"mean_f1": mean_f1, "mean_accuracy": 0.8, "f1": per_au,
                          "accuracy": {name: 0.8 for name in per_au}} for n in (1, 2, 3)}
    return {"method": "stf", "dataset": SYNTH, "aus": AUS, "mean_f1": mean_f1, "std_f1": std_f1,
            "mean_accuracy": 0.8, "std_accuracy": 0.0, "per_au_f1": per_au, "folds": folds}


def results_for(runs) -> dict:
    levels = {"stf": 0.6, "stf_A1_baseline": 0.5, "stf_K1": 0.55, "stf_K2": 0.57, "stf_K4": 0.59, "stf_K5": 0.58}
    return {name: metrics(levels[name], undefined_au="AU23" if name == "stf_K1" else None) for name in runs}


def test_figures_are_png_files_and_the_k_curve_json_has_k_1_to_5(tmp_path):
    runs = stf_runs(PARAMS)
    written = write_stf_figures(load_paper("stf"), runs, results_for(runs), tmp_path / "plots")
    assert sorted(path.name for path in written) == ["stf_k_curve.json", "stf_k_curve.png", "stf_per_au_f1.png"]
    for name in ("stf_per_au_f1.png", "stf_k_curve.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000
    rows = json.loads((tmp_path / "plots/stf_k_curve.json").read_text())
    assert [row["k"] for row in rows] == [1, 2, 3, 4, 5]
    assert [row["paper_f1_bp4d"] for row in rows] == [64.98, 65.72, 66.00, 66.04, 66.03]
    assert [row["ours_f1"] for row in rows] == [55.0, 57.0, 60.0, 59.0, 58.0]
    assert [row["ours_run"] for row in rows] == ["stf_K1", "stf_K2", "stf", "stf_K4", "stf_K5"]
    assert rows[0]["ours_f1_std"] == 1.0 and rows[0]["paper_f1_std_bp4d"] == 0.71


def test_k_curve_leaves_ours_null_where_no_run_has_that_k():
    """With params k = 4, no run of ours has K = 3: the paper's point stays, ours is null (never invented)."""
    runs = stf_runs({**PARAMS, "k": 4})
    rows = stf_k_curve_rows(load_paper("stf")["tables"]["table4_f1"], runs, results_for(runs))
    by_k = {row["k"]: row for row in rows}
    assert by_k[3]["ours_f1"] is None and by_k[3]["ours_run"] is None and by_k[3]["paper_f1_bp4d"] == 66.0
    assert by_k[4]["ours_run"] == "stf"  # the main run is preferred at its own K


def test_per_au_bars_skip_missing_runs_and_undefined_values(tmp_path):
    path = per_au_f1_figure({"a": metrics(0.5, undefined_au="AU1"), "b": None}, tmp_path / "bars.png", "t")
    assert path.read_bytes().startswith(PNG)
