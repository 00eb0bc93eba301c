"""DVC stage `deploy`: train the run `deploy.run` on every labelled subject (its own params, from the pretrained
backbone when it is a run of `runs.from_pretrain`; `deploy.epochs` when set) and write `models/deploy/<run>.pt`, the self-contained model file that `aubench predict` loads."""
import dataclasses
from pathlib import Path

from aubench.align.store import AlignedStore
from aubench.align.transform import AlignConfig
from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.errors import ConfigError
from aubench.eval.report import EvaluateConfig, dataset_label
from aubench.landmarks.pipeline import LandmarkConfig
from aubench.train.config import RunPaths
from aubench.predict.model_file import DeployConfig, all_subjects_fold, save_model_file
from aubench.train.runs import import_plugins, resolve_run
from aubench.train.trainer import train_fold


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--store", default="data/aligned")
    args = parser.parse_args()
    params = load_params(args.params)
    import_plugins(params)
    deploy = section(DeployConfig, params, "deploy")
    run = resolve_run(params, deploy.run)
    if run.spec.group not in ("scratch", "from_pretrain") or run.name != run.method.name:
        raise ConfigError(f"deploy.run: {deploy.run!r} must be a run of `runs.scratch` or `runs.from_pretrain` "
                          "named after its method (a run that starts from another run's fold checkpoint has no "
                          "all-subject upstream)")
    config = run.train_config(params)
    config = dataclasses.replace(config, epochs=deploy.epochs or config.epochs)
    store = AlignedStore.open(Path(args.store))
    fold, au_rates = all_subjects_fold(store)
    out = Path(deploy.out_dir)
    # no test subject, so no predictions file is written; a pretraining's backbone serves every fold alike
    upstream = run.paths(fold.number).upstream if run.spec.group == "from_pretrain" else {}
    paths = RunPaths(out / run.name / "checkpoint.pt", out / run.name / "predictions.npz",
                     Path("dvclive/deploy") / run.name, upstream)
    model = train_fold(run.method, run.method_config, run.optim, config, store, fold, au_rates, paths)
    save_model_file(out / f"{run.name}.pt", run.name, run.method, run.method_config, model, store, config.input_size,
                    config.test_crop, section(EvaluateConfig, params, "evaluate").threshold,
                    section(AlignConfig, params, "align"), section(LandmarkConfig, params, "landmarks"),
                    dataset_label(store))


if __name__ == "__main__":
    run_stage(main)
