"""STF's report: the paper's numbers as data (Huang & Wang, Tables 1–5), which of our runs fills each row,
like-for-like ablation rows, Table 1's params/MACs column, the figures and the files the `tables` stage writes."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from aubench.config import load_params
from aubench.errors import ConfigError, DataError
from aubench.eval.efficiency_report import model_cost
from aubench.report.papers.stf import (
    fill_tables,
    k_curve_rows,
    stf_table1,
    stf_table2,
    stf_table4,
    stf_tables,
    write_figures,
    write_tables,
)
from aubench.report.tables import MISSING, Value, load_paper, render_csv, render_markdown, scored_runs
from aubench.train.runs import run_specs
from tests.report.helpers import (
    BP4D_AUS,
    DEFAULT_ABLATION,
    SYNTH,
    VARIANTS,
    full_metrics,
    make_params,
    write_results,
)

PAPER = load_paper("stf")
PARAMS_FILE = Path(__file__).resolve().parents[3] / "params.yaml"
PNG = b"\x89PNG\r\n\x1a\n"
EVERY_VARIANT = tuple(VARIANTS)

# Our Table 1 counts (docs/methods/stf.md, "cost figures"; BP4D N = 12): parameters exact, G MACs per frame.
EXPECTED_TABLE1 = {"A1": (12_755_520, 2.476), "A2": (12_887_134, 2.477), "A3": (12_887_128, 2.478),
                   "A4": (13_084_992, 2.481), "A5": (13_216_600, 2.482), "A6": (13_216_606, 2.482),
                   "A7": (13_018_742, 2.479), "A8": (13_348_214, 2.484)}


def no_cost(run, num_aus, size):
    return 1, 2


def results_for(params: dict, folds: int = 3) -> dict:
    return {name: full_metrics(name, folds=folds) for name in scored_runs(params, "stf")}


def table1_rows(params: dict, results: dict | None = None) -> dict:
    results = results_for(params) if results is None else results
    table = stf_table1(PAPER, fill_tables(PAPER, params)["table1"], results, no_cost)
    return {row.labels[0]: row for row in table.sections[0].rows}, table


# --- the paper's numbers ---------------------------------------------------------------------------------------

DOCUMENTED_MEAN_SLIPS = {("table2_f1", "wo_sff"): (65.36, 65.44), ("table4_f1", "K4"): (66.04, 66.13)}


def test_paper_means_agree_with_their_per_au_values():
    """Every printed mean agrees with its 12 per-AU values to ±0.01, except the paper's two slips: w/o SFF F1
    (Table 2: printed 65.36, recomputes to 65.44) and K = 4 F1 (Table 4: printed 66.04, recomputes to 66.13)."""
    tables = {key: table for key, table in PAPER["tables"].items() if key != "table1"}
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
    Table 1's rows A5–A7 repeat in Table 2 (means equal but for the paper's 65.04 vs 65.05)."""
    paper = PAPER["tables"]
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


# --- which run fills each row: data in stf.yaml, overrides in params.yaml ---------------------------------------

def test_each_row_names_a_run_whose_switches_match_the_papers_row():
    """Table 1's switches are the paper's modules of that row; every table's rows/columns have an entry."""
    ours = PAPER["ours"]
    for row_id, entry in PAPER["tables"]["table1"]["rows"].items():
        switches = ours["table1"][row_id]["switches"]
        assert {module: switches[f"use_{module}"] for module in ("trm", "srm", "sff")} == \
            {module: entry[module] for module in ("trm", "srm", "sff")}, row_id
    for table in ("table2", "table3", "table4"):
        assert list(ours[table]) == list(PAPER["tables"][f"{table}_f1"].columns)
    assert [ours["table4"][f"K{k}"]["switches"]["srm_top_k"] for k in range(1, 6)] == [1, 2, 3, 4, 5]


