"""DVC stage `landmarks`: 68 points per frame for every sequence, plus a QA report."""
import logging
from pathlib import Path

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.data.datasets import dataset_config, load_sequences
from aubench.io import write_json
from aubench.landmarks.pipeline import RUN_FIELDS, LandmarkConfig, run_landmarks


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--dataset", default="dataset", metavar="SECTION",
                        help="params section with the dataset to read (unlabeled: the pretraining videos)")
    parser.add_argument("--out", default="data/landmarks")
    parser.add_argument("--report", default="metrics/landmarks.json")
    args = parser.parse_args()
    params = load_params(args.params)
    dataset = dataset_config(params, args.dataset)
    config = section(LandmarkConfig, params, "landmarks")
    ground_truth = Path(dataset.root) / config.ground_truth_dir
    report = run_landmarks(load_sequences(dataset), config, Path(args.out), ground_truth)
    run = {name: report.pop(name) for name in RUN_FIELDS}  # this run's facts: logged, not in the metrics file
    write_json(Path(args.report), {"dataset": dataset.name, **report})
    speed = f", {run['frames_per_second']:.1f} frames/s" if run["frames_per_second"] else ""
    logging.getLogger("aubench.landmarks").info(
        "%d frames (%d sequences computed in %.1f s%s, %d reused): detection rate %.3f, detector on %.1f%% "
        "of frames%s", report["frames"], run["sequences_computed"], run["seconds"], speed, run["sequences_reused"],
        report["detection_rate"], 100 * report["detector_rate"],
        f", NME {report['nme_vs_ground_truth']:.4f}" if "nme_vs_ground_truth" in report else "")


if __name__ == "__main__":
    run_stage(main)
