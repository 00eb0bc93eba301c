"""DVC stages `evaluate@<method>` and `evaluate-ablation@<variant>`: per-AU F1/accuracy per fold and
mean ± std of one run, and optionally its F1-over-threshold curve."""
import dataclasses
from pathlib import Path

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.eval.report import EvaluateConfig, evaluate_method
from aubench.io import write_json
from aubench.train.config import AblateConfig


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--run", required=True, help="a method or ablation variant name")
    parser.add_argument("--predictions", default="predictions")
    parser.add_argument("--store", default="data/aligned")
    parser.add_argument("--out", help="metrics file (default: metrics/<run>.json)")
    parser.add_argument("--curve", help="where to write the F1-threshold curve (DVC plot data)")
    parser.add_argument("--ablation", action="store_true", help="evaluate on the folds of the `ablate` section")
    args = parser.parse_args()
    params = load_params(args.params)
    config = section(EvaluateConfig, params, "evaluate")
    if args.ablation:
        config = dataclasses.replace(config, folds=section(AblateConfig, params, "ablate").folds)
    result, curve = evaluate_method(args.run, Path(args.predictions) / args.run, Path(args.store), config,
                                    curve=bool(args.curve))
    write_json(Path(args.out or f"metrics/{args.run}.json"), result)
    if args.curve:
        write_json(Path(args.curve), curve)


if __name__ == "__main__":
    run_stage(main)
