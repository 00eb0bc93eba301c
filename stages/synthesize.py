"""DVC stage `synthesize`: write SynthAU in the BP4D (or DISFA) layout, its label statistics and a contact sheet."""
import logging
from pathlib import Path

from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.data.synthau import SynthConfig, generate, generate_labels
from aubench.data.synthau.report import contact_sheet, cooccurrence_figure, label_statistics
from aubench.io import write_json

log = logging.getLogger("synthesize")


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--stats", default="metrics/synthau_stats.json", help="per-AU base rates and counts")
    parser.add_argument("--labels", default="metrics/synthau_labels.json",
                        help="label statistics: base rates, co-occurrence, episode lengths")
    parser.add_argument("--cooccurrence", default="plots/synthau_cooccurrence.png", help="co-occurrence heatmap")
    parser.add_argument("--samples", default="plots/synthau_samples.png", help="contact sheet: identities x AU apexes")
    args = parser.parse_args()
    config = section(SynthConfig, load_params(args.params), "synthesize")
    summary = generate(config)
    write_json(Path(args.stats), summary.to_dict())
    rates = ", ".join(f"AU{au} {rate:.2f}" for au, rate in summary.base_rates.items())
    log.info("%d subjects, %d sequences, %d frames; base rates: %s", len(summary.subjects), summary.sequences,
             summary.frames, rates)
    statistics = label_statistics(generate_labels(config), config.fps)  # the labels just written (no images)
    write_json(Path(args.labels), statistics)
    cooccurrence_figure(statistics, Path(args.cooccurrence))
    contact_sheet(config, Path(args.samples))
    log.info("label statistics in %s, %s; contact sheet in %s", args.labels, args.cooccurrence, args.samples)


if __name__ == "__main__":
    run_stage(main)
