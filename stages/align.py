"""DVC stage `align`: similarity-aligned face crops in a memory-mappable store with labels."""
from pathlib import Path

from aubench.align.store import build_store
from aubench.align.transform import AlignConfig
from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.data.datasets import dataset_config, load_sequences


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--dataset", default="dataset", metavar="SECTION",
                        help="params section with the dataset to read (unlabeled: the pretraining videos)")
    parser.add_argument("--landmarks", default="data/landmarks")
    parser.add_argument("--out", default="data/aligned")
    args = parser.parse_args()
    params = load_params(args.params)
    dataset = dataset_config(params, args.dataset)
    build_store(load_sequences(dataset), Path(args.landmarks), dataset, section(AlignConfig, params, "align"),
                Path(args.out))


if __name__ == "__main__":
    run_stage(main)
