"""DVC stage `train@<method>-<fold>`: train one method on one fold, save checkpoint and test probabilities."""
from pathlib import Path

from aubench.align.store import AlignedStore
from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section, to_dict
from aubench.data.folds import read_fold
from aubench.io import read_json, write_json
from aubench.models.registry import method_configs
from aubench.train.trainer import RunPaths, TrainConfig, train_fold


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--method", required=True)
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument("--store", default="data/aligned")
    parser.add_argument("--folds", default="data/folds.json")
    args = parser.parse_args()
    params = load_params(args.params)
    method, method_config, optim = method_configs(params, args.method)
    train_config = section(TrainConfig, params, "train")
    fold, au_rates = read_fold(read_json(Path(args.folds)), args.fold)
    run = Path("models") / args.method / f"fold{args.fold}"
    paths = RunPaths(run / "checkpoint.pt", Path("predictions") / args.method / f"fold{args.fold}.npz",
                     Path("dvclive") / "train" / args.method / f"fold{args.fold}")
    write_json(run / "config.json", {"method": args.method, "fold": args.fold, args.method: to_dict(method_config),
                                     "optim": to_dict(optim), "train": to_dict(train_config)})
    train_fold(method, method_config, optim, train_config, AlignedStore.open(Path(args.store)), fold, au_rates, paths)


if __name__ == "__main__":
    run_stage(main)
