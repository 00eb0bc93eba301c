"""DVC stage `tables`: STF's ablation tables (paper beside ours) → metrics/tables/stf_table{1..4}.{md,csv},
and its figures → plots/ablations/stf_per_au_f1.png, stf_k_curve.png and stf_k_curve.json."""
from pathlib import Path

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params
from aubench.report import write_stf_report


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--metrics", default="metrics", help="folder holding <run>.json and ablations/<variant>.json")
    parser.add_argument("--tables", default="metrics/tables")
    parser.add_argument("--plots", default="plots/ablations")
    args = parser.parse_args()
    write_stf_report(load_params(args.params), Path(args.metrics), Path(args.tables), Path(args.plots))


if __name__ == "__main__":
    run_stage(main)
