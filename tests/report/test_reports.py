"""The `tables` stage's entry: each method of params `methods` with a paper module writes its tables, found by
name (a method without one is skipped), then the references table."""
from __future__ import annotations

import json
import sys
import types

import pytest

from aubench import report
from aubench.errors import DataError
from aubench.report import paper_module, write_reports
from aubench.report.papers import stf
from tests.report.helpers import DEFAULT_ABLATION, full_metrics, make_params, write_results


def write_difficulty(metrics_dir) -> None:
    reference = full_metrics("reference", level=0.3)
    (metrics_dir / "difficulty.json").write_text(json.dumps(
        {"dataset": reference["dataset"], "aus": reference["aus"], "always_positive": reference,
         "single_frame": reference, "context": reference}))


def test_paper_modules_are_found_by_method_name():
    assert paper_module("stf") is stf
    assert paper_module("baseline") is None


def test_write_reports_writes_each_papers_tables_and_the_references(tmp_path):
    metrics = tmp_path / "metrics"
    write_results(metrics, main=["baseline", "stf"], ablation=DEFAULT_ABLATION)
    write_difficulty(metrics)
    written = write_reports(make_params(), metrics, tmp_path / "tables", tmp_path / "plots")
    assert sorted(path.relative_to(tmp_path).as_posix() for path in written) == sorted(
        [f"tables/stf_table{n}.{ext}" for n in range(1, 5) for ext in ("md", "csv")]
        + ["plots/stf_per_au_f1.png", "plots/stf_k_curve.png", "plots/stf_k_curve.json",
           "tables/references.md", "tables/references.csv"])
    header = (tmp_path / "tables/references.csv").read_text().splitlines()[0]
    assert header.endswith(",baseline,stf")


def test_a_new_paper_module_is_used_without_any_other_edit(tmp_path, monkeypatch):
    """A module `aubench.report.papers.<method>` is all it takes for a method of `methods` to get its tables."""
    calls = []
    module = types.ModuleType("aubench.report.papers.newmethod")
    module.write_tables = lambda params, metrics_dir, tables_dir, plots_dir: calls.append(tables_dir) or []
    monkeypatch.setitem(sys.modules, "aubench.report.papers.newmethod", module)
    monkeypatch.setattr(report.importlib.util, "find_spec",
                        lambda name: object() if name == module.__name__ else None)
    metrics = tmp_path / "metrics"
    write_results(metrics, main=["newmethod"])
    write_difficulty(metrics)
    params = {**make_params(main=False), "methods": ["newmethod"]}
    written = write_reports(params, metrics, tmp_path / "tables", tmp_path / "plots")
    assert calls == [tmp_path / "tables"]
    assert sorted(path.name for path in written) == ["references.csv", "references.md"]


def test_a_method_without_metrics_is_named_with_its_stage(tmp_path):
    write_difficulty(tmp_path)
    with pytest.raises(DataError, match=r"baseline\.json: metrics are missing.*trains baseline"):
        write_reports(make_params(main=False), tmp_path, tmp_path / "tables", tmp_path / "plots")
