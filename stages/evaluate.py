"""DVC stage `evaluate@<method>`: per-AU F1 and accuracy per fold and mean ± std → metrics/<method>.json."""
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
    result = evaluate_method(args.method, Path(args.predictions) / args.method, Path(args.store), config)
    write_json(Path("metrics") / f"{args.method}.json", result)


if __name__ == "__main__":
    run_stage(main)
