"""DVC stages `train`, `train-from` and `train-pretrained`: train one run (an entry of the `runs` params
section) on each of its folds (`evaluate.folds`, or `ablate.folds` for an ablation row), and a `from_upstream`
or `from_pretrain` run's ablation rows (`runs.ablation`) on theirs, `train.fold_processes` trainings at once on a
CPU, saving per fold its checkpoint, resolved configuration, DVCLive log and per-frame test probabilities; then
evaluate each run: per-AU F1/accuracy per fold and mean ± std in `metrics/<run>.json` (an ablation run's in
`metrics/ablations/`) and, for a main run, its F1-threshold curve. A fold whose finished checkpoint matches the
run (configuration, code, data, starting weights) is not trained again, so a stage re-run after an interruption
(or after a change to the evaluation) redoes only what changed. Naming an ablation row trains that row alone.
`--print-config` prints the run's resolved configuration (after the profile) and trains nothing."""
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section, to_dict
from aubench.eval.report import EvaluateConfig, evaluate_method, metrics_file
from aubench.io import write_json
from aubench.train.runs import ABLATION_GROUPS, Run, ablation_rows, import_plugins, parse_assignments, resolve_run
from aubench.train.folds import train_folds


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("run", help="a run named in the `runs` params section")
    parser.add_argument("--fold", type=int, action="append", metavar="N",
                        help="train only this fold (repeatable; default: every fold of the run's protocol; its "
                             "ablation rows train on those of theirs)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the method section of the run and its rows (repeatable)")
    parser.add_argument("--store", default="data/aligned")
    parser.add_argument("--folds", default="data/folds.json")
    parser.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    args = parser.parse_args()
    params = load_params(args.params)
    import_plugins(params)
    overrides = parse_assignments(args.set)
    runs = [resolve_run(params, name, overrides) for name in (args.run, *ablation_rows(params, args.run))]
    folds = {run.name: tuple(args.fold or run.folds(params)) for run in runs[:1]}
    folds |= {run.name: tuple(n for n in run.folds(params) if not args.fold or n in args.fold) for run in runs[1:]}
    resolved = {run.name: resolved_config(run, params) for run in runs}
    if args.print_config:
        print(yaml.safe_dump({**resolved[args.run], "folds": list(folds[args.run])}, sort_keys=False))
        return
    folds = {name: numbers for name, numbers in folds.items() if numbers}
    if folds:
        train_folds(params, folds, overrides, Path(args.store), Path(args.folds), resolved)
    for run in runs:
        if set(folds.get(run.name, ())) == set(run.folds(params)):  # a partial run (`--fold`) is scored with its other folds
            evaluate_run(run, params, Path(args.store))
    if runs[0].spec.group in ("from_upstream", "from_pretrain"):  # their stages output this folder, rows or not
        Path("metrics/ablations", args.run).mkdir(parents=True, exist_ok=True)


def resolved_config(run: Run, params: dict[str, Any]) -> dict[str, Any]:
    """The run's configuration as saved beside its checkpoints."""
    return {**run.resolved(), "profile": params.get("profile", "paper"), "train": to_dict(run.train_config(params))}


def evaluate_run(run: Run, params: dict, store: Path) -> None:
    """Score the run's predictions on its protocol's folds; a main run also gets its F1-threshold curve."""
    config = replace(section(EvaluateConfig, params, "evaluate"), folds=run.folds(params))
    ablation = run.spec.group in ABLATION_GROUPS
    result, curve = evaluate_method(run.name, Path("predictions") / run.spec.folder, store, config, curve=not ablation)
    write_json(metrics_file(run.name, ablation, parent=run.spec.parent), result)
    if not ablation:
        write_json(Path("plots/f1_threshold") / f"{run.name}.json", curve)


if __name__ == "__main__":
    run_stage(main)
