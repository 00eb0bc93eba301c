"""Entry-point helper for stage scripts: logging setup, clean error reporting and each stage's wall time."""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from aubench.errors import AubenchError
from aubench.io import write_json

#: Where each stage that DVC runs records its last wall time (`<stage>.json`), for the report's time table.
#: A log, not a pipeline output: times differ on every run, so they never enter a hashed output.
STAGE_TIMES = Path("logs/stage_times")


def stage_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the `--params` option every stage takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main; an AubenchError prints its message (which names the file or key) and exits 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        main()
    except AubenchError as error:
        logging.getLogger("aubench").error("%s", error)
        sys.exit(2)
    record_stage_time(time.perf_counter() - started)


def record_stage_time(seconds: float) -> None:
    """Under `dvc repro` (DVC sets DVC_STAGE and DVC_ROOT), write this stage's wall time to the log."""
    stage, root = os.environ.get("DVC_STAGE"), os.environ.get("DVC_ROOT")
    if not stage or not root:
        return
    finished = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    write_json(Path(root) / STAGE_TIMES / f"{stage.replace(os.sep, '_')}.json",
               {"stage": stage, "seconds": round(seconds, 2), "finished": finished})
