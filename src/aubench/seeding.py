"""One seeding helper: every random choice in aubench flows from params' seeds through here."""
from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) and ask PyTorch for deterministic kernels."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def rng(seed: int, *keys: int | str) -> np.random.Generator:
    """An independent generator for one purpose, derived from a seed and stable keys."""
    material = [seed] + [_key_int(key) for key in keys]
    return np.random.default_rng(np.random.SeedSequence(material))


def _key_int(key: int | str) -> int:
    if isinstance(key, int):
        return key
    return int.from_bytes(key.encode(), "little") % (2**63)
