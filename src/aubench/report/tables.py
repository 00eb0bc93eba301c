"""The table kit: a paper's published numbers beside ours, as Markdown and CSV, for every paper's report.

A `ComparisonTable` is one or more sections of rows × columns, and every column shows two cells side by side,
the paper's value labelled with the paper's dataset ("paper (BP4D)") and ours labelled with the dataset named
in our metrics JSON ("ours (SynthAU (BP4D layout, synthetic))"): our numbers are never presented as BP4D/DISFA
numbers. Values print as percentages with 2 decimals and "± std" (std over folds) where there is one; a run
that has no results and an undefined value (null in the metrics JSON) print as "–", never as an invented
number. `per_au_table` builds the usual per-AU table (AUs × runs, one section per metric, plus the mean row).

Which of our runs fills a paper's row or column is data of that paper (`papers/<method>.yaml`): `fill_row`
resolves it from params (`runs`, `variants`), checks the run's resolved config against the row's switches,
and records the protocol it was trained under (group, folds, epochs, profile), so that every cell says which
run produced it and a table can tell whether its cells compare like for like. A paper's own tables live in
`papers/<method>.py`.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aubench.config import section
from aubench.errors import ConfigError, DataError
from aubench.eval.efficiency_report import model_cost
from aubench.eval.report import metrics_file
from aubench.io import read_json
from aubench.train.config import AblateConfig
from aubench.train.runs import ABLATION_GROUPS, Run, resolve_run, run_specs

#: What a missing run or an undefined value prints as.
MISSING = "–"

UNITS = ("percent", "count", "millions", "giga")


# --- values -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Value:
    """One number with an optional ± std, and how it prints.

    `unit`: "percent" (already in %, 2 decimals), "count" (an exact integer with thousands separators),
    "millions" (a raw count printed as e.g. 13.31M) or "giga" (a raw count printed as e.g. 2.495G).
    """

    mean: float | None
    std: float | None = None
    unit: str = "percent"

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit {self.unit!r} is not one of {UNITS}")

    @property
    def defined(self) -> bool:
        return _finite(self.mean)

    def render(self) -> str:
        if not self.defined:
            return MISSING
        if self.unit == "count":
            return f"{int(round(self.mean)):,}"
        if self.unit == "millions":
            return f"{self.mean / 1e6:.2f}M"
        if self.unit == "giga":
            return f"{self.mean / 1e9:.3f}G"
        text = f"{self.mean:.2f}"
        return f"{text} ± {self.std:.2f}" if _finite(self.std) else text


def _finite(number: Any) -> bool:
    return isinstance(number, (int, float)) and not isinstance(number, bool) and math.isfinite(number)


#: A table cell: a number, a text (e.g. which run produced a column) or nothing ("–").
Cell = Value | str | None


def render(value: Cell) -> str:
    """A cell's text: "–" for a missing value."""
    if value is None:
        return MISSING
    return value if isinstance(value, str) else value.render()


def from_fractions(mean: float | None, std: float | None = None) -> Value:
    """Our metrics store fractions in [0, 1] (null where undefined); tables show percentages."""
    return Value(100.0 * mean if _finite(mean) else None, 100.0 * std if _finite(std) else None)


def from_paper(pair: Sequence[float] | float | None) -> Value:
    """A paper cell: [mean, std] or a bare mean, already in %."""
    if pair is None:
        return Value(None)
    if isinstance(pair, (int, float)):
        return Value(float(pair))
    mean, std = pair
    return Value(float(mean), None if std is None else float(std))


# --- reading our metrics JSON (written by aubench.eval.report) ----------------------------------------------

METRICS = {"f1": "F1 (%)", "accuracy": "Accuracy (%)"}


