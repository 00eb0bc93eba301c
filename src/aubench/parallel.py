"""Process-parallel map with a progress bar, for stages that handle independent sequences."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def progress_map(function: Callable[..., Any], *iterables: Iterable[Any], total: int, desc: str,
                 workers: int = 1, unit: str = "seq") -> list[Any]:
    """`list(map(function, *iterables))` in `workers` processes (in order), with a tqdm bar and ETA."""
    from tqdm import tqdm

    bar = {"total": total, "desc": desc, "unit": unit}
    if workers <= 1:
        return list(tqdm(map(function, *iterables), **bar))
    with ProcessPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(function, *iterables), **bar))
