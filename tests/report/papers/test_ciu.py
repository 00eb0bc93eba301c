"""CIU's tables from the shipped params: each paper column beside the run that fills it
(TE and TDE as rows of the main run, the full model read on the ablation folds), columns without a run as "–",
and the network's size at the paper's configuration."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from aubench.config import load_params
from aubench.errors import ConfigError
from aubench.report.papers.ciu import write_tables
from aubench.report.tables import load_paper
from tests.report.helpers import full_metrics, write_results

PARAMS = Path(__file__).resolve().parents[3] / "params.yaml"


def params_with_ciu(rows: list[str]) -> dict:
    """The shipped params (which list CIU's teachers and student) with `rows` as the student's ablation rows."""
    params = copy.deepcopy(load_params(PARAMS))
    assert "ciu" in params["methods"] and {"ciu_teachers", "ciu"} <= {
        run["name"] for run in params["runs"]["from_upstream"]}
    params["runs"]["ablation"]["ciu"] = rows
    return params


def test_tables_fill_each_column_with_its_run(tmp_path):
    write_results(tmp_path / "metrics", main=["ciu"], ablation=["ciu_TE", "ciu_TDE"], parent="ciu")
    written = write_tables(params_with_ciu(["TE", "TDE"]), tmp_path / "metrics", tmp_path / "tables")
    assert sorted(path.name for path in written if path.suffix == ".md") == [
        "ciu_cost.md", "ciu_fig4.md", "ciu_table1.md", "ciu_table2.md", "ciu_table3.md"]
    table3 = (tmp_path / "tables" / "ciu_table3.md").read_text()
    assert "ciu_TE" in table3 and "ciu_TDE" in table3 and "ciu (fold 1)" in table3 and "47.9" in table3
    fold1 = 100 * full_metrics("ciu")["folds"]["fold1"]["mean_f1"]
    assert f"{fold1:.2f}" in table3
    fig4 = (tmp_path / "tables" / "ciu_fig4.md").read_text()
    assert "ciu_gamma_0 (not run)" in fig4 and "64.6" in fig4
    assert "5,067,960" in (tmp_path / "tables" / "ciu_cost.md").read_text()


def test_a_row_whose_switches_disagree_with_its_column_is_a_config_error(tmp_path):
    params = params_with_ciu(["TE"])
    params["variants"]["ciu"]["TE"] = {"risk.use_imba_risk": False}  # TDE's switches under TE's name
    write_results(tmp_path / "metrics", main=["ciu"], ablation=["ciu_TE"], parent="ciu")
    with pytest.raises(ConfigError, match="ciu_TE"):
        write_tables(params, tmp_path / "metrics", tmp_path / "tables")


def test_paper_means_agree_with_their_per_au_values():
    """Spec §1.5: CIU's rows match their printed means to 0.05."""
    for name in ("table1", "table2", "table3"):
        table = load_paper("ciu")["tables"][name]
        for column, values in table.values.items():
            per_au = [value for row, value in values.items() if row != "mean"]
            assert sum(per_au) / len(per_au) == pytest.approx(values["mean"], abs=0.05), (name, column)