def test_every_rows_own_run_is_defined_once_in_params_yaml():
    """A row's own run is an entry of the shipped params' `variants.stf` (or a run of `runs`); in the shipped default
    the main run trains for the ablation's epochs, so read on fold 1 it is the full model beside the variants:
    every ablation row is like for like (the same folds, epochs and profile)."""
    params = load_params(PARAMS_FILE)
    specs = run_specs(params)
    for table, entries in PAPER["ours"].items():
        for key, entry in entries.items():
            own = entry["run"] if isinstance(entry["run"], str) else entry["run"][0]
            assert own.removeprefix("stf_") in params["variants"]["stf"] or own in specs, (table, key, own)
    ours = fill_tables(PAPER, params)  # every listed run resolves and fits its rows
    assert ours["table1"]["A8"].name == ours["table2"]["full"].name == ours["table4"]["K3"].name == "stf (fold 1)"
    schedules = {filled.protocol.schedule for filled in ours["table1"].values() if filled.run}
    assert schedules == {((1,), 3, "cpu")}
    assert ours["table1"]["A5"].protocol.group == "ablation" and ours["table1"]["A8"].folds == (1,)


# --- Table 1 ----------------------------------------------------------------------------------------------------

def test_table1_counts_each_runs_model_with_the_efficiency_stage():
    """Our params (exact) and MACs per 256×256 frame (±0.0005 G, BN included) for A1–A8, N = 12, as
    `aubench.eval.efficiency_report.model_cost` counts them."""
    params = make_params(ablation=EVERY_VARIANT)
    ours = fill_tables(PAPER, params)
    table = stf_table1(PAPER, ours["table1"], results_for(params))
    rows = {row.labels[0]: row for row in table.sections[0].rows}
    assert list(rows) == list(EXPECTED_TABLE1)
    for row_id, (params_count, flops) in EXPECTED_TABLE1.items():
        ours_params, ours_macs = rows[row_id].cells["params"][1], rows[row_id].cells["flops"][1]
        assert ours_params.mean == params_count, row_id
        assert abs(ours_macs.mean / 1e9 - flops) <= 0.0005, row_id
    full = ours["table1"]["A8"].run
    assert (rows["A8"].cells["params"][1].mean, rows["A8"].cells["flops"][1].mean) == \
        model_cost(full.method, full.method_config, 12, 256)
    markdown = render_markdown(table)
    assert "| A1 | baseline | none | stf_A1_baseline | ablation: fold 1, 3 epochs, profile cpu | 63.56 ± 0.55 |" \
        in markdown
    assert "11.69M | 12,755,520 | 2.382G | 2.476G |" in markdown
    assert "13.31M | 13,348,214 | 2.495G | 2.484G |" in markdown
    assert "bare torchvision ResNet-18" in markdown and "not additive" in markdown


def test_table1_full_row_is_the_full_model_trained_beside_the_variants():
    """The default: variants on fold 1 for 3 epochs, the main run on 3 folds for 6. Row A8 is stf_A8_full."""
    rows, table = table1_rows(make_params())
    assert rows["A8"].labels[3:] == ("stf_A8_full", "ablation: fold 1, 3 epochs, profile cpu")
    assert rows["A8"].cells["f1"][1].mean == pytest.approx(100 * full_metrics("stf_A8_full")["mean_f1"])
    notes = " ".join(table.notes)
    assert "like for like — every run trained under one protocol, fold 1, 3 epochs, profile cpu" in notes
    assert "NOT like for like" not in notes
    header = next(csv.reader(io.StringIO(render_csv(table))))
    assert header[:5] == ["id", "configuration", "modules", "our run", "protocol"]


def test_without_the_full_ablation_run_the_main_run_fills_row_a8_and_the_notes_say_it_differs():
    params = make_params(ablation=[name for name in DEFAULT_ABLATION if name != "stf_A8_full"])
    rows, table = table1_rows(params)
    assert rows["A8"].labels[3:] == ("stf", "from_upstream: folds 1, 2, 3, 6 epochs, profile cpu")
    assert "NOT like for like" in " ".join(table.notes)
    # the paper protocol: variants on the main run's folds and epochs — the main run is like for like
    same = make_params(ablation=["stf_A5_wo_trm"], ablate_folds=[1, 2, 3], ablate_epochs=None)
    rows, table = table1_rows(same)
    assert rows["A8"].labels[3] == "stf" and "NOT like for like" not in " ".join(table.notes)


