"""DVC stage `pretrain`: learn a backbone from the unlabeled face pool (a run of the `runs.pretrain`
params list), once for every fold: no labelled subject is ever in the pool. Writes the finished
checkpoint, its resolved configuration with the content hash of the online backbone, and a DVCLive log
of each loss term per epoch."""
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
from aubench.train.runs import import_plugins, parse_assignments, resolve_run
from aubench.train.trainer import train_fold


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("run", help="a run of the `runs.pretrain` params list")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the run's method section (repeatable)")
    parser.add_argument("--store", default="data/unlabeled/aligned", help="the aligned unlabeled face pool")
    args = parser.parse_args()
    params = load_params(args.params)
    import_plugins(params)
    run = resolve_run(params, args.run, parse_assignments(args.set))
    if run.spec.group != "pretrain":
        raise ConfigError(f"{args.run}: not a run of runs.pretrain (it is in runs.{run.spec.group})")
    store = AlignedStore.open(Path(args.store))
    train_config = run.train_config(params)
    paths = run.paths(None)
    model = train_fold(run.method, run.method_config, run.optim, train_config, store,
                       Fold(0, tuple(store.subjects()), ()), np.zeros(len(store.aus)), paths)
    trunk = b"".join(tensor.cpu().numpy().tobytes() for tensor in model.trunk.state_dict().values())
    write_json(paths.checkpoint.parent / "config.json",
               {**run.resolved(), "profile": params.get("profile", "paper"), "train": to_dict(train_config),
                "pool": {"dataset": store.dataset, "subjects": list(store.subjects()),
                         "frames": sum(sequence.length for sequence in store.sequences)},
                "backbone_sha256": hashlib.sha256(trunk).hexdigest(), "torch": torch.__version__})


if __name__ == "__main__":
    run_stage(main)
