"""Atomic JSON writes stay atomic when several processes (DDP ranks) write the same file."""
import multiprocessing
from pathlib import Path

from aubench.io import read_json, write_json


def _write_many(path: Path, rank: int) -> None:
    for step in range(300):
        write_json(path, {"rank": rank, "step": step})


def test_concurrent_writers_never_lose_the_file(tmp_path):
    path = tmp_path / "run" / "config.json"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(path, rank)) for rank in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert read_json(path)["step"] == 299
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.json"]
