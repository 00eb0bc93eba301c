"""DVC stage `synthesize-pool`: SynthAU's unlabeled face videos (identities in no fold) for pretraining."""
from aubench.cli import run_stage, stage_parser
from aubench.config import load_params, section
from aubench.data.synthau import SynthConfig
from aubench.data.synthau.pool import generate_pool


def main() -> None:
    args = stage_parser(__doc__).parse_args()
    generate_pool(section(SynthConfig, load_params(args.params), "synthesize"))


if __name__ == "__main__":
    run_stage(main)
