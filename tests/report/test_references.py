"""The methods-beside-references table: values from the metrics files, dataset named, mismatches refused."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from aubench.errors import DataError
from aubench.report.references import reference_rows, write_reference_table

DATASET = "SynthAU (BP4D layout, synthetic)"


def _metrics(f1_by_fold: list[dict[str, float | None]], dataset: str = DATASET) -> dict:
    folds = {f"fold{i + 1}": {"mean_f1": sum(v for v in f1.values() if v is not None)
                              / len([v for v in f1.values() if v is not None]), "f1": f1}
             for i, f1 in enumerate(f1_by_fold)}
    means = [fold["mean_f1"] for fold in folds.values()]
    mean = sum(means) / len(means)
    std = (sum((m - mean) ** 2 for m in means) / len(means)) ** 0.5
    return {"dataset": dataset, "aus": [1, 2], "folds": folds, "mean_f1": mean, "std_f1": std}


@pytest.fixture
def difficulty() -> dict:
    reference = _metrics([{"AU1": 0.2, "AU2": 0.4}, {"AU1": 0.4, "AU2": 0.4}])
    return {"dataset": DATASET, "aus": [1, 2], "always_positive": reference, "single_frame": reference,
            "context": _metrics([{"AU1": 0.5, "AU2": None}, {"AU1": 0.7, "AU2": 0.3}]),
            "pixels": _metrics([{"AU1": 0.9, "AU2": 0.1}, {"AU1": 0.9, "AU2": 0.1}])}


def test_rows_show_percent_mean_and_std_over_folds(difficulty: dict) -> None:
    baseline = _metrics([{"AU1": 0.6, "AU2": 0.8}, {"AU1": 0.8, "AU2": 0.8}])
    header, au1, au2, mean = reference_rows({"baseline": baseline}, difficulty)
    assert header == ["AU", "always positive", "landmark probe, single frame", "landmark probe, sequence context",
                      "pixel probe, single frame", "baseline"]
    assert au1 == ["AU1", "30.00 ± 10.00", "30.00 ± 10.00", "60.00 ± 10.00", "90.00 ± 0.00", "70.00 ± 10.00"]
    assert au2[3] == "30.00"  # defined on one fold only: no std
    assert mean[-1] == "75.00 ± 5.00"


def test_a_references_file_from_before_the_pixel_probe_still_renders(difficulty: dict) -> None:
    del difficulty["pixels"]
    header, *_ = reference_rows({"baseline": _metrics([{"AU1": 0.5, "AU2": 0.5}])}, difficulty)
    assert header == ["AU", "always positive", "landmark probe, single frame", "landmark probe, sequence context",
                      "baseline"]


def test_a_method_on_another_dataset_is_refused(difficulty: dict) -> None:
    with pytest.raises(DataError, match="'baseline'.*BP4D"):
        reference_rows({"baseline": _metrics([{"AU1": 0.5, "AU2": 0.5}], dataset="BP4D")}, difficulty)


def test_files_name_the_dataset(difficulty: dict, tmp_path: Path) -> None:
    markdown, comma = write_reference_table({"baseline": _metrics([{"AU1": 0.5, "AU2": 0.5}])}, difficulty,
                                            tmp_path / "tables" / "references")
    assert DATASET in markdown.read_text().splitlines()[0]
    header = next(csv.reader(comma.read_text().splitlines()))
    assert header == ["AU", "always positive", "landmark probe, single frame", "landmark probe, sequence context",
                      "pixel probe, single frame", "baseline"]
