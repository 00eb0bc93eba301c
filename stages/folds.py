"""DVC stage `folds`: subject-exclusive 3-fold splits with per-fold training AU occurrence rates."""
from pathlib import Path

import numpy as np

from aubench.align.store import AlignedStore
from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.data.folds import FoldsConfig, build_fold_table
from aubench.io import write_json


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--store", default="data/aligned")
    parser.add_argument("--out", default="data/folds.json")
    args = parser.parse_args()
    config = section(FoldsConfig, load_params(args.params), "folds")
    store = AlignedStore.open(Path(args.store))
    labels_by_subject = {subject: np.concatenate([store.labels(sequence.key) for sequence in store.sequences
                                                  if sequence.subject == subject])
                         for subject in store.subjects()}
    write_json(Path(args.out), build_fold_table(store.dataset, store.aus, labels_by_subject, config.seed))


if __name__ == "__main__":
    run_stage(main)
