"""DVC stages `train`, `train-from` and `ablate`: train one run (an entry of the `runs` params section) on
one fold, saving its checkpoint, resolved configuration, DVCLive log and per-frame test probabilities.
`--print-config` prints the run's resolved configuration (after the profile) and trains nothing."""
from pathlib import Path

import yaml

from aubench.align.store import AlignedStore
from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, to_dict
from aubench.data.folds import read_fold
from aubench.io import read_json, write_json
from aubench.train.runs import import_plugins, parse_assignments, resolve_run
from aubench.train.trainer import train_fold


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("run", help="a run named in the `runs` params section")
    parser.add_argument("--fold", type=int, required=True)
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
    resolved = {**run.resolved(), "profile": params.get("profile", "paper"), "fold": args.fold,
                "train": to_dict(train_config)}
    if args.print_config:
        print(yaml.safe_dump(resolved, sort_keys=False))
        return
    fold, au_rates = read_fold(read_json(Path(args.folds)), args.fold)
    paths = run.paths(args.fold)
    write_json(paths.checkpoint.parent / "config.json", resolved)
    train_fold(run.method, run.method_config, run.optim, train_config, AlignedStore.open(Path(args.store)), fold,
               au_rates, paths)


if __name__ == "__main__":
    run_stage(main)
