"""Comparison tables (pipeline.md §2 `tables`): rendering, the STF paper numbers as data (spec stf.md §5.2–5.3),
Table 1's parameter column (§5.2 "exp. params") and the stage's report on hand-made metrics."""
from __future__ import annotations

import csv
import io
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from aubench.errors import ConfigError, DataError
from aubench.report import write_stf_report
from aubench.report.tables import (
    MISSING,
    RunColumn,
    Value,
    from_fractions,
    load_paper,
    per_au_table,
    render_csv,
    render_markdown,
    stf_runs,
    stf_scheduled_epochs,
    stf_table1,
    stf_table4,
    stf_tables,
)

SYNTH = "SynthAU (BP4D layout, synthetic)"
BP4D_AUS = [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]

ABLATIONS = {
    "stf_A1_baseline": {"method": "stf", "overrides": {"use_trm": False, "use_srm": False, "use_sff": False}},
    "stf_A2_trm_only": {"method": "stf", "overrides": {"use_srm": False, "use_sff": False}},
    "stf_A3_srm_only": {"method": "stf", "overrides": {"use_trm": False, "use_sff": False}},
    "stf_A4_sff_only": {"method": "stf", "overrides": {"use_trm": False, "use_srm": False}},
    "stf_A5_wo_trm": {"method": "stf", "overrides": {"use_trm": False}},
    "stf_A6_wo_srm": {"method": "stf", "overrides": {"use_srm": False}},
    "stf_A7_wo_sff": {"method": "stf", "overrides": {"use_sff": False}},
    "stf_K1": {"method": "stf", "overrides": {"srm_top_k": 1}},
    "stf_K2": {"method": "stf", "overrides": {"srm_top_k": 2}},
    "stf_K4": {"method": "stf", "overrides": {"srm_top_k": 4}},
    "stf_K5": {"method": "stf", "overrides": {"srm_top_k": 5}},
    "stf_TF_transformer_trm": {"method": "stf", "overrides": {"trm_variant": "transformer"}},
    "baseline_other": {"method": "baseline", "overrides": {}},  # another method's variant: not an STF run
}
PARAMS = {"k": 3, "stf": {"clip_length": 16}, "ablations": ABLATIONS}

# Spec stf.md §5.2, column "exp. params" (recommended implementation, BP4D N = 12) and "exp. FLOPs" (G MACs/frame).
EXPECTED_TABLE1 = {"A1": (12_755_520, 2.476), "A2": (12_887_134, 2.477), "A3": (12_887_128, 2.478),
                   "A4": (13_084_992, 2.481), "A5": (13_216_600, 2.482), "A6": (13_216_606, 2.482),
                   "A7": (13_018_742, 2.479), "A8": (13_348_214, 2.484)}


def make_metrics(run: str, f1: dict[str, list[float | None]], accuracy: float = 0.8,
                 dataset: str = SYNTH) -> dict:
    """A metrics JSON as aubench.eval.report writes it, from per-AU F1 fractions per fold (3 folds)."""
    aus = [int(name.removeprefix("AU")) for name in f1]
    folds = {}
    for index in range(3):
        fold_f1 = {name: values[index] for name, values in f1.items()}
        defined = [value for value in fold_f1.values() if value is not None]
        folds[f"fold{index + 1}"] = {
            "mean_f1": round(float(np.mean(defined)), 4), "mean_accuracy": accuracy,
            "f1": fold_f1, "accuracy": {name: accuracy for name in f1},
            "positives": {name: 10 for name in f1}, "frames": {name: 100 for name in f1}}
    means = [fold["mean_f1"] for fold in folds.values()]

    def au_mean(values):
        defined = [value for value in values if value is not None]
        return round(float(np.mean(defined)), 4) if defined else None

    return {"method": run, "dataset": dataset, "threshold": 0.5, "aus": aus,
            "mean_f1": round(float(np.mean(means)), 4), "std_f1": round(float(np.std(means)), 4),
            "mean_accuracy": accuracy, "std_accuracy": 0.0,
            "per_au_f1": {name: au_mean(values) for name, values in f1.items()}, "folds": folds}


