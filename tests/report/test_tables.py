"""The table kit: rendering, per-AU tables, which run fills a paper's row and under which protocol, and model
cost from the efficiency stage's count."""
from __future__ import annotations

import csv
import io

import pytest

from aubench.errors import ConfigError, DataError
from aubench.eval.efficiency_report import model_cost
from aubench.report.tables import (
    MISSING,
    OurRun,
    Protocol,
    RunColumn,
    Value,
    fill_row,
    fold_view,
    from_fractions,
    load_paper,
    load_results,
    per_au_table,
    protocol_notes,
    render_csv,
    render_markdown,
    run_cost,
    run_metrics_path,
    run_protocol,
    scored_runs,
    with_fold_views,
)
from aubench.train.runs import resolve_run
from tests.report.helpers import SYNTH, full_metrics, make_metrics, make_params, write_results

FULL = {"use_trm": True, "use_srm": True, "use_sff": True, "trm_variant": "gnn"}


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
    assert "Our runs" not in markdown  # no column records its provenance
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


def test_per_au_table_names_the_run_and_protocol_of_each_column():
    params = make_params(ablation=["stf_A5_wo_trm"])
    filled = fill_row(params, {"run": "stf_A5_wo_trm"}, "a column")
    columns = [RunColumn.of("wo_trm", "w/o TRM", "wo_trm", filled),
               RunColumn.of("wo_srm", "w/o SRM", "wo_srm", OurRun("stf_A6_wo_srm"))]
    table = per_au_table("t", {"f1": load_paper("stf")["tables"]["table2_f1"]}, columns,
                         {"stf_A5_wo_trm": full_metrics("stf_A5_wo_trm", folds=1)}, "here")
    rows = [cells for cells in csv.reader(io.StringIO(render_csv(table))) if cells[0] == "Our runs"]
    assert rows == [["Our runs", "run", "", "stf_A5_wo_trm", "", "stf_A6_wo_srm (not run)"],
                    ["Our runs", "protocol", "", "ablation: fold 1, 3 epochs, profile cpu", "", MISSING]]
    assert "**Our runs**" in render_markdown(table)


# --- which run fills a row, and its protocol ------------------------------------------------------------------

def test_a_row_takes_its_own_run_and_records_its_protocol():
    filled = fill_row(make_params(), {"run": ["stf_A8_full", "stf"], "switches": FULL}, "row A8")
    assert filled.name == "stf_A8_full" and filled.run.spec.group == "ablation"
    assert filled.protocol == Protocol("ablation", (1,), 3, "cpu")
    assert filled.run_label == "stf_A8_full"
    assert filled.protocol_label == "ablation: fold 1, 3 epochs, profile cpu"


def test_a_shared_run_stands_in_only_when_the_rows_own_run_is_not_run_and_it_fits():
    params = make_params(ablation=["stf_A1_baseline"], k=4)
    entry = {"run": ["stf_K4", "stf"], "switches": {**FULL, "srm_top_k": 4}}
    filled = fill_row(params, entry, "column K4")
    assert filled.name == "stf" and filled.protocol == Protocol("from_upstream", (1, 2, 3), 6, "cpu")
    # the main run has K = 4: it does not fit K = 3, and that is no error (its K follows params `k`)
    missing = fill_row(params, {"run": ["stf_A8_full", "stf"], "switches": {**FULL, "srm_top_k": 3}}, "K3")
    assert missing.run is None and missing.protocol is None
    assert (missing.run_label, missing.protocol_label) == ("stf_A8_full (not run)", MISSING)


def test_a_run_whose_overrides_disagree_with_its_row_is_a_config_error():
    params = make_params(variants={"stf_A5_wo_trm": {"use_srm": False}}, ablation=["stf_A5_wo_trm"])
    with pytest.raises(ConfigError, match=r"variants.stf.A5_wo_trm: run 'stf_A5_wo_trm' fills row A5, which needs "
                                          r"use_trm=False.*resolves to use_trm=True, use_srm=False"):
        fill_row(params, {"run": "stf_A5_wo_trm", "switches": {"use_trm": False, "use_srm": True}}, "row A5")
    with pytest.raises(ConfigError, match="use_grm"):
        fill_row(make_params(), {"run": "stf_A8_full", "switches": {"use_grm": True}}, "row A8")


def test_protocol_follows_the_run_group_and_the_epochs_the_engine_resolves():
    params = make_params(ablate_folds=[1, 2], ablate_epochs=None, train_epochs=None, profile="paper",
                         stf={"optim": {"epochs": 240}})
    ablation, main = resolve_run(params, "stf_A1_baseline"), resolve_run(params, "stf")
    assert run_protocol(params, ablation) == Protocol("ablation", (1, 2), 240, "paper")  # stf.optim.epochs
    assert run_protocol(params, main) == Protocol("from_upstream", (1, 2, 3), 240, "paper")
    params = make_params(ablate_epochs=None, train_epochs=5)
    assert run_protocol(params, resolve_run(params, "stf_A1_baseline")).epochs == 5