def summary_value(metrics: Mapping[str, Any] | None, metric: str) -> Value | None:
    """Mean over folds ± std over folds of the per-fold mean over AUs (`mean_f1 ± std_f1` …); None if no run.

    A run scored on a single fold has no std (its recorded 0.0 is not a spread), so none is shown.
    """
    if metrics is None:
        return None
    folds = metrics.get("folds")
    defined = [fold for fold in (folds or {}).values() if _finite(fold.get(f"mean_{metric}"))]
    std = metrics.get(f"std_{metric}") if folds is None or len(defined) >= 2 else None
    return from_fractions(metrics.get(f"mean_{metric}"), std)


def fold_names(metrics: Mapping[str, Any] | None) -> list[str]:
    """The folds a run was scored on ("fold1", …), from its metrics."""
    return sorted((metrics or {}).get("folds") or {})


def per_au_values(metrics: Mapping[str, Any] | None, metric: str) -> dict[str, Value]:
    """Per AU: mean ± std over folds (undefined folds left out; `per_au_f1` is the mean where recorded).

    The std needs at least two folds where the value is defined; with one there is none.
    """
    if metrics is None:
        return {}
    folds = list((metrics.get("folds") or {}).values())
    names = [f"AU{au}" for au in metrics.get("aus", [])]
    for fold in folds:
        names += [name for name in fold.get(metric, {}) if name not in names]
    recorded = metrics.get(f"per_au_{metric}") or {}
    names += [name for name in recorded if name not in names]
    values = {}
    for name in names:
        per_fold = np.array([fold.get(metric, {}).get(name) for fold in folds], dtype=float)
        per_fold = per_fold[np.isfinite(per_fold)]
        mean = recorded.get(name) if name in recorded else (float(per_fold.mean()) if per_fold.size else None)
        std = float(per_fold.std()) if per_fold.size >= 2 and _finite(mean) else None
        values[name] = from_fractions(mean, std)
    return values


def ours_dataset(results: Iterable[Mapping[str, Any] | None]) -> str:
    """The dataset label of our side, from the metrics' own `dataset` fields (never assumed)."""
    labels: list[str] = []
    for metrics in results:
        if metrics is None:
            continue
        label = str(metrics.get("dataset") or "dataset not recorded")
        if label not in labels:
            labels.append(label)
    return " / ".join(labels) if labels else "no results"


def read_run_metrics(path: Path, producer: str) -> dict[str, Any]:
    """A run's metrics JSON; a missing file is a DataError naming the file and the stage that writes it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: metrics are missing; run {producer} (`dvc repro`)")
    return read_json(path)


# --- the table structure and its rendering ------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """A quantity or run shown as two side-by-side cells, paper and ours."""

    key: str
    label: str


@dataclass(frozen=True)
class Row:
    """`labels` fill the table's row-header columns; `cells` maps column key → (paper value, our value)."""

    labels: tuple[str, ...]
    cells: Mapping[str, tuple[Cell, Cell]]


@dataclass(frozen=True)
class Section:
    title: str | None
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class ComparisonTable:
    """Sections of rows × columns; each column is "<label>: paper (<dataset>)" beside "<label>: ours (<dataset>)".

    `paper_dataset`/`paper_source` say where the paper's numbers come from ("BP4D", "STF paper, Table 2"),
    `ours_dataset`/`ours_source` where ours do (the dataset label of the metrics JSON and its files).
    """

    title: str
    row_header: tuple[str, ...]
    columns: tuple[Column, ...]
    sections: tuple[Section, ...]
    paper_dataset: str
    paper_source: str
    ours_dataset: str
    ours_source: str
    notes: tuple[str, ...] = ()

    @property
    def paper_side(self) -> str:
        return f"paper ({self.paper_dataset})"

    @property
    def ours_side(self) -> str:
        return f"ours ({self.ours_dataset})"

    def header(self) -> list[str]:
        cells = list(self.row_header)
        for column in self.columns:
            cells += [f"{column.label}: {self.paper_side}", f"{column.label}: {self.ours_side}"]
        return cells

    def body(self, section: Section) -> list[list[str]]:
        lines = []
        for row in section.rows:
            cells = list(row.labels)
            for column in self.columns:
                paper, ours = row.cells.get(column.key, (None, None))
                cells += [render(paper), render(ours)]
            lines.append(cells)
        return lines

    def datasets_line(self) -> str:
        """The one-line header naming each side's dataset."""
        return (f"Datasets: paper side = {self.paper_dataset} ({self.paper_source}); "
                f"ours side = {self.ours_dataset} ({self.ours_source}).")


