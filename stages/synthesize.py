"""DVC stage `synthesize`: write SynthAU in the BP4D layout, plus its label statistics."""
from pathlib import Path

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.data.synthau.minimal import SynthConfig, generate
from aubench.io import write_json


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--stats", default="metrics/synthau_stats.json")
    args = parser.parse_args()
    config = section(SynthConfig, load_params(args.params), "synthesize")
    write_json(Path(args.stats), {"dataset": "SynthAU (synthetic)", "layout": config.layout,
                                  "base_rates": generate(config)})


if __name__ == "__main__":
    run_stage(main)
