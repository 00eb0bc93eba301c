"""One trainer for every method: fixed schedule, per-epoch checkpoints with automatic resume, NaN guard,
DVCLive logging and a tqdm bar; then per-frame test probabilities.

No model selection on the test fold: the model after the last epoch is the one evaluated.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler
from tqdm import tqdm

from aubench.align.store import AlignedStore
from aubench.data.folds import Fold
from aubench.errors import ModelError
from aubench.models.registry import Method
from aubench.seeding import seed_everything
from aubench.train.data import FrameDataset, normalise
from aubench.train.optim import OptimConfig, build_optimizer, lr_factor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """The `train` params section: engine settings and the CPU-sized schedule.

    `epochs` and `batch_size` override the method's paper values when set (null = the paper's).
    """

    seed: int = 0
    device: str = "auto"
    input_size: int = 112
    epochs: int | None = None
    batch_size: int | None = None
    num_workers: int = 0


@dataclass(frozen=True)
class RunPaths:
    """Where one method × fold run writes: checkpoint, predictions, DVCLive directory."""

    checkpoint: Path
    predictions: Path
    live_dir: Path


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def fingerprint(*configs: Any) -> str:
    """Hash of the resolved configuration and the training code: a checkpoint only resumes the same run."""
    digest = hashlib.sha256(json.dumps([repr(config) for config in configs]).encode())
    package = Path(__file__).resolve().parents[1]
    for folder in ("models", "losses", "train"):
        for source in sorted((package / folder).rglob("*.py")):
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def train_fold(method: Method, method_config: Any, optim: OptimConfig, train_config: TrainConfig,
               store: AlignedStore, fold: Fold, au_rates: np.ndarray, paths: RunPaths) -> None:
    """Train `method` on `fold`'s training subjects, then save per-frame test probabilities."""
    seed_everything(train_config.seed)
    device = resolve_device(train_config.device)
    model = method.build_model(method_config, len(store.aus)).to(device)
    loss_fn = method.build_loss(method_config, au_rates).to(device)
    optimizer = build_optimizer(model.parameters(), optim)
    epochs = train_config.epochs or optim.epochs
    batch_size = train_config.batch_size or optim.batch_size
    dataset = FrameDataset(store, fold.train_subjects, train_config.input_size, train=True, seed=train_config.seed)
    key = fingerprint(method_config, optim, train_config, fold, store.root.name)
    start_epoch = _resume(paths.checkpoint, key, model, optimizer)
    steps_per_epoch = -(-len(dataset) // batch_size)

    from dvclive import Live

    with Live(str(paths.live_dir), dvcyaml=None, save_dvc_exp=False, resume=start_epoch > 0) as live:
        for epoch in range(start_epoch, epochs):
            mean_loss = _train_epoch(model, loss_fn, optimizer, dataset, optim, batch_size, epoch, epochs,
                                     steps_per_epoch, train_config, device)
            live.log_metric("train/loss", mean_loss)
            live.log_metric("train/lr", optimizer.param_groups[0]["lr"])
            live.next_step()
            _save_checkpoint(paths.checkpoint, key, epoch + 1, model, optimizer)
    predict_fold(model, store, fold, train_config, device, paths.predictions)
    _save_checkpoint(paths.checkpoint, key, epochs, model, optimizer, finished=True)


def _train_epoch(model, loss_fn, optimizer, dataset, optim, batch_size, epoch, epochs, steps_per_epoch,
                 train_config, device) -> float:
    model.train()
    dataset.set_epoch(epoch)
    order = torch.Generator().manual_seed(train_config.seed * 100_003 + epoch)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=RandomSampler(dataset, generator=order),
                        num_workers=train_config.num_workers, drop_last=False)
    total = 0.0
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False)
    for step, batch in enumerate(bar):
        global_step = epoch * steps_per_epoch + step
        for group in optimizer.param_groups:
            group["lr"] = optim.lr * lr_factor(optim.schedule, global_step, epochs * steps_per_epoch)
        images = normalise(batch["image"].to(device, non_blocking=True))
        loss = loss_fn(model(images), batch["target"].to(device), batch["mask"].to(device))
        if not torch.isfinite(loss):
            raise ModelError(f"non-finite loss {loss.item()} at epoch {epoch + 1}, step {step} "
                             f"(batch of {len(images)} frames); lower the learning rate or check the data")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return total / max(len(loader), 1)


def _resume(path: Path, key: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Epochs already done according to a matching checkpoint (0 when there is none)."""
    if not path.is_file():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != key or state.get("finished"):
        log.info("%s: checkpoint is from a finished run or another configuration; training from scratch", path)
        return 0
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    log.info("%s: resuming after epoch %d", path, state["epoch"])
    return int(state["epoch"])


def _save_checkpoint(path: Path, key: str, epoch: int, model: torch.nn.Module, optimizer,
                     finished: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save({"fingerprint": key, "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "finished": finished}, partial)
    partial.replace(path)


@torch.no_grad()
def predict_fold(model: torch.nn.Module, store: AlignedStore, fold: Fold, train_config: TrainConfig,
                 device: torch.device, out_path: Path) -> None:
    """Per-frame probabilities for every frame of the test subjects (unknown labels kept, masked later)."""
    model.eval()
    dataset = FrameDataset(store, fold.test_subjects, train_config.input_size, train=False)
    loader = DataLoader(dataset, batch_size=64, num_workers=train_config.num_workers)
    probabilities, labels = [], []
    for batch in tqdm(loader, desc="predict", unit="batch", leave=False):
        logits = model(normalise(batch["image"].to(device)))
        probabilities.append(torch.sigmoid(logits.float()).cpu().numpy())
        labels.append(np.where(batch["mask"].numpy(), batch["target"].numpy(), -1))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out_path, probabilities=np.concatenate(probabilities), labels=np.concatenate(labels).astype(np.int8),
             keys=dataset.index.keys, positions=dataset.index.positions, aus=np.array(store.aus))