def render_markdown(table: ComparisonTable) -> str:
    """The datasets line, the title, one Markdown table per section, then the notes."""
    lines = [table.datasets_line(), "", f"### {table.title}", ""]
    header = table.header()
    for section in table.sections:
        if section.title:
            lines += [f"**{section.title}**", ""]
        lines.append(_markdown_line(header))
        alignment = [" --- "] * len(table.row_header) + [" ---: "] * (len(header) - len(table.row_header))
        lines.append("|" + "|".join(alignment) + "|")
        lines += [_markdown_line(cells) for cells in table.body(section)]
        lines.append("")
    if table.notes:
        lines += ["Notes:", ""] + [f"- {note}" for note in table.notes] + [""]
    return "\n".join(lines)


def _markdown_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def markdown_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a Markdown table: the header row, then the body; the first column left-aligned, the rest right."""
    return [_markdown_line(rows[0]), "| --- |" + " ---: |" * (len(rows[0]) - 1), *map(_markdown_line, rows[1:])]


def render_csv(table: ComparisonTable) -> str:
    """The same cells as the Markdown; a leading `section` column when the table has titled sections."""
    sectioned = any(section.title for section in table.sections)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow((["section"] if sectioned else []) + table.header())
    for section in table.sections:
        for cells in table.body(section):
            writer.writerow(([section.title or ""] if sectioned else []) + cells)
    return buffer.getvalue()


def write_table(table: ComparisonTable, stem: Path) -> tuple[Path, Path]:
    """Write `<stem>.md` and `<stem>.csv` (parent folders created); returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    markdown, comma = stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".csv")
    markdown.write_text(render_markdown(table))
    comma.write_text(render_csv(table))
    return markdown, comma


# --- generic builders ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaperTable:
    """One per-AU table of a paper, column-oriented: `values[column][row]` = [mean, std] in %, row "mean"."""

    source: str
    dataset: str
    title: str
    columns: Mapping[str, str]
    values: Mapping[str, Mapping[str, Sequence[float]]]

    @property
    def aus(self) -> list[str]:
        rows = next(iter(self.values.values()), {})
        return [name for name in rows if name != "mean"]

    def value(self, column: str | None, row: str) -> Value | None:
        if column is None or column not in self.values:
            return None
        return from_paper(self.values[column].get(row))


@dataclass(frozen=True)
class RunColumn:
    """A column of a per-AU table: a paper column (or None) beside one of our runs (or None).

    `provenance`: (run, protocol) texts saying which run and protocol produced our side (see `OurRun`).
    """

    key: str
    label: str
    paper: str | None
    run: str | None
    provenance: tuple[str, str] | None = None

    @classmethod
    def of(cls, key: str, label: str, paper: str | None, ours: OurRun) -> RunColumn:
        """The column filled by `ours`, with its run and protocol recorded."""
        return cls(key, label, paper, ours.name, (ours.run_label, ours.protocol_label))