def full_metrics(run: str, level: float = 0.5, dataset: str = SYNTH) -> dict:
    draws = np.random.default_rng(zlib.crc32(run.encode()))
    return make_metrics(run, {f"AU{au}": [round(level + 0.1 * draws.random(), 4) for _ in range(3)]
                              for au in BP4D_AUS}, dataset=dataset)


# --- values and rendering ---------------------------------------------------------------------------------

def test_values_print_as_percentages_with_std_and_missing_as_a_dash():
    assert from_fractions(0.6504, 0.0088).render() == "65.04 ± 0.88"
    assert from_fractions(0.65).render() == "65.00"
    assert from_fractions(None, 0.01).render() == MISSING
    assert Value(float("nan")).render() == MISSING
    assert Value(12_755_520, unit="count").render() == "12,755,520"
    assert Value(13.31e6, unit="millions").render() == "13.31M"
    assert Value(2.4838e9, unit="giga").render() == "2.484G"


def test_per_au_table_renders_both_sides_with_their_datasets():
    """Hand-made metrics: % with ± std over folds, undefined F1 and a missing run → "–", datasets named."""
    paper = load_paper("stf")["tables"]
    ours = make_metrics("stf", {"AU1": [0.5, 0.6, 0.7], "AU2": [None, None, None], "AU4": [0.4, None, 0.6]})
    columns = [RunColumn("wo_trm", "w/o TRM", "wo_trm", "stf_A5_wo_trm"), RunColumn("full", "full", "full", "stf")]
    table = per_au_table("t", {"f1": paper["table2_f1"]}, columns, {"stf": ours, "stf_A5_wo_trm": None}, "here")
    markdown, comma = render_markdown(table), render_csv(table)
    header = markdown.splitlines()[0]
    assert "paper side = BP4D" in header and f"ours side = {SYNTH}" in header
    rows = {cells[1]: cells for cells in csv.reader(io.StringIO(comma))}
    assert rows["AU"][:2] == ["section", "AU"]
    assert rows["AU"][2:] == ["w/o TRM: paper (BP4D)", f"w/o TRM: ours ({SYNTH})",
                                   "full: paper (BP4D)", f"full: ours ({SYNTH})"]
    # AU1: mean 60.00, population std over folds 8.16; the paper's cells as printed
    assert rows["AU1"][2:] == ["56.04 ± 0.92", MISSING, "52.65 ± 0.80", "60.00 ± 8.16"]
    assert rows["AU2"][5] == MISSING  # undefined in every fold
    assert rows["AU4"][5] == "50.00 ± 10.00"  # undefined folds left out, never counted as 0
    # our mean row: mean ± std over folds of the fold means 0.45, 0.60, 0.65 (undefined AUs left out per fold)
    assert rows["Mean"][2:] == ["65.05 ± 0.26", MISSING, "66.00 ± 0.64", "56.67 ± 8.50"]
    assert "| AU1 | 56.04 ± 0.92 | – | 52.65 ± 0.80 | 60.00 ± 8.16 |" in markdown
    # our numbers are never labelled BP4D: every "ours" header names the metrics' dataset
    for text in (markdown, comma):
        assert "ours (BP4D" not in text and text.count(f"ours ({SYNTH})") >= 2
        assert "paper (SynthAU" not in text


def test_ours_label_is_the_metrics_dataset_even_when_it_is_bp4d():
    paper = load_paper("stf")["tables"]
    table = per_au_table("t", {"f1": paper["table3_f1"]}, [RunColumn("gnn", "GNN", "gnn", "stf")],
                         {"stf": full_metrics("stf", dataset="BP4D")}, "here")
    assert table.ours_side == "ours (BP4D)"
    empty = per_au_table("t", {"f1": paper["table3_f1"]}, [RunColumn("gnn", "GNN", "gnn", None)], {}, "here")
    assert empty.ours_side == "ours (no results)"
    assert all(row.cells["gnn"][1] is None for row in empty.sections[0].rows)


