"""Deterministic batching shared by single-process, gradient-accumulation and DDP training.

Each epoch draws one permutation from (seed, epoch). Step s takes the global batch
perm[s·B:(s+1)·B] and cuts it into `accumulate × world` equal chunks; rank r processes chunk
a·world + r at micro-step a. So 2 DDP ranks see exactly what one process accumulating over 2
micro-batches sees, and runs are reproducible and resumable. The incomplete last batch is dropped
(every rank must take the same number of steps).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches of dataset indices, in order, for one epoch."""

    def __init__(self, size: int, batch_size: int, accumulate: int = 1, world: int = 1, rank: int = 0,
                 seed: int = 0) -> None:
        chunks = accumulate * world
        if batch_size % chunks:
            raise ValueError(f"batch size {batch_size} is not divisible by accumulate × world = {chunks}")
        if size < batch_size:
            raise ValueError(f"{size} training samples are fewer than one batch of {batch_size}")
        self.size, self.batch_size = size, batch_size
        self.accumulate, self.world, self.rank, self.seed = accumulate, world, rank, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def steps(self) -> int:
        """Optimiser steps per epoch."""
        return self.size // self.batch_size

    def __len__(self) -> int:
        return self.steps * self.accumulate

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.size)
        chunk = self.batch_size // (self.accumulate * self.world)
        for step in range(self.steps):
            batch = order[step * self.batch_size:(step + 1) * self.batch_size]
            for micro in range(self.accumulate):
                index = micro * self.world + self.rank
                yield batch[index * chunk:(index + 1) * chunk].tolist()