def per_au_table(title: str, paper: Mapping[str, PaperTable], columns: Sequence[RunColumn],
                 results: Mapping[str, Mapping[str, Any] | None], ours_source: str,
                 notes: Sequence[str] = ()) -> ComparisonTable:
    """AUs × runs, one section per metric of `paper` ("f1", "accuracy"), then a mean row per section.

    Rows are the paper's AUs followed by any further AUs of ours. Our per-AU cells are mean ± std over
    folds; our mean row is mean ± std over folds of the per-fold mean over AUs, as the papers report.
    When columns record their provenance, a last section "Our runs" says which run and protocol filled each.
    """
    used = [results.get(column.run) if column.run else None for column in columns]
    aus = list(next(iter(paper.values())).aus)
    for metrics in used:
        for au in (metrics or {}).get("aus", []):
            if f"AU{au}" not in aus:
                aus.append(f"AU{au}")
    sections = []
    for metric, table in paper.items():
        ours = [per_au_values(metrics, metric) for metrics in used]
        rows = [Row((au,), {column.key: (table.value(column.paper, au), values.get(au) if metrics else None)
                            for column, values, metrics in zip(columns, ours, used)}) for au in aus]
        rows.append(Row(("Mean",), {column.key: (table.value(column.paper, "mean"), summary_value(metrics, metric))
                                    for column, metrics in zip(columns, used)}))
        sections.append(Section(METRICS.get(metric, metric), tuple(rows)))
    if any(column.provenance for column in columns):
        sections.append(Section("Our runs", tuple(
            Row((label,), {column.key: ("", column.provenance[index] if column.provenance else None)
                           for column in columns})
            for index, label in enumerate(("run", "protocol")))))
    first = next(iter(paper.values()))
    return ComparisonTable(title=title, row_header=("AU",),
                           columns=tuple(Column(column.key, column.label) for column in columns),
                           sections=tuple(sections), paper_dataset=first.dataset,
                           paper_source="; ".join(dict.fromkeys(table.source for table in paper.values())),
                           ours_dataset=ours_dataset(used), ours_source=ours_source, notes=tuple(notes))


# --- the paper's numbers ------------------------------------------------------------------------------------

def load_paper(name: str) -> dict[str, Any]:
    """`papers/<name>.yaml` as a mapping; its per-AU tables (those with `columns`) become `PaperTable`s."""
    text = resources.files("aubench.report").joinpath("papers", f"{name}.yaml").read_text()
    data = yaml.safe_load(text)
    tables = {}
    for key, table in data["tables"].items():
        if "columns" in table:
            columns = dict(table["columns"])
            values: dict[str, dict[str, Sequence[float]]] = {column: {} for column in columns}
            for row, cells in table["rows"].items():
                if len(cells) != len(columns):
                    raise ConfigError(f"papers/{name}.yaml: {key}.rows.{row} has {len(cells)} cells for "
                                      f"{len(columns)} columns")
                for column, cell in zip(columns, cells):
                    values[column][row] = cell
            tables[key] = PaperTable(table["source"], table["dataset"], table["title"], columns, values)
        else:
            tables[key] = table
    return {**data, "tables": tables}




# --- our runs: which run fills a paper's row, under which protocol -----------------------------------------

@dataclass(frozen=True)
class Protocol:
    """How a run was trained and scored: its group in params `runs`, the folds it runs on (`ablate.folds`
    for ablation runs, else `evaluate.folds`), the epochs it is scheduled for and the params profile."""

    group: str
    folds: tuple[int, ...]
    epochs: int
    profile: str

    @property
    def schedule(self) -> tuple[tuple[int, ...], int, str]:
        """What two runs must share for their numbers to compare like for like."""
        return self.folds, self.epochs, self.profile

    def describe(self, group: bool = True) -> str:
        text = f"{fold_text(self.folds)}, {self.epochs} epochs, profile {self.profile}"
        return f"{self.group}: {text}" if group else text


def fold_text(folds: Sequence[int]) -> str:
    """"fold 1" or "folds 1, 2, 3"."""
    return ("fold " if len(folds) == 1 else "folds ") + ", ".join(map(str, folds))


def run_protocol(params: Mapping[str, Any], run: Run) -> Protocol:
    """The protocol of `run` as the pipeline trains it: its folds, and its epochs as the engine resolves them
    (`ablate.epochs` for ablation runs, else `train.epochs`, else the method's own `optim.epochs`)."""
    params = dict(params)
    epochs = run.train_config(params).epochs or run.optim.epochs
    return Protocol(run.spec.group, tuple(run.folds(params)), epochs, str(params.get("profile", "paper")))


