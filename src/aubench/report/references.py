"""Methods beside the reference predictors: per-AU F1 of each trained method next to always-positive and the
landmark probes of `metrics/difficulty.json`, all scored on the same test folds of the same dataset.

It answers the first question about any number in the paper tables: did the model learn more than the
base rates give away (always-positive), and more than a linear probe on landmarks (single frame, or with
the sequence as context) or on the face's downsampled pixels? Our numbers only; no paper column, so the
dataset is named in the title.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aubench.errors import DataError
from aubench.eval.difficulty import REFERENCES
from aubench.report.tables import MISSING, markdown_table, per_au_values, render, summary_value


REFERENCE_LABELS = {"always_positive": "always positive", "single_frame": "landmark probe, single frame",
                    "context": "landmark probe, sequence context", "pixels": "pixel probe, single frame"}


def reference_rows(methods: Mapping[str, Mapping[str, Any]], difficulty: Mapping[str, Any]) -> list[list[str]]:
    """Header row, one row per AU, and the mean row (mean ± std over folds of the per-fold mean), in %."""
    for name, metrics in methods.items():
        if metrics.get("dataset") != difficulty.get("dataset"):
            raise DataError(f"metrics of {name!r} are on {metrics.get('dataset')!r} but the references on "
                            f"{difficulty.get('dataset')!r}: re-run `dvc repro` so both use the same data")
    references = [name for name in REFERENCES if name in difficulty]  # an older file may lack a newer one
    runs = {**{REFERENCE_LABELS[name]: difficulty[name] for name in references}, **methods}
    per_au = {label: per_au_values(metrics, "f1") for label, metrics in runs.items()}
    aus = [f"AU{au}" for au in difficulty["aus"]]
    rows = [["AU", *runs]]
    rows += [[au, *(render(per_au[label].get(au)) for label in runs)] for au in aus]
    rows.append(["Mean", *(render(summary_value(metrics, "f1")) for metrics in runs.values())])
    return rows


def write_reference_table(methods: Mapping[str, Mapping[str, Any]], difficulty: Mapping[str, Any],
                          stem: Path) -> tuple[Path, Path]:
    """`<stem>.md` and `<stem>.csv`: F1 (%) of each method beside the references, titled with the dataset."""
    rows = reference_rows(methods, difficulty)
    lines = [f"### F1 (%) per AU on {difficulty['dataset']}: methods beside reference predictors", "",
             "Same test folds for every column; mean ± std over folds. The probes are logistic regressions "
             "on aligned landmarks or downsampled grey faces (see `aubench.eval.difficulty`); "
             f"{MISSING} = undefined.", ""]
    lines += markdown_table(rows)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    stem.parent.mkdir(parents=True, exist_ok=True)
    markdown, comma = stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".csv")
    markdown.write_text("\n".join(lines) + "\n")
    comma.write_text(buffer.getvalue())
    return markdown, comma
