"""Per-frame test probabilities for image-mode and clip-mode models, in one file format.

The predictions file holds, for every frame of the given subjects in store order: `probabilities`
(F, N), `labels` (F, N) with -1 for unknown, `keys` and `positions` (which frame it is), and `aus`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from aubench.align.store import AlignedStore
from aubench.models.registry import Method
from aubench.train.data import ClipDataset, FrameDataset, FrameIndex, normalise


def scores_to_probabilities(method: Method, scores: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(scores.float()) if method.outputs == "logits" else scores.float()


@torch.no_grad()
def predict_subjects(model: torch.nn.Module, method: Method, method_config, store: AlignedStore,
                     subjects: tuple[str, ...], input_size: int, batch_size: int, device: torch.device,
                     num_workers: int = 0) -> dict[str, np.ndarray]:
    """Probabilities and labels for every frame of `subjects` (exactly one prediction per frame)."""
    was_training = model.training
    model.eval()
    index = FrameIndex.for_subjects(store, subjects, labelled_only=False)
    per_sequence = {key: np.zeros((length, len(store.aus)), dtype=np.float32)
                    for key, length in _lengths(store, subjects).items()}
    if method.data_mode == "clips":
        dataset = ClipDataset(store, subjects, input_size, train=False, sampling=method_config.clips)
        _predict_clips(model, method, dataset, per_sequence, max(1, batch_size // dataset.length), device, num_workers)
    else:
        dataset = FrameDataset(store, subjects, input_size, train=False)
        _predict_frames(model, method, dataset, per_sequence, batch_size, device, num_workers)
    model.train(was_training)
    # FrameIndex lists every frame of each sequence in store order: the same order as these blocks.
    probabilities = np.concatenate(list(per_sequence.values()))
    labels = np.concatenate([store.labels(key) for key in per_sequence])
    return {"probabilities": probabilities, "labels": labels.astype(np.int8), "keys": index.keys,
            "positions": index.positions, "aus": np.array(store.aus)}


def _lengths(store: AlignedStore, subjects: tuple[str, ...]) -> dict[str, int]:
    return {sequence.key: sequence.length for sequence in store.sequences if sequence.subject in subjects}


def _predict_frames(model, method, dataset, per_sequence, batch_size, device, num_workers) -> None:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    start = 0
    for batch in tqdm(loader, desc="predict", unit="batch", leave=False):
        probabilities = scores_to_probabilities(method, model(normalise(batch["image"].to(device)))).cpu().numpy()
        for row, item in enumerate(range(start, start + len(probabilities))):
            per_sequence[str(dataset.index.keys[item])][dataset.index.positions[item]] = probabilities[row]
        start += len(probabilities)


def _predict_clips(model, method, dataset, per_sequence, batch_size, device, num_workers) -> None:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    start = 0
    for batch in tqdm(loader, desc="predict", unit="clip batch", leave=False):
        probabilities = scores_to_probabilities(method, model(normalise(batch["image"].to(device)))).cpu().numpy()
        for row in range(len(probabilities)):
            key = dataset.windows[start + row][0]
            keep = batch["keep"][row].numpy()
            per_sequence[key][batch["positions"][row].numpy()[keep]] = probabilities[row][keep]
        start += len(probabilities)


def save_predictions(path: Path, predictions: dict[str, np.ndarray]) -> None:
    """Write a predictions file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, **predictions)
    partial.replace(path)