@dataclass(frozen=True)
class OurRun:
    """The run of ours that fills one row or column of a paper's table.

    `wanted` is the row's own run (the first it names); `run`/`protocol` are None when params `runs` has
    no run that fits the row: its cells then print "–". `folds`: a main run read on these folds only (see
    `ablation_view`); its results are then looked up as `name`, e.g. "stf (fold 1)" (`with_fold_views`).
    """

    wanted: str
    run: Run | None = None
    protocol: Protocol | None = None
    folds: tuple[int, ...] | None = None

    @property
    def name(self) -> str | None:
        if self.run is None or self.folds is None:
            return self.run.name if self.run else None
        return f"{self.run.name} ({fold_text(self.folds)})"

    @property
    def run_label(self) -> str:
        return self.name if self.run else f"{self.wanted} (not run)"

    @property
    def protocol_label(self) -> str:
        return self.protocol.describe() if self.protocol else MISSING


def fill_row(params: Mapping[str, Any], entry: Mapping[str, Any], what: str) -> OurRun:
    """The run that fills a paper's row or column, from its entry `{run, switches}` in the paper's YAML.

    `run` is a run name or a list of them, in order of preference. The first is the row's own run: when
    params `runs` lists it, its resolved method config must have every one of `switches` (a run whose
    overrides disagree with the row it fills is a ConfigError, not a mislabelled row). Later names are
    shared runs (e.g. a main run whose setting follows a top-level key), taken only when they have the
    switches. The first listed run that fits is the row's; none → not run.
    """
    candidates = [entry["run"]] if isinstance(entry["run"], str) else list(entry["run"])
    switches = dict(entry.get("switches") or {})
    specs = run_specs(dict(params))
    for index, name in enumerate(candidates):
        if name not in specs:
            continue
        run = resolve_run(dict(params), name)
        unknown = [key for key in switches if _config_value(run.method_config, key) is _ABSENT]
        if unknown:
            raise ConfigError(f"{what}: switches {unknown} are not fields of the {run.method.name!r} section")
        wrong = {key: _config_value(run.method_config, key) for key, value in switches.items()
                 if _config_value(run.method_config, key) != value}
        if not wrong:
            view = ablation_view(params, run) if index > 0 else None
            return OurRun(candidates[0], run, view or run_protocol(params, run), view.folds if view else None)
        if index == 0:
            raise ConfigError(f"{run.spec.key}: run {name!r} fills {what}, which needs "
                              f"{', '.join(f'{key}={value}' for key, value in switches.items())}; the run "
                              f"resolves to {', '.join(f'{key}={value}' for key, value in wrong.items())}")
    return OurRun(candidates[0])


def ablation_view(params: Mapping[str, Any], run: Run) -> Protocol | None:
    """A main run standing in for an ablation table's full model, read on `ablate.folds` only: when it is
    trained for the epochs an ablation run of it would have, its runs on those folds are that ablation run
    (same configuration, folds, epochs and seed), so the default run does not train it twice. None when it
    is not a main run, or its protocol differs in more than its folds."""
    if run.spec.group in ABLATION_GROUPS:
        return None
    main = run_protocol(params, run)
    ablate = section(AblateConfig, params, "ablate")
    if (ablate.epochs or main.epochs) != main.epochs or not set(ablate.folds) < set(main.folds):
        return None
    return Protocol(f"{main.group}, read on the ablation folds", tuple(ablate.folds), main.epochs, main.profile)


def fold_view(metrics: Mapping[str, Any] | None, folds: Sequence[int]) -> dict[str, Any] | None:
    """A run's metrics restricted to `folds`: their per-fold entries, and mean ± std over those folds."""
    if metrics is None:
        return None
    kept = {f"fold{n}": metrics["folds"][f"fold{n}"] for n in folds if f"fold{n}" in (metrics.get("folds") or {})}
    view = {key: value for key, value in metrics.items() if not key.startswith(("mean_", "std_", "per_au_"))}
    for metric in ("f1", "accuracy"):
        values = np.array([fold.get(f"mean_{metric}") for fold in kept.values()], dtype=float)
        values = values[np.isfinite(values)]
        view[f"mean_{metric}"] = float(values.mean()) if values.size else None
        view[f"std_{metric}"] = float(values.std()) if values.size else None
    return {**view, "folds": kept}