# --- the paper's numbers (spec stf.md §5.2–5.3) -----------------------------------------------------------

DOCUMENTED_MEAN_SLIPS = {("table2_f1", "wo_sff"): (65.36, 65.44), ("table4_f1", "K4"): (66.04, 66.13)}


def test_paper_means_agree_with_their_per_au_values():
    """Spec §5.3 arithmetic notes: every printed mean agrees with its 12 per-AU values to ±0.01, except
    w/o SFF F1 (printed 65.36, recomputes to 65.44) and K = 4 F1 (printed 66.04, recomputes to 66.13)."""
    tables = {key: table for key, table in load_paper("stf")["tables"].items() if key != "table1"}
    assert set(tables) == {"table2_f1", "table2_accuracy", "table3_f1", "table3_accuracy", "table4_f1",
                           "table4_accuracy"}
    slips = {}
    for key, table in tables.items():
        assert table.dataset == "BP4D" and table.source.startswith("STF paper, Table")
        assert table.aus == [f"AU{au}" for au in BP4D_AUS]
        for column in table.columns:
            computed = float(np.mean([table.values[column][au][0] for au in table.aus]))
            printed = table.values[column]["mean"][0]
            if abs(computed - printed) > 0.01 + 1e-9:
                slips[(key, column)] = (printed, round(computed, 2))
    assert slips == DOCUMENTED_MEAN_SLIPS


def test_paper_tables_agree_where_they_repeat_the_same_model():
    """The full model (K = 3, GNN TRM) appears in Tables 1, 2, 3 and 4/5 with identical per-AU values;
    Table 1's rows A5–A7 repeat in Table 2 (means equal but for the documented 65.04 vs 65.05, spec §11.6)."""
    paper = load_paper("stf")["tables"]
    for metric in ("f1", "accuracy"):
        full = paper[f"table2_{metric}"].values["full"]
        assert paper[f"table3_{metric}"].values["gnn"] == full
        assert paper[f"table4_{metric}"].values["K3"] == full
        assert full["mean"][0] == paper["table1"]["rows"]["A8"][metric][0]
    table1 = paper["table1"]["rows"]
    for row, column in (("A5", "wo_trm"), ("A6", "wo_srm"), ("A7", "wo_sff")):
        assert table1[row]["accuracy"][0] == paper["table2_accuracy"].values[column]["mean"][0]
    assert [table1[row]["f1"][0] for row in ("A5", "A6", "A7")] == [65.04, 65.11, 65.36]
    assert [paper["table2_f1"].values[column]["mean"][0] for column in ("wo_trm", "wo_srm", "wo_sff")] == \
        [65.05, 65.11, 65.36]
    assert paper["table1"]["dataset"] == "BP4D" and paper["table1"]["source"] == "STF paper, Table 1"
    assert [(table1[row]["params_m"], table1[row]["flops_g"]) for row in ("A1", "A4", "A8")] == \
        [(11.69, 2.382), (12.75, 2.483), (13.31, 2.495)]


# --- STF Table 1: our params and MACs per frame --------------------------------------------------------------

