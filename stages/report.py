"""DVC stage `report`: every evaluated run side by side with subject-level bootstrap intervals and paired
tests → reports/results.md, reports/summary.json (the small metrics file to compare across commits),
reports/stage_times.json, plots/training/<run>/*.json (DVCLive curves, folds overlaid) and the README's
results table between its markers."""
from pathlib import Path

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params
from aubench.report.results_page import ReportPaths, write_results_report
from aubench.train.runs import import_plugins


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--readme", default="README.md", help="file whose results markers get the table")
    args = parser.parse_args()
    params = load_params(args.params)
    import_plugins(params)
    write_results_report(params, ReportPaths(readme=Path(args.readme)))


if __name__ == "__main__":
    run_stage(main)