def with_fold_views(results: Mapping[str, Mapping[str, Any] | None], used: Iterable[OurRun]
                    ) -> dict[str, Mapping[str, Any] | None]:
    """`results` plus, for every run read on some folds only, its restricted metrics under its `name`."""
    views = {ours.name: fold_view(results.get(ours.run.name), ours.folds) for ours in used if ours.folds}
    return {**results, **views}


def quantity_table(title: str, quantities: Sequence[tuple[str, Value, Value]], paper_dataset: str,
                   paper_source: str, ours_source: str, notes: Sequence[str]) -> ComparisonTable:
    """A table of counted quantities, the paper's value beside ours per row (e.g. parameters and MACs)."""
    rows = tuple(Row((label,), {"value": (paper, ours)}) for label, paper, ours in quantities)
    return ComparisonTable(title=title, row_header=("quantity",), columns=(Column("value", "value"),),
                           sections=(Section(None, rows),), paper_dataset=paper_dataset, paper_source=paper_source,
                           ours_dataset="counted (no data)", ours_source=ours_source, notes=tuple(notes))


def write_f1_tables(params: Mapping[str, Any], method: str, titles: Mapping[str, str],
                    notes: Mapping[str, Sequence[str]], metrics_dir: Path, tables_dir: Path) -> list[Path]:
    """`<method>_<name>.{md,csv}` for each F1 table `name` of `titles` in the method's paper YAML: each paper
    column beside the run that fills it (`ours.<name>`, `fill_row`), the table's `notes`, the protocol notes.
    Every run of the method the pipeline scores must have its metrics (`load_results`)."""
    paper = load_paper(method)
    results = load_results(scored_runs(params, method).values(), Path(metrics_dir))
    written: list[Path] = []
    for name, title in titles.items():
        ours = {key: fill_row(params, entry, f"{method} {name} column {key}") for key, entry in paper["ours"][name].items()}
        table = paper["tables"][name]
        columns = [RunColumn.of(key, label, key, ours[key]) for key, label in table.columns.items()]
        views = with_fold_views(results, ours.values())
        table_notes = [*notes.get(name, ()), *protocol_notes(ours.values(), views, paper["protocol"])]
        comparison = per_au_table(title, {"f1": table}, columns, views, ours_source(ours.values()), table_notes)
        written += write_table(comparison, Path(tables_dir) / f"{method}_{name}")
    return written


def write_paper_tables(params: Mapping[str, Any], method: str, titles: Mapping[str, str], notes: Mapping[str, str],
                       per_au_note: str, counted: Mapping[str, ComparisonTable], metrics_dir: Path,
                       tables_dir: Path) -> list[Path]:
    """A paper's F1 tables (`titles`, each with its entry of `notes` and then `per_au_note`; `write_f1_tables`)
    and its counted tables (`counted`, by file stem), as .md and .csv in `tables_dir`."""
    table_notes = {name: [note for note in (notes.get(name), per_au_note) if note] for name in titles}
    written = write_f1_tables(params, method, titles, table_notes, Path(metrics_dir), Path(tables_dir))
    for stem, table in counted.items():
        written += list(write_table(table, Path(tables_dir) / stem))
    return written


_ABSENT = object()


def _config_value(config: Any, dotted: str) -> Any:
    """A config field by dotted name (`mfd.enabled` reaches into a subsection); `_ABSENT` when there is none."""
    for part in dotted.split("."):
        config = getattr(config, part, _ABSENT)
        if config is _ABSENT:
            break
    return config


def run_metrics_path(run: Run, metrics_dir: Path = Path("metrics")) -> tuple[Path, str]:
    """Where a run's metrics live (`metrics_file`) and what writes them (the training stage of the run, or of
    the main run an ablation row belongs to, which evaluates it)."""
    path = metrics_file(run.name, run.spec.group in ABLATION_GROUPS, metrics_dir, run.spec.parent)
    return path, f"the stage that trains {run.spec.parent or run.name}"