def test_protocol_notes_say_whether_the_runs_compare_like_for_like():
    params = make_params()
    rows = [fill_row(params, {"run": name}, name) for name in ("stf_A5_wo_trm", "stf_A8_full")]
    results = {name: full_metrics(name, folds=1) for name in ("stf_A5_wo_trm", "stf_A8_full", "stf")}
    notes = " ".join(protocol_notes(rows + [OurRun("stf_K1")], results, "3 folds, 240 epochs"))
    assert "every run scored on fold1" in notes and "no std" in notes
    assert "like for like — every run trained under one protocol, fold 1, 3 epochs, profile cpu " \
           "(the paper's: 3 folds, 240 epochs)" in notes
    mixed = " ".join(protocol_notes([rows[0], fill_row(params, {"run": "stf"}, "main")], results))
    assert "NOT like for like" in mixed
    assert "stf_A5_wo_trm: ablation: fold 1, 3 epochs, profile cpu; stf: from_upstream: folds 1, 2, 3, 6 epochs" \
        in mixed


# --- metrics files ---------------------------------------------------------------------------------------------

def test_metrics_paths_follow_the_run_group_and_a_missing_file_names_its_stage(tmp_path):
    params = make_params()
    runs = scored_runs(params, "stf")
    assert sorted(runs) == sorted(["stf", "stf_A1_baseline", "stf_A5_wo_trm", "stf_A6_wo_srm", "stf_A7_wo_sff",
                                   "stf_A8_full"])
    assert run_metrics_path(runs["stf"], tmp_path) == (tmp_path / "stf.json", "the stage that trains stf")
    assert run_metrics_path(runs["stf_A8_full"], tmp_path) == (tmp_path / "ablations/stf/stf_A8_full.json",
                                                               "the stage that trains stf")
    write_results(tmp_path, main=["stf"], ablation=["stf_A1_baseline"])
    assert set(load_results([runs["stf"], runs["stf_A1_baseline"]], tmp_path)) == {"stf", "stf_A1_baseline"}
    with pytest.raises(DataError, match=r"stf/stf_A8_full\.json: metrics are missing.*trains stf\b"):
        load_results([runs["stf_A8_full"]], tmp_path)
    # a main run not listed in `methods` is not scored, so its metrics are not expected
    assert "stf" not in scored_runs({**params, "methods": ["baseline"]}, "stf")


# --- model cost ------------------------------------------------------------------------------------------------

def test_run_cost_is_the_efficiency_stage_count_without_pretrained_weights():
    """The efficiency stage's `model_cost`, on the run's config with `pretrained` off (a count needs no weights,
    and ImageNet weights may not be on this machine)."""
    params = make_params()
    params["baseline"] = {"pretrained": True}
    run = resolve_run(params, "baseline")
    assert run.method_config.pretrained
    parameters, macs = run_cost(run, 12, 64)
    plain = resolve_run(make_params(), "baseline")
    assert (parameters, macs) == model_cost(plain.method, plain.method_config, 12, 64)
    assert parameters > 11_000_000 and macs > 0


def test_a_main_run_trained_for_the_ablation_epochs_is_read_on_the_ablation_folds():
    """The default trains no separate full model for ablation tables: the main run, when it trains for the
    ablation's epochs, fills the full-model row with its fold-1 numbers (like for like); otherwise all folds."""
    entry = {"run": ["stf_A8_full", "stf"], "switches": FULL}
    same = fill_row(make_params(ablation=["stf_A5_wo_trm"], train_epochs=3), entry, "row A8")
    assert same.folds == (1,) and same.name == "stf (fold 1)" and same.protocol.schedule == ((1,), 3, "cpu")
    other = fill_row(make_params(ablation=["stf_A5_wo_trm"], train_epochs=6), entry, "row A8")
    assert other.folds is None and other.name == "stf" and other.protocol.folds == (1, 2, 3)
    metrics = make_metrics("stf", {"AU1": [0.2, 0.6, 0.9], "AU2": [0.4, None, 0.1]})
    views = with_fold_views({"stf": metrics}, [same])
    assert views["stf"] is metrics
    view = views["stf (fold 1)"]
    assert list(view["folds"]) == ["fold1"] and view["mean_f1"] == pytest.approx(0.3) and view["std_f1"] == 0.0
    assert fold_view(metrics, (1, 3))["mean_f1"] == pytest.approx((0.3 + 0.5) / 2)
