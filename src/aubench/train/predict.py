"""Per-frame test probabilities for any method, in one file format.

The predictions file holds, for every frame of the given subjects in store order: `probabilities`
(F, N), `labels` (F, N) with -1 for unknown, `keys` and `positions` (which frame it is), and `aus`.
Samples say which frames they hold (`positions`) and which of those their prediction counts for
(`keep`), so single frames and tiled clips go through the same loop.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from aubench.align.store import AlignedStore
from aubench.data.samples import FrameIndex, FrameSampling, normalise
from aubench.models.registry import Method


@torch.no_grad()
def predict_subjects(model: torch.nn.Module, method: Method, sampling: FrameSampling, store: AlignedStore,
                     subjects: tuple[str, ...], input_size: int, batch_size: int, device: torch.device,
                     num_workers: int = 0, test_crop: str = "centre") -> dict[str, np.ndarray]:
    """Probabilities and labels for every frame of `subjects` (exactly one prediction per frame);
    `batch_size` counts frames, `test_crop` is how each frame is cut from the aligned face."""
    was_training = model.training
    model.eval()
    index = FrameIndex.for_subjects(store, subjects, labelled_only=False)
    per_sequence = {sequence.key: np.zeros((sequence.length, len(store.aus)), dtype=np.float32)
                    for sequence in store.sequences if sequence.subject in subjects}
    dataset = sampling.dataset(store, subjects, input_size, train=False, test_crop=test_crop)
    loader = DataLoader(dataset, batch_size=sampling.samples(batch_size), num_workers=num_workers)
    start = 0
    for batch in tqdm(loader, desc="predict", unit="batch", leave=False):
        inputs = {name: value.to(device) for name, value in batch.items()}
        scores = method.predict(model, {**inputs, "image": normalise(inputs["image"])})
        probabilities = method.probabilities(scores).reshape(len(scores), -1, len(store.aus)).cpu().numpy()
        positions, keep = batch["positions"].reshape(len(scores), -1), batch["keep"].reshape(len(scores), -1)
        for row in range(len(probabilities)):
            kept = keep[row].numpy()
            per_sequence[dataset.sample_key(start + row)][positions[row].numpy()[kept]] = probabilities[row][kept]
        start += len(probabilities)
    model.train(was_training)
    # FrameIndex lists every frame of each sequence in store order: the same order as these blocks.
    probabilities = np.concatenate(list(per_sequence.values()))
    labels = np.concatenate([store.labels(key) for key in per_sequence])
    return {"probabilities": probabilities, "labels": labels.astype(np.int8), "keys": index.keys,
            "positions": index.positions, "aus": np.array(store.aus)}


def save_predictions(path: Path, predictions: dict[str, np.ndarray]) -> None:
    """Write a predictions file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, **predictions)
    partial.replace(path)