def scored_runs(params: Mapping[str, Any], method: str) -> dict[str, Run]:
    """Every run of `method` that the pipeline scores: its ablation runs and its runs listed in `methods`."""
    listed = set(params.get("methods") or ())
    return {name: resolve_run(dict(params), name) for name, spec in run_specs(dict(params)).items()
            if spec.method == method and (spec.group in ABLATION_GROUPS or name in listed)}


def load_results(runs: Iterable[Run], metrics_dir: Path = Path("metrics")) -> dict[str, dict[str, Any]]:
    """Every run's metrics JSON; a missing one is a DataError naming the file and its stage."""
    return {run.name: read_run_metrics(*run_metrics_path(run, metrics_dir)) for run in runs}


def ours_source(used: Iterable[OurRun]) -> str:
    """Where our side's numbers come from: the runs shown and their metrics files."""
    names = list(dict.fromkeys(ours.name for ours in used if ours.name))
    return (f"runs {', '.join(names)}; metrics/<run>.json and metrics/ablations/[<main run>/]<run>.json" if names
            else "no runs")


_COSTS: dict[tuple[str, Any, int, int], tuple[int, int]] = {}


def run_cost(run: Run, num_aus: int, input_size: int) -> tuple[int, int]:
    """Parameters and MACs per frame of a run's model at `input_size`², counted by
    `aubench.eval.efficiency_report.model_cost` (the efficiency stage's count). The model is built without
    its pretrained weights (irrelevant to the count, and perhaps not on this machine); memoised per config.
    """
    key = (run.method.name, run.method_config, num_aus, input_size)
    if key not in _COSTS:
        _COSTS[key] = model_cost(run.method, run.method_config, num_aus, input_size)
    return _COSTS[key]


def num_aus(results: Iterable[Mapping[str, Any] | None]) -> int | None:
    """How many AUs our runs were scored on (from the first metrics that record it)."""
    for metrics in results:
        if metrics and metrics.get("aus"):
            return len(metrics["aus"])
    return None


def protocol_notes(used: Iterable[OurRun], results: Mapping[str, Mapping[str, Any] | None],
                   paper_protocol: str | None = None) -> list[str]:
    """Notes on how our runs were obtained: the folds each was scored on (from its metrics), and whether
    the runs shown share one protocol (folds, epochs, profile), i.e. compare like for like."""
    ran = list({ours.name: ours for ours in used if ours.run is not None}.values())
    scored = [ours.name for ours in ran if results.get(ours.name) is not None]
    notes = []
    by_folds: dict[str, list[str]] = {}
    for name in scored:
        by_folds.setdefault(", ".join(fold_names(results[name])) or "folds not recorded", []).append(name)
    if len(by_folds) == 1:
        notes.append(f"Ours: every run scored on {next(iter(by_folds))}.")
    elif by_folds:
        notes.append("Ours: runs were scored on different folds — " +
                     "; ".join(f"{', '.join(group)}: {folds}" for folds, group in by_folds.items()) + ".")
    if any(len(fold_names(results[name])) < 2 for name in scored):
        notes.append("A run scored on one fold has no std (no \"±\"), and its numbers are not comparable "
                     "with the paper's 3-fold means.")
    by_protocol: dict[tuple, list[OurRun]] = {}
    for ours in ran:
        by_protocol.setdefault(ours.protocol.schedule, []).append(ours)
    paper = f" (the paper's: {paper_protocol})" if paper_protocol else ""
    if len(by_protocol) == 1:
        notes.append(f"Ours: like for like — every run trained under one protocol, "
                     f"{ran[0].protocol.describe(group=False)}{paper}.")
    elif by_protocol:
        notes.append("Ours: NOT like for like — the runs were trained under different protocols: " +
                     "; ".join(f"{', '.join(ours.run_label for ours in group)}: {group[0].protocol.describe()}"
                               for group in by_protocol.values()) + f"{paper}.")
    return notes
