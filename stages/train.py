"""DVC stages `train@<method>-<fold>` and `ablate@<variant>-<fold>`: train one run on one fold, saving its
checkpoint, resolved configuration, DVCLive log and per-frame test probabilities."""
import dataclasses
from pathlib import Path

from aubench.align.store import AlignedStore
from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section, to_dict
from aubench.data.folds import read_fold
from aubench.io import read_json, write_json
from aubench.train.runs import AblateConfig, parse_assignments, resolve_run
from aubench.train.trainer import TrainConfig, train_fold


def main() -> None:
    parser = stage_parser(__doc__)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--method", help="a registered method, trained with its params section")
    target.add_argument("--variant", help="an entry of the `ablations` params section")
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the method's params section (repeatable)")
    parser.add_argument("--store", default="data/aligned")
    parser.add_argument("--folds", default="data/folds.json")
    args = parser.parse_args()
    params = load_params(args.params)
    run = resolve_run(params, args.method, args.variant, parse_assignments(args.set))
    train_config = section(TrainConfig, params, "train")
    if args.variant:
        ablate = section(AblateConfig, params, "ablate")
        train_config = dataclasses.replace(train_config, epochs=ablate.epochs or train_config.epochs)
    fold, au_rates = read_fold(read_json(Path(args.folds)), args.fold)
    paths = run.paths(args.fold)
    write_json(paths.checkpoint.parent / "config.json",
               {**run.resolved(), "fold": args.fold, "train": to_dict(train_config)})
    train_fold(run.method, run.method_config, run.optim, train_config, AlignedStore.open(Path(args.store)), fold,
               au_rates, paths)


if __name__ == "__main__":
    run_stage(main)
