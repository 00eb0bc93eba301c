"""MDHR's tables from the shipped params: each paper column beside the run that fills it, the full model read
on the ablation folds (like for like), and the model's cost at the paper's configuration."""
from __future__ import annotations

from pathlib import Path

from aubench.config import load_params
from aubench.report.papers.mdhr import write_tables
from tests.report.helpers import full_metrics, write_results

PARAMS = Path(__file__).resolve().parents[3] / "params.yaml"


def test_tables_fill_each_column_with_its_run_and_the_full_model_on_fold_1(tmp_path):
    params = load_params(PARAMS)
    write_results(tmp_path / "metrics", main=["mdhr"], ablation=["mdhr_T3_5", "mdhr_T3_6"], parent="mdhr")
    written = write_tables(params, tmp_path / "metrics", tmp_path / "tables")
    assert sorted(path.name for path in written if path.suffix == ".md") == [
        "mdhr_cost.md", "mdhr_table1.md", "mdhr_table3.md", "mdhr_table4.md", "mdhr_table5.md"]
    table3 = (tmp_path / "tables" / "mdhr_table3.md").read_text()
    assert "mdhr_T3_5" in table3 and "mdhr (fold 1)" in table3 and "mdhr_T3_1 (not run)" in table3
    assert "like for like" in table3  # every run shown was trained under one protocol (fold 1, 3 epochs)
    fold1 = 100 * full_metrics("mdhr")["folds"]["fold1"]["mean_f1"]
    assert f"{fold1:.2f}" in table3
    table1 = (tmp_path / "tables" / "mdhr_table1.md").read_text()
    assert "66.60" in table1 and "| mdhr |" in table1.replace("mdhr (fold 1)", "")  # all folds in Table 1
    assert "93.2" in (tmp_path / "tables" / "mdhr_cost.md").read_text()