def test_a_row_whose_run_is_not_in_params_runs_prints_a_dash():
    params = make_params()
    results = results_for(params)
    results["stf_A5_wo_trm"] = None  # configured but without results
    rows, _ = table1_rows(params, results)
    assert rows["A2"].labels[3:] == ("stf_A2_trm_only (not run)", MISSING)
    assert [rows["A2"].cells[key][1] for key in ("f1", "accuracy", "params", "flops")] == [None] * 4
    assert rows["A5"].cells["f1"][1] is None and rows["A5"].cells["params"][1] == Value(1, unit="count")
    assert "| A2 | TRM only | TRM | stf_A2_trm_only (not run) | – | 64.20 ± 0.95 | – |" in \
        render_markdown(stf_table1(PAPER, fill_tables(PAPER, params)["table1"], results, no_cost))


def test_a_main_run_with_another_top_k_is_marked_where_it_fills_a_full_model_row():
    params = make_params(ablation=["stf_A1_baseline"], k=4)
    rows, _ = table1_rows(params)
    assert "[ours: stf has K = 4, paper K = 3]" in rows["A8"].labels[1]
    rows, _ = table1_rows(make_params(k=4))  # stf_A8_full keeps the paper's K = 3
    assert rows["A8"].labels[1] == "full STF (TRM+SRM+SFF)"


def test_a_variant_that_disagrees_with_its_paper_row_is_a_config_error():
    params = make_params(variants={**VARIANTS, "stf_A5_wo_trm": {"use_srm": False}})
    with pytest.raises(ConfigError, match="variants.stf.A5_wo_trm: run 'stf_A5_wo_trm' fills STF table1 row A5"):
        fill_tables(PAPER, params)


def test_single_fold_runs_show_no_std():
    params = make_params()
    rows, table = table1_rows(params, results_for(params, folds=1))
    assert "±" not in rows["A5"].cells["f1"][1].render()
    assert "every run scored on fold1" in " ".join(table.notes)


# --- Tables 2–4 -------------------------------------------------------------------------------------------------

def test_table2_full_column_is_the_ablation_protocols_full_model_and_each_column_names_its_run():
    params = make_params()
    table = stf_table2(PAPER, fill_tables(PAPER, params)["table2"], results_for(params, folds=1))
    rows = {(cells[0], cells[1]): cells for cells in csv.reader(io.StringIO(render_csv(table)))}
    assert rows[("Our runs", "run")][2:] == ["", "stf_A5_wo_trm", "", "stf_A6_wo_srm", "", "stf_A7_wo_sff",
                                             "", "stf_A8_full"]
    assert set(rows[("Our runs", "protocol")][3::2]) == {"ablation: fold 1, 3 epochs, profile cpu"}
    assert len(table.sections) == 3 and all(len(section.rows) == 13 for section in table.sections[:2])


def test_topk_columns_hold_the_run_trained_with_that_k():
    """K = 3 is the full model beside the variants; the main run (K = params `k`) fills only its own K's
    column, and only when that column's own run is not run; no run of ours → "–"."""
    params = make_params(k=4)
    table = stf_table4(PAPER, fill_tables(PAPER, params)["table4"], results_for(params))
    run_row = {cells[1]: cells for cells in csv.reader(io.StringIO(render_csv(table)))}["run"]
    assert run_row[3::2] == ["stf_K1 (not run)", "stf_K2 (not run)", "stf_A8_full", "stf", "stf_K5 (not run)"]
    mean = table.sections[0].rows[-1]
    assert mean.cells["K1"] == (Value(64.98, 0.71), None)
    params = make_params(ablation=[*DEFAULT_ABLATION, "stf_K4"], k=4)
    ours = fill_tables(PAPER, params)["table4"]
    assert ours["K4"].name == "stf_K4" and ours["K3"].name == "stf_A8_full"
    assert [column.label for column in stf_table4(PAPER, ours, results_for(params)).columns] == \
        ["K = 1", "K = 2", "K = 3 (base)", "K = 4", "K = 5"]


def test_tables_are_keyed_by_their_file_stems():
    params = make_params(ablation=EVERY_VARIANT)
    tables = stf_tables(PAPER, fill_tables(PAPER, params), results_for(params), no_cost)
    assert list(tables) == ["stf_table1", "stf_table2", "stf_table3", "stf_table4"]
    assert [len(table.sections) for table in tables.values()] == [1, 3, 3, 3]


