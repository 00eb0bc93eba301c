"""Entry-point helper for stage scripts: logging setup and clean error reporting."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from aubench.errors import AubenchError


def stage_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the `--params` option every stage takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main; an AubenchError prints its message (which names the file or key) and exits 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except AubenchError as error:
        logging.getLogger("aubench").error("%s", error)
        sys.exit(2)
