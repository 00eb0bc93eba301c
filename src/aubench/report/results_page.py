"""`reports/results.md`, the README's results table and the summary metrics, from one set of computed results.

`write_results_report` is what the `report` stage runs; every number on the page is read from the pipeline's
outputs (metrics, predictions, DVCLive logs, stage time logs) or computed from them here.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aubench.align.store import AlignedStore
from aubench.config import section
from aubench.errors import ConfigError
from aubench.eval.statistics import Comparison
from aubench.io import read_json, write_json
from aubench.report.curves import stage_times, write_training_curves
from aubench.report.references import REFERENCE_LABELS, reference_rows
from aubench.report.results import (ReportConfig, RunResult, compare, difference_cells, find_runs, load_run,
                                    paper_cell, percent_interval, published_numbers, summary, value_cell)
from aubench.report.tables import MISSING, markdown_table, ours_dataset

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"

READING = """\
**How to read this.** *Mean F1* is the unweighted mean over AUs of each fold's F1, then mean ± std over
folds, as the papers report it. The *interval* is a {level:.0%} percentile bootstrap interval of that mean:
the test subjects of each fold are drawn with replacement {replicates:,} times and the score is recomputed
from the drawn subjects' frames. *Δ* is a run's mean F1 minus its reference's (the baseline for methods,
the full model for ablation rows), on the same frames, with a paired bootstrap interval (both runs on the
same drawn subjects); *p* is a two-sided paired permutation test that swaps the two runs' predictions per
subject ({replicates:,} random swaps; p = 1 when the runs predict identically), and "(≥ x)" is the smallest
p that test can give with that many subjects, 2 / 2^subjects. An interval that contains 0, or p above 0.05,
means the data cannot tell the two apart.