def test_table1_params_column_equals_the_spec_expected_counts():
    """Spec §5.2 "exp. params" (exact) and "exp. FLOPs" (±0.0005 G, MACs/frame incl. BN) for A1–A8, N = 12."""
    runs = stf_runs(PARAMS)
    results = {name: full_metrics(name) for name in runs}
    table = stf_table1(load_paper("stf"), runs, results)
    rows = {row.labels[0]: row for row in table.sections[0].rows}
    assert list(rows) == list(EXPECTED_TABLE1)
    for row_id, (params, flops) in EXPECTED_TABLE1.items():
        ours_params, ours_macs = rows[row_id].cells["params"][1], rows[row_id].cells["flops"][1]
        assert ours_params.mean == params, row_id
        assert abs(ours_macs.mean / 1e9 - flops) <= 0.0005, row_id
    markdown = render_markdown(table)
    assert "| A1 | baseline | none | stf_A1_baseline | 63.56 ± 0.55 |" in markdown
    assert "11.69M | 12,755,520 | 2.382G | 2.476G |" in markdown
    assert "13.31M | 13,348,214 | 2.495G | 2.484G |" in markdown
    assert "bare torchvision ResNet-18" in markdown and "not additive" in markdown  # the §6.3 note


def test_table1_marks_a_run_that_is_not_run_and_a_top_k_other_than_the_papers():
    """A variant left out of `ablate.variants` is not run: its cells are "–", never invented."""
    params = {**PARAMS, "k": 4, "ablate": {"variants": [name for name in ABLATIONS if name != "stf_A2_trm_only"]}}
    runs = stf_runs(params)
    assert "stf_A2_trm_only" not in runs and "baseline_other" not in runs
    results = {name: full_metrics(name) for name in runs}
    results["stf_A3_srm_only"] = None  # configured but without results
    rows = {row.labels[0]: row for row in stf_table1(load_paper("stf"), runs, results).sections[0].rows}
    assert rows["A2"].labels[3] == "stf_A2_trm_only (not run)"
    assert [rows["A2"].cells[key][1] for key in ("f1", "accuracy", "params", "flops")] == [None] * 4
    assert rows["A3"].cells["f1"][1] is None and rows["A3"].cells["params"][1].mean == 12_887_128
    assert "[ours: stf has K = 4, paper K = 3]" in rows["A8"].labels[1]


def test_ablate_variants_must_name_ablations_entries():
    with pytest.raises(ConfigError, match="ablate.variants: 'stf_K9'"):
        stf_runs({**PARAMS, "ablate": {"variants": ["stf_K1", "stf_K9"]}})


def test_single_fold_runs_show_no_std_and_the_notes_say_how_runs_differ():
    """The default pipeline scores ablations on one fold for fewer epochs: no "± 0.00", and the notes say so."""
    params = {**PARAMS, "train": {"epochs": 3}, "ablate": {"variants": ["stf_A5_wo_trm"], "epochs": 1}}
    runs = stf_runs(params)
    one_fold = full_metrics("stf_A5_wo_trm")
    one_fold["folds"] = {"fold1": one_fold["folds"]["fold1"]}
    one_fold["std_f1"] = 0.0
    results = {"stf": full_metrics("stf"), "stf_A5_wo_trm": one_fold}
    table = stf_table1(load_paper("stf"), runs, results, epochs=stf_scheduled_epochs(params, runs))
    rows = {row.labels[0]: row for row in table.sections[0].rows}
    assert "±" not in rows["A5"].cells["f1"][1].render() and "±" in rows["A8"].cells["f1"][1].render()
    notes = " ".join(table.notes)
    assert "stf_A5_wo_trm: fold1" in notes and "stf: fold1, fold2, fold3" in notes
    assert "epochs scheduled (params) — stf_A5_wo_trm: 1; stf: 3 (the paper's schedule: 240)" in notes
    per_au = per_au_table("t", {"f1": load_paper("stf")["tables"]["table2_f1"]},
                          [RunColumn("wo_trm", "w/o TRM", "wo_trm", "stf_A5_wo_trm")], results, "here")
    assert all("±" not in render_csv(per_au).splitlines()[row].split(",")[-1] for row in range(1, 14))
    assert stf_scheduled_epochs({"ablate": {"variants": []}}, stf_runs({})) == {"stf": 20}  # optim.epochs default


