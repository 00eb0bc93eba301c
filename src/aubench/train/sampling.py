"""Deterministic batching shared by single-process, gradient-accumulation and DDP training.

Each epoch draws one permutation from (seed, epoch). Step s takes the global batch
perm[s·B:(s+1)·B] and cuts it into `accumulate × world` equal chunks; rank r processes chunk
a·world + r at micro-step a. So 2 DDP ranks see exactly what one process accumulating over 2
micro-batches sees, and runs are reproducible and resumable. The incomplete last batch is dropped
(every rank must take the same number of steps). With `fraction` < 1 an epoch takes only the first
`fraction` of its permutation: a different share of the samples every epoch.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from aubench.errors import ConfigError


class StepBatchSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches of dataset indices, in order, for one epoch."""

    def __init__(self, size: int, batch_size: int, accumulate: int = 1, world: int = 1, rank: int = 0,
                 seed: int = 0, fraction: float = 1.0) -> None:
        chunks = accumulate * world
        self.size, self.batch_size, self.fraction = size, batch_size, fraction
        self.accumulate, self.world, self.rank, self.seed = accumulate, world, rank, seed
        self.epoch = 0
        if batch_size % chunks:
            raise ConfigError(f"train.batch_size: a batch of {batch_size} samples cannot be split into "
                              f"accumulate × world size = {chunks} equal micro-batches")
        self._check_size()

    def set_epoch(self, epoch: int, size: int | None = None) -> None:
        """Select the epoch's permutation; `size` updates the dataset size (clip windows change per epoch)."""
        self.epoch = epoch
        if size is not None:
            self.size = size
            self._check_size()

    def _check_size(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"train.batch_size: {self.size} training samples (× epoch_fraction {self.fraction}) "
                              f"are fewer than one batch of {self.batch_size}; lower the batch size or use more data")

    @property
    def steps(self) -> int:
        """Optimiser steps per epoch."""
        return int(self.size * self.fraction) // self.batch_size

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
