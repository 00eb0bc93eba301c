"""DVC stage `difficulty`: reference predictors per AU on the method folds (always-positive, a single-frame
landmark probe and the same probe with sequence context), so every F1 in the tables has a floor beside it."""
from pathlib import Path

from aubench.align.store import AlignedStore
from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.data.folds import read_fold
from aubench.eval.difficulty import DifficultyConfig, difficulty_report
from aubench.eval.report import EvaluateConfig, dataset_label
from aubench.io import read_json, write_json


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--store", default="data/aligned")
    parser.add_argument("--folds", default="data/folds.json")
    parser.add_argument("--out", default="metrics/difficulty.json")
    args = parser.parse_args()
    params = load_params(args.params)
    config = section(DifficultyConfig, params, "difficulty")
    store = AlignedStore.open(Path(args.store))
    table = read_json(Path(args.folds))
    folds = [read_fold(table, number)[0] for number in section(EvaluateConfig, params, "evaluate").folds]
    write_json(Path(args.out), difficulty_report(store, folds, config, dataset_label(store)))


if __name__ == "__main__":
    run_stage(main)
