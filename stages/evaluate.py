"""DVC stage `evaluate@<method>`: per-AU F1/accuracy per fold and mean ± std → metrics/<method>.json,
and the F1-over-threshold curve → plots/f1_threshold/<method>.json."""
from pathlib import Path

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.eval.report import EvaluateConfig, evaluate_method
from aubench.io import write_json


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--method", required=True)
    parser.add_argument("--predictions", default="predictions")
    parser.add_argument("--store", default="data/aligned")
    args = parser.parse_args()
    config = section(EvaluateConfig, load_params(args.params), "evaluate")
    result, curve = evaluate_method(args.method, Path(args.predictions) / args.method, Path(args.store), config)
    write_json(Path("metrics") / f"{args.method}.json", result)
    write_json(Path("plots") / "f1_threshold" / f"{args.method}.json", curve)


if __name__ == "__main__":
    run_stage(main)