# --- figures ----------------------------------------------------------------------------------------------------

def test_k_curve_has_k_1_to_5_with_ours_beside_the_papers_means():
    params = make_params(ablation=["stf_K1", "stf_K2", "stf_A8_full", "stf_K5"], k=4)
    results = results_for(params)
    rows = k_curve_rows(PAPER["tables"]["table4_f1"], fill_tables(PAPER, params)["table4"], results)
    assert [row["k"] for row in rows] == [1, 2, 3, 4, 5]
    assert [row["paper_f1_bp4d"] for row in rows] == [64.98, 65.72, 66.00, 66.04, 66.03]
    assert [row["ours_run"] for row in rows] == ["stf_K1", "stf_K2", "stf_A8_full", "stf", "stf_K5"]
    assert rows[3]["ours_f1"] == round(100 * results["stf"]["mean_f1"], 4)
    assert rows[3]["ours_protocol"] == "from_upstream: folds 1, 2, 3, 6 epochs, profile cpu"
    assert rows[0]["paper_f1_std_bp4d"] == 0.71
    none = k_curve_rows(PAPER["tables"]["table4_f1"], fill_tables(PAPER, make_params(k=3))["table4"], results)
    assert [row["ours_f1"] is None for row in none] == [True, True, False, True, True]


def test_figures_are_png_files_and_the_k_curve_json(tmp_path):
    params = make_params()
    runs = scored_runs(params, "stf")
    written = write_figures(PAPER, params, runs, fill_tables(PAPER, params)["table4"], results_for(params),
                            tmp_path / "plots")
    assert sorted(path.name for path in written) == ["stf_k_curve.json", "stf_k_curve.png", "stf_per_au_f1.png"]
    for name in ("stf_per_au_f1.png", "stf_k_curve.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000
    rows = json.loads((tmp_path / "plots/stf_k_curve.json").read_text())
    assert [row["ours_run"] for row in rows] == [None, None, "stf_A8_full", None, None]


# --- what the `tables` stage writes ---------------------------------------------------------------------------

def test_write_tables_writes_the_stage_outputs_with_a_datasets_header(tmp_path):
    params = make_params()
    write_results(tmp_path / "metrics", main=["stf"], ablation=DEFAULT_ABLATION)
    written = write_tables(params, tmp_path / "metrics", tmp_path / "metrics/tables", tmp_path / "plots")
    assert sorted(path.name for path in written) == sorted(
        [f"stf_table{n}.{ext}" for n in range(1, 5) for ext in ("md", "csv")]
        + ["stf_per_au_f1.png", "stf_k_curve.png", "stf_k_curve.json"])
    for number in range(1, 5):
        markdown = (tmp_path / f"metrics/tables/stf_table{number}.md").read_text()
        first = markdown.splitlines()[0]
        assert first.startswith("Datasets: paper side = BP4D (STF paper, Table") and f"ours side = {SYNTH}" in first
        assert "ours (BP4D" not in markdown and "spec" not in markdown
    table1 = (tmp_path / "metrics/tables/stf_table1.md").read_text()
    assert "| A8 | full STF (TRM+SRM+SFF) | TRM+SRM+SFF | stf_A8_full | ablation: fold 1, 3 epochs, profile cpu |" \
        in table1 and "13,348,214" in table1


def test_write_tables_fails_naming_the_missing_metrics_and_their_stage(tmp_path):
    params = make_params()
    write_results(tmp_path / "metrics", main=["stf"], ablation=DEFAULT_ABLATION[:-1])
    with pytest.raises(DataError, match=r"ablations/stf/stf_A8_full\.json: metrics are missing.*trains stf\b"):
        write_tables(params, tmp_path / "metrics", tmp_path / "tables", tmp_path / "plots")
    write_results(tmp_path / "metrics", ablation=["stf_A8_full"])
    (tmp_path / "metrics/stf.json").unlink()
    with pytest.raises(DataError, match=r"metrics/stf\.json: .*trains stf\b"):
        write_tables(params, tmp_path / "metrics", tmp_path / "tables", tmp_path / "plots")
