"""DVC stage `tables`: STF's ablation tables (paper beside ours) → metrics/tables/stf_table{1..4}.{md,csv},
its figures → plots/ablations/stf_per_au_f1.png, stf_k_curve.png and stf_k_curve.json, and every method
of `tables.methods` beside the reference predictors → metrics/tables/references.{md,csv}."""
from pathlib import Path

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.report import write_stf_report
from aubench.report.references import TablesConfig, write_reference_table
from aubench.report.tables import read_run_metrics


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--metrics", default="metrics", help="folder holding <run>.json and ablations/<variant>.json")
    parser.add_argument("--tables", default="metrics/tables")
    parser.add_argument("--plots", default="plots/ablations")
    args = parser.parse_args()
    params = load_params(args.params)
    metrics = Path(args.metrics)
    write_stf_report(params, metrics, Path(args.tables), Path(args.plots))
    methods = {name: read_run_metrics(metrics / f"{name}.json", f"evaluate@{name}")
               for name in section(TablesConfig, params, "tables").methods}
    write_reference_table(methods, read_run_metrics(metrics / "difficulty.json", "difficulty"),
                          Path(args.tables) / "references")


if __name__ == "__main__":
    run_stage(main)