def test_a_variant_that_disagrees_with_its_paper_row_is_a_config_error():
    params = {**PARAMS, "ablations": {**ABLATIONS, "stf_A5_wo_trm": {"method": "stf", "overrides": {"use_srm": False}}}}
    runs = stf_runs(params)
    with pytest.raises(ConfigError, match="ablations.stf_A5_wo_trm: fills STF Table 1 row A5"):
        stf_table1(load_paper("stf"), runs, {})


# --- STF Table 4: Top-K columns follow each run's actual K -------------------------------------------------

def test_topk_table_places_the_main_run_under_its_own_k():
    runs = stf_runs({**PARAMS, "k": 4})
    results = {name: full_metrics(name) for name in runs}
    table = stf_table4(load_paper("stf"), runs, results)
    labels = [column.label for column in table.columns]
    assert labels == ["K = 1", "K = 2", "K = 3", "K = 4 (main run stf, params k = 4)",
                      "K = 4 (stf_K4)", "K = 5"]
    mean_row = table.sections[0].rows[-1]
    k3 = table.columns[2].key
    assert mean_row.cells[k3] == (Value(66.0, 0.64), None)  # the paper's K = 3 has no run of ours here
    assert any("not the paper's K = 3" in note for note in table.notes)
    default = stf_table4(load_paper("stf"), stf_runs(PARAMS), results)
    assert [column.label for column in default.columns][2] == "K = 3 (main run stf, params k = 3)"


# --- the stage's report ------------------------------------------------------------------------------------

def _write_results(root: Path, runs) -> None:
    for name in runs:
        path = root / "metrics" / (f"{name}.json" if name == "stf" else f"ablations/{name}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(full_metrics(name)))


def test_report_writes_every_table_with_a_datasets_header(tmp_path):
    _write_results(tmp_path, stf_runs(PARAMS))
    written = write_stf_report(PARAMS, tmp_path / "metrics", tmp_path / "metrics/tables", tmp_path / "plots")
    names = sorted(path.name for path in written)
    assert names == sorted([f"stf_table{n}.{ext}" for n in range(1, 5) for ext in ("md", "csv")]
                           + ["stf_per_au_f1.png", "stf_k_curve.png", "stf_k_curve.json"])
    for number in range(1, 5):
        markdown = (tmp_path / f"metrics/tables/stf_table{number}.md").read_text()
        first = markdown.splitlines()[0]
        assert first.startswith("Datasets: paper side = BP4D (STF paper, Table") and f"ours side = {SYNTH}" in first
        assert "ours (BP4D" not in markdown
        assert list(csv.reader(io.StringIO((tmp_path / f"metrics/tables/stf_table{number}.csv").read_text())))
    assert "Top-K" in (tmp_path / "metrics/tables/stf_table4.md").read_text()


def test_report_fails_naming_the_missing_metrics_and_their_stage(tmp_path):
    runs = stf_runs(PARAMS)
    _write_results(tmp_path, [name for name in runs if name != "stf_K5"])
    with pytest.raises(DataError, match=r"stf_K5\.json: metrics are missing.*evaluate-ablation@stf_K5"):
        write_stf_report(PARAMS, tmp_path / "metrics", tmp_path / "tables", tmp_path / "plots")
    (tmp_path / "metrics/stf.json").unlink()
    with pytest.raises(DataError, match=r"metrics/stf\.json: .*evaluate@stf"):
        write_stf_report(PARAMS, tmp_path / "metrics", tmp_path / "tables", tmp_path / "plots")


def test_tables_are_keyed_by_their_file_stems():
    runs = stf_runs(PARAMS)
    tables = stf_tables(load_paper("stf"), runs, {name: full_metrics(name) for name in runs})
    assert list(tables) == ["stf_table1", "stf_table2", "stf_table3", "stf_table4"]
    assert [len(table.sections) for table in tables.values()] == [1, 2, 2, 2]
    assert all(len(section.rows) == 13 for table in list(tables.values())[1:] for section in table.sections)