Subjects, not frames, are resampled: frames of one subject share face, session and long AU episodes, so
treating thousands of frames as independent evidence would make every interval far too narrow and almost
any difference look significant. With few test subjects the evidence is thin and the statistics say so:
one fold of SynthAU has 4 test subjects, so no ablation row can reach p < 0.125 however large its Δ, and a
bootstrap over 4 subjects is itself rough (its interval is skewed — dropping the one subject that shows a
rare AU turns that AU's F1 to 0 — and too narrow for so few draws): read such rows by their p. The papers
compare means whose difference is often below their own fold std; the same caution applies to them.
"""

REPRODUCIBILITY = """\
**Reproducibility.** Bit-exact across machines and clones (same package versions): the data stages
`synthesize`, `landmarks`, `align` and `folds` — their resume keys hash content, never file times or paths
(tested: two runs in two folders at different times give identical files). Training, predictions and
everything computed from them reproduce on the same machine for the same params and seed, and elsewhere to
float tolerance (thread scheduling and CPU kernels change the last bits), so metrics may differ in the last
decimals between machines. Stage times are measurements and differ on every run.
"""


@dataclass(frozen=True)
class ReportPaths:
    """Where the report reads and writes (the `report` stage's deps and outs)."""

    metrics: Path = Path("metrics")
    predictions: Path = Path("predictions")
    store: Path = Path("data/aligned")
    live: Path = Path("dvclive/train")
    stage_log: Path = Path("logs/stage_times")
    lock: Path = Path("dvc.lock")
    results: Path = Path("reports/results.md")
    summary: Path = Path("reports/summary.json")
    times: Path = Path("reports/stage_times.json")
    curves: Path = Path("plots/training")
    readme: Path | None = Path("README.md")


def write_results_report(params: Mapping[str, Any], paths: ReportPaths = ReportPaths()) -> list[Path]:
    """Compute every run's statistics and write the report, the summary metrics, the stage times, the training
    curves and (between its markers) the README's results table. Returns the written paths."""
    config = section(ReportConfig, dict(params), "report")
    store = AlignedStore.open(paths.store)
    subject_of = {sequence.key: sequence.subject for sequence in store.sequences}
    order = list(params.get("methods") or ())
    found = sorted(find_runs(paths.metrics).items(), key=lambda item: (item[0] not in order, item[0]))
    runs = {name: load_run(params, name, group, path, paths.predictions, subject_of, config)
            for name, (group, path) in found}
    comparisons = compare(runs, config)
    difficulty = read_json(paths.metrics / "difficulty.json") if (paths.metrics / "difficulty.json").is_file() else None
    efficiency = read_json(paths.metrics / "efficiency.json") if (paths.metrics / "efficiency.json").is_file() else {}
    times = stage_times(paths.stage_log, paths.lock)
    main = [name for name, run in runs.items() if run.group == "main"]
    curves = write_training_curves(paths.live, main, paths.curves)
    page = render_page(runs, comparisons, difficulty, efficiency, times, config, paths.curves)
    paths.results.parent.mkdir(parents=True, exist_ok=True)
    paths.results.write_text(page)
    write_json(paths.summary, {"dataset": ours_dataset(run.metrics for run in runs.values()),
                               **summary(runs, comparisons)})
    write_json(paths.times, times)
    written = [paths.results, paths.summary, paths.times, *curves]
    if paths.readme is not None:
        update_readme(paths.readme, readme_block(runs, comparisons, difficulty))
        written.append(paths.readme)
    return written


def method_rows(runs: Mapping[str, RunResult], comparisons: Mapping[str, tuple[str, Comparison]],
                efficiency: Mapping[str, Any]) -> list[list[str]]:
    """One row per main run: scores, statistics, the papers' numbers and cost."""
    published = published_numbers()
    rows = [["Run", "Mean F1 (%) ± std", "95 % interval", "Δ F1 [interval]", "p", "Paper F1 (%)",
             "Params", "MACs/frame", "Train frames/s", "Inference frames/s"]]
    for name, run in runs.items():
        if run.group != "main":
            continue
        cost = efficiency.get(name, {})
        rows.append([name, value_cell(run.metrics), percent_interval(run.interval),
                     *difference_cells(comparisons, name), paper_cell(published.get(run.method, [])),
                     _millions(cost.get("parameters")), _giga(cost.get("macs_per_frame"), cost.get("input_size")),
                     _plain(cost.get("train_frames_per_s")), _plain(cost.get("inference_frames_per_s"))])
    return rows


def ablation_rows(runs: Mapping[str, RunResult], comparisons: Mapping[str, tuple[str, Comparison]]) -> list[list[str]]:
    rows = [["Run", "Method", "Mean F1 (%)", "95 % interval", "Δ F1 [interval]", "p", "Protocol"]]
    for name, run in runs.items():
        if run.group == "ablation":
            rows.append([name, run.method, value_cell(run.metrics), percent_interval(run.interval),
                         *difference_cells(comparisons, name), run.protocol])
    return rows


def render_page(runs: Mapping[str, RunResult], comparisons: Mapping[str, tuple[str, Comparison]],
                difficulty: Mapping[str, Any] | None, efficiency: Mapping[str, Any], times: Mapping[str, Any],
                config: ReportConfig, curves_dir: Path) -> str:
    dataset = ours_dataset(run.metrics for run in runs.values())
    main = {name: run for name, run in runs.items() if run.group == "main"}
    lines = ["# Results", "", f"Generated by `dvc repro` (stage `report`) from the pipeline's own outputs. Our "
             f"numbers are on **{dataset}**; the papers' numbers are on the dataset named beside each, so the "
             "two columns are not the same experiment.", "",
             "## Methods", "", *markdown_table(method_rows(runs, comparisons, efficiency)), "",
             "Protocol of each run: " + "; ".join(f"{name}: {run.protocol}" for name, run in main.items()) + ".",
             f"Cost: parameters and multiply-accumulates per frame at the papers' input size; frames/s measured on "
             f"this machine at the CPU profile's input size ({MISSING} = not measured).", ""]
    if difficulty is not None:
        lines += ["## Per AU, beside the reference predictors", "",
                  *markdown_table(reference_rows({name: run.metrics for name, run in main.items()}, difficulty)),
                  "", "References: always positive (predicts every AU present), logistic-regression probes on "
                  "aligned landmarks (single frame, and with sequence context); same test folds.", ""]
    ablations = ablation_rows(runs, comparisons)
    if len(ablations) > 1:
        lines += ["## Ablation runs", "", *markdown_table(ablations), ""]
    lines += [READING.format(level=config.level, replicates=config.replicates), "",
              "## Training curves", "", f"Per run and logged value, folds overlaid: `{curves_dir}/<run>/*.json` "
              "(`dvc plots show`; DVCLive logs under `dvclive/train/<run>/fold<k>`).", "",
              "## Time per stage", "", *_times_table(times), "", REPRODUCIBILITY]
    return "\n".join(lines)


def readme_block(runs: Mapping[str, RunResult], comparisons: Mapping[str, tuple[str, Comparison]],
                 difficulty: Mapping[str, Any] | None) -> str:
    """The README's results table: main runs with their interval, test and the papers' numbers, then the
    reference predictors' mean F1 on the same folds."""
    published = published_numbers()
    dataset = ours_dataset(run.metrics for run in runs.values())
    rows = [[f"Run (ours: {dataset})", "Mean F1 (%) ± std", "95 % interval", "Δ F1 [interval]", "p",
             "Paper F1 (%)"]]
    rows += [[name, value_cell(run.metrics), percent_interval(run.interval), *difference_cells(comparisons, name),
              paper_cell(published.get(run.method, []))] for name, run in runs.items() if run.group == "main"]
    rows += [[f"{label} (reference)", value_cell(difficulty[name]), *[MISSING] * 4]
             for name, label in REFERENCE_LABELS.items() if difficulty and name in difficulty]
    return "\n".join(["*Generated by `dvc repro` (stage `report`); details in "
                      "[reports/results.md](reports/results.md).*", "", *markdown_table(rows)])


def update_readme(path: Path, block: str) -> None:
    """Replace the text between the README's results markers with `block`."""
    text = path.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ConfigError(f"{path}: the results markers {README_START} … {README_END} are missing; add them "
                          "where the results table belongs")
    path.write_text(pattern.sub(lambda _: f"{README_START}\n{block}\n{README_END}", text))


def _times_table(times: Mapping[str, Any]) -> list[str]:
    if not times["stages_measured"]:
        return ["No stage times were logged in this workspace (stages restored from cache do not run)."]
    rows = [["Stages", "Seconds"], *([family, f"{seconds:.1f}"] for family, seconds in times["by_family"].items()),
            ["all", f"{times['total_seconds']:.1f}"]]
    return [*markdown_table(rows), "", f"Wall time inside each stage script, as last measured in this workspace: "
            f"{times['stages_measured']} of the pipeline's {times['stages_in_pipeline']} stages (those restored from "
            f"DVC's cache did not run), the last finished {times['last_finished']}; in `reports/stage_times.json`."]


def _millions(count: int | None) -> str:
    return MISSING if count is None else f"{count / 1e6:.2f} M"


def _giga(count: int | None, size: int | None) -> str:
    return MISSING if count is None else f"{count / 1e9:.3f} G @ {size}²"


def _plain(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0f}"
