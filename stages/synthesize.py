"""DVC stage `synthesize`: write SynthAU in the BP4D (or DISFA) layout, plus its label statistics."""
import logging
from pathlib import Path

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.data.synthau import SynthConfig, generate
from aubench.io import write_json

log = logging.getLogger("synthesize")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--stats", default="metrics/synthau_stats.json", help="per-AU base rates and counts")
    args = parser.parse_args()
    config = section(SynthConfig, load_params(args.params), "synthesize")
    summary = generate(config)
    write_json(Path(args.stats), summary.to_dict())
    rates = ", ".join(f"AU{au} {rate:.2f}" for au, rate in summary.base_rates.items())
    log.info("%d subjects, %d sequences, %d frames; base rates: %s", len(summary.subjects), summary.sequences,
             summary.frames, rates)


if __name__ == "__main__":
    run_stage(main)
