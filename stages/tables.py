"""DVC stage `tables`: for each entry of `methods` with a paper module (aubench.report.papers.<method>), that
paper's tables and figures — STF: metrics/tables/stf_table{1..4}.{md,csv} and plots/ablations/stf_per_au_f1.png,
stf_k_curve.png, stf_k_curve.json —, then every method of `methods` beside the reference predictors →
metrics/tables/references.{md,csv}."""
from pathlib import Path

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params
from aubench.report import write_reports
from aubench.train.runs import import_plugins


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--metrics", default="metrics", help="folder holding <run>.json and ablations/<run>.json")
    parser.add_argument("--tables", default="metrics/tables")
    parser.add_argument("--plots", default="plots/ablations")
    args = parser.parse_args()
    params = load_params(args.params)
    import_plugins(params)
    write_reports(params, Path(args.metrics), Path(args.tables), Path(args.plots))


if __name__ == "__main__":
    run_stage(main)
