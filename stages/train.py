"""DVC stages `train`, `train-from`, `train-pretrained`, `ablate` and `ablate-pretrained`: train one run (an
entry of the `runs` params section) on each of its folds (`evaluate.folds`, or `ablate.folds` for an ablation
run; `train.fold_processes` of them at once on a CPU), saving per fold its checkpoint, resolved configuration,
DVCLive log and per-frame test probabilities, then evaluate it: per-AU F1/accuracy per fold and mean ± std in `metrics/<run>.json`
(`metrics/ablations/<run>.json` for an ablation run) and, for a main run, its F1-threshold curve. A fold whose
finished checkpoint matches the run (configuration, code, data, starting weights) is not trained again, so a
stage re-run after an interruption (or after a change to the evaluation) redoes only what changed.
`--print-config` prints the run's resolved configuration (after the profile) and trains nothing."""
from dataclasses import replace
from pathlib import Path

import yaml

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section, to_dict
from aubench.eval.report import EvaluateConfig, evaluate_method, metrics_file
from aubench.io import write_json
from aubench.train.runs import ABLATION_GROUPS, Run, import_plugins, parse_assignments, resolve_run
from aubench.train.folds import train_folds


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("run", help="a run named in the `runs` params section")
    parser.add_argument("--fold", type=int, action="append", metavar="N",
                        help="train only this fold (repeatable; default: every fold of the run's protocol)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the run's method section (repeatable)")
    parser.add_argument("--store", default="data/aligned")
    parser.add_argument("--folds", default="data/folds.json")
    parser.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    args = parser.parse_args()
    params = load_params(args.params)
    import_plugins(params)
    run = resolve_run(params, args.run, parse_assignments(args.set))
    train_config = run.train_config(params)
    folds = tuple(args.fold or run.folds(params))
    resolved = {**run.resolved(), "profile": params.get("profile", "paper"), "train": to_dict(train_config)}
    if args.print_config:
        print(yaml.safe_dump({**resolved, "folds": list(folds)}, sort_keys=False))
        return
    train_folds(params, args.run, parse_assignments(args.set), folds, Path(args.store), Path(args.folds), resolved)
    if set(folds) == set(run.folds(params)):  # a partial run (`--fold`) is scored with its other folds
        evaluate_run(run, params, Path(args.store))


def evaluate_run(run: Run, params: dict, store: Path) -> None:
    """Score the run's predictions on its protocol's folds; a main run also gets its F1-threshold curve."""
    config = replace(section(EvaluateConfig, params, "evaluate"), folds=run.folds(params))
    ablation = run.spec.group in ABLATION_GROUPS
    result, curve = evaluate_method(run.name, Path("predictions") / run.name, store, config, curve=not ablation)
    write_json(metrics_file(run.name, ablation), result)
    if not ablation:
        write_json(Path("plots/f1_threshold") / f"{run.name}.json", curve)


if __name__ == "__main__":
    run_stage(main)
