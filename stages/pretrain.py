"""DVC stage `pretrain`: learn a backbone from the unlabeled face pool (a run of the `runs.pretrain` params
list, then its ablation rows in `runs.ablation`), once for every fold: no labelled subject is ever in the pool.
Writes each run's finished checkpoint, its resolved configuration with the content hash of the online
backbone, and a DVCLive log of each loss term per epoch. Naming an ablation row trains that row alone.

The runs train one after another with every thread, not in a process each: a backbone's numbers depend on
its thread count, and every method starts from this one, so a pretraining is the same whichever rows are
listed beside it (three processes of one thread were 12 s faster, and moved the SynthAU baseline's fold 1
by 4 points of F1)."""
import hashlib
from pathlib import Path

import numpy as np
import torch

from aubench.align.store import AlignedStore
from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, to_dict
from aubench.data.folds import Fold
from aubench.errors import ConfigError
from aubench.io import write_json
from aubench.train.runs import ablation_rows, import_plugins, parse_assignments, resolve_run
from aubench.train.trainer import train_fold


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("run", help="a run of the `runs.pretrain` params list (or one of its ablation rows)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the method section of the run and its rows (repeatable)")
    parser.add_argument("--store", default="data/unlabeled/aligned", help="the aligned unlabeled face pool")
    args = parser.parse_args()
    params = load_params(args.params)
    import_plugins(params)
    overrides = parse_assignments(args.set)
    runs = [resolve_run(params, name, overrides) for name in (args.run, *ablation_rows(params, args.run))]
    if runs[0].spec.group != "pretrain":
        raise ConfigError(f"{args.run}: not a run of runs.pretrain (it is in runs.{runs[0].spec.group})")
    store = AlignedStore.open(Path(args.store))
    pool = {"dataset": store.dataset, "subjects": list(store.subjects()),
            "frames": sum(sequence.length for sequence in store.sequences)}
    for run in runs:
        train_config = run.train_config(params)
        paths = run.paths(None)
        model = train_fold(run.method, run.method_config, run.optim, train_config, store,
                           Fold(0, tuple(store.subjects()), ()), np.zeros(len(store.aus)), paths)
        trunk = b"".join(tensor.cpu().numpy().tobytes() for tensor in model.trunk.state_dict().values())
        write_json(paths.checkpoint.parent / "config.json",
                   {**run.resolved(), "profile": params.get("profile", "paper"), "train": to_dict(train_config),
                    "pool": pool, "backbone_sha256": hashlib.sha256(trunk).hexdigest(), "torch": torch.__version__})


if __name__ == "__main__":
    run_stage(main)
