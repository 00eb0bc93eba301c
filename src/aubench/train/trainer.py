"""One trainer for every method: fixed schedule, gradient accumulation, mixed precision on CUDA, DDP
under torchrun, per-epoch checkpoints with automatic resume, a NaN guard, DVCLive logging and a tqdm bar;
then per-frame test probabilities.

The trainer knows methods only through their contract (`aubench.models.registry.Method`): it samples
with the method's sampling object, sums the named loss terms of the method's step (logging each), runs
its hooks and checkpoints their state, loads its upstream runs and optimises only its trainable
parameters. No model selection on the test fold: the evaluated model is the last epoch's, or — only
when a validation split of training subjects is configured with early stopping — the best on that split.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from aubench.align.store import AlignedStore
from aubench.data.aus import au_names
from aubench.data.folds import Fold
from aubench.data.samples import normalise
from aubench.errors import ConfigError, ModelError
from aubench.eval.metrics import score_fold
from aubench.models.backbones import frozen_trunk_keys, memoise_frozen_trunks
from aubench.models.registry import Method
from aubench.seeding import rng, seed_everything
from aubench.train import distributed
from aubench.train.config import RunPaths, TrainConfig
from aubench.train.optim import OptimConfig, build_optimizer, learning_rate
from aubench.train.predict import predict_subjects, save_predictions
from aubench.train.sampling import StepBatchSampler

log = logging.getLogger(__name__)


def fingerprint(*configs: Any) -> str:
    """Hash of the resolved configuration and the training code: a checkpoint only resumes the same run."""
    digest = hashlib.sha256(json.dumps([repr(config) for config in configs]).encode())
    package = Path(__file__).resolve().parents[1]
    for folder in ("models", "losses", "train", "data"):
        for source in sorted((package / folder).glob("*.py")) + sorted((package / folder / "blocks").glob("*.py")):
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def split_validation(fold: Fold, count: int, seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Hold `count` training subjects out for validation (seeded); returns (train, validation)."""
    if count == 0:
        return fold.train_subjects, ()
    if count >= len(fold.train_subjects):
        raise ConfigError(f"train.validation_subjects={count} leaves no training subject in fold {fold.number}")
    held_out = rng(seed, "validation", fold.number).choice(fold.train_subjects, size=count, replace=False)
    return tuple(s for s in fold.train_subjects if s not in held_out), tuple(sorted(held_out))


class FoldTrainer:
    """Trains one method on one fold; `run()` does everything and writes the predictions file."""

    def __init__(self, method: Method, method_config: Any, optim: OptimConfig, config: TrainConfig,
                 store: AlignedStore, fold: Fold, au_rates: np.ndarray, paths: RunPaths) -> None:
        seed_everything(config.seed)
        self.topology, self.device = distributed.init(config.device)
        self.method, self.method_config, self.optim, self.config = method, method_config, optim, config
        self.store, self.fold, self.paths = store, fold, paths
        self.sampling = method.sampling(method_config)
        self.epochs = config.epochs or optim.epochs
        batch_size = optim.batch_size if config.batch_size is None else self.sampling.samples(config.batch_size)
        self.train_subjects, self.validation_subjects = split_validation(fold, config.validation_subjects, config.seed)
        self.dataset = self.sampling.dataset(store, self.train_subjects, config.input_size, True, config.seed,
                                             augment=config.augment)
        self.sampler = StepBatchSampler(len(self.dataset), batch_size, config.accumulate, self.topology.world,
                                        self.topology.rank, config.seed, config.epoch_fraction)
        self.model = method.build_model(method_config, len(store.aus))
        self._load_upstream()
        if not config.augment and self.device.type == "cpu":  # a fixed trunk's frames recur every epoch; on a GPU
            memoise_frozen_trunks(self.model)                  # the per-frame passes would cost more than they save
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=self.memory_format)
        self.loss_fn = method.build_loss(method_config, au_rates).to(self.device)
        self.optimizer = build_optimizer(method.trainable(self.model), optim)
        self.hooks = method.hooks(method_config, self.model, self.loss_fn)
        self.autocast_dtype = _autocast_dtype(self.device, config.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        # The starting checkpoints are part of the run: a retrained source must not resume an older run.
        sources = {slot: hashlib.sha256(path.read_bytes()).hexdigest() for slot, path in paths.upstream.items()}
        self.key = fingerprint(method_config, optim, config, fold, store.signature(), self.topology.world, sources)
        self.best: dict[str, Any] | None = None
        self.last_validation_f1: float | None = None

    def _load_upstream(self) -> None:
        for slot, run in self.method.upstream(self.method_config).items():
            path = self.paths.upstream.get(slot)
            if path is None:
                raise ConfigError(f"{self.method.name}: upstream {slot!r} (run {run!r}) has no checkpoint path")
            self.method.load_upstream(self.model, slot, path)
            log.info("%s: %s initialised from %s", self.method.name, slot, path)

    def run(self) -> None:
        """Train (resuming a matching interrupted run), then predict the test subjects."""
        start = self._resume()
        if start is None:  # this very run finished before (a stage re-run after a later fold was interrupted)
            self._finish()
            return
        wrapped = self._wrap(self.model)
        live = self._live(resume=start > 0)
        try:
            for epoch in range(start, self.epochs):
                summary = self.train_epoch(wrapped, epoch)
                summary.update(self._validate())
                self._log(live, summary)
                self._save_checkpoint(epoch + 1)
                if self._should_stop(epoch):
                    log.info("early stopping after epoch %d (best validation F1 at epoch %d)",
                             epoch + 1, self.best["epoch"])
                    break
            if self.best is not None:
                self.model.load_state_dict(self.best["model"])
            self._finish()
        finally:
            if live is not None:
                live.end()

    def _finish(self) -> None:
        """Predict the test subjects and mark the checkpoint finished (main process), then wait for the others."""
        if self.topology.is_main:
            if self.method.predicts and self.fold.test_subjects:  # a deploy run has no test subject
                save_predictions(self.paths.predictions, self._predict(self.fold.test_subjects))
            self._save_checkpoint(self.epochs, finished=True)
        distributed.barrier()

    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.topology.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _live(self, resume: bool):
        if not self.topology.is_main:
            return None
        from dvclive import Live

        return Live(str(self.paths.live_dir), dvcyaml=None, save_dvc_exp=False, resume=resume)

    def train_epoch(self, model: torch.nn.Module, epoch: int) -> dict[str, float]:
        self.hooks.on_epoch_start(epoch)
        model.train()
        self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch, len(self.dataset))
        loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=self.config.num_workers,
                            pin_memory=self.device.type == "cuda")
        accumulate, totals = self.config.accumulate, defaultdict(float)
        collected: list[tuple[np.ndarray, np.ndarray]] = []
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch", leave=False,
                   disable=not self.topology.is_main)
        for micro_step, batch in enumerate(bar):
            step, micro = divmod(micro_step, accumulate)
            if micro == 0:
                lr = learning_rate(self.optim, epoch, step, self.sampler.steps, self.epochs)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
            sync = micro == accumulate - 1
            with (contextlib.nullcontext() if sync or self.topology.world == 1 else model.no_sync()):
                output = self._forward(model, batch)
                loss = sum(output.terms.values())
                self._check_finite(output.terms, epoch, step, batch)
                self.scaler.scale(loss / accumulate).backward()
            if sync:
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.hooks.after_optimizer_step()
            for name, value in {"loss": loss, **output.terms}.items():
                totals[name] += value.item() / accumulate
            if output.scores is not None:
                collected.append(self._collect(output.scores, batch))
            bar.set_postfix(loss=f"{loss.item():.4f}")
        steps = max(self.sampler.steps, 1)
        terms = {name: total / steps for name, total in totals.items()}
        self.hooks.on_epoch_end(epoch, dict(terms))
        summary = {"train/lr": lr, "train/loss": terms.pop("loss")}
        summary.update({f"train/terms/{name}": value for name, value in terms.items()} if len(terms) > 1 else {})
        if collected:
            summary.update(_f1_summary("train", *map(np.concatenate, zip(*collected)), self.store.aus))
        return summary

    def _forward(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]):
        on_device = {name: value.to(self.device, non_blocking=True) for name, value in batch.items()}
        for name, value in on_device.items():  # every uint8 field is an image (e.g. two augmented views)
            if value.dtype == torch.uint8:
                value = normalise(value)
                on_device[name] = value.contiguous(memory_format=self.memory_format) if value.dim() == 4 else value
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            output = self.method.step(model, self.loss_fn, on_device)
        output.terms = {name: term.float() for name, term in output.terms.items()}
        if output.scores is not None:
            output.scores = output.scores.detach()
        return output

    def _collect(self, scores: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        probabilities = self.method.probabilities(scores).reshape(-1, len(self.store.aus)).cpu().numpy()
        labels = torch.where(batch["mask"], batch["target"], -1).reshape(-1, len(self.store.aus)).numpy()
        return probabilities, labels

    def _check_finite(self, terms: dict[str, torch.Tensor], epoch: int, step: int,
                      batch: dict[str, torch.Tensor]) -> None:
        bad = {name: term.item() for name, term in terms.items() if not torch.isfinite(term)}
        if bad:
            raise ModelError(f"non-finite loss {bad} at epoch {epoch + 1}, step {step + 1} "
                             f"(batch of {len(batch['image'])} samples, fold {self.fold.number}); "
                             "lower the learning rate or check the data")

    def _validate(self) -> dict[str, float]:
        if not self.validation_subjects or not self.method.predicts:
            return {}
        predictions = self._predict(self.validation_subjects)
        return _f1_summary("validation", predictions["probabilities"], predictions["labels"], self.store.aus)

    def _predict(self, subjects: tuple[str, ...]) -> dict[str, np.ndarray]:
        return predict_subjects(self.model, self.method, self.sampling, self.store, subjects,
                                self.config.input_size, self.config.predict_batch_size, self.device,
                                self.config.num_workers, self.config.test_crop)

    def _should_stop(self, epoch: int) -> bool:
        """Track the best validation F1; stop once it has not improved for `patience` epochs."""
        if not self.config.early_stopping_patience or self.last_validation_f1 is None:
            return False
        if self.best is None or self.last_validation_f1 > self.best["score"]:
            self.best = {"epoch": epoch + 1, "score": self.last_validation_f1,
                         "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()}}
        return epoch + 1 - self.best["epoch"] >= self.config.early_stopping_patience

    def _log(self, live, summary: dict[str, float]) -> None:
        self.last_validation_f1 = summary.get("validation/mean_f1")
        if live is None:
            return
        for name, value in summary.items():
            if np.isfinite(value):
                live.log_metric(name, float(value))
        live.next_step()

    def _resume(self) -> int | None:
        """Epochs already done according to a matching checkpoint: 0 when there is none, None when it is
        this run's finished checkpoint (its weights are loaded; only the predictions are computed again)."""
        path = self.paths.checkpoint
        if not path.is_file():
            return 0
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state.get("fingerprint") != self.key:
            log.info("%s: checkpoint is from another configuration or data; training from epoch 1", path)
            return 0
        if state.get("finished"):
            self.model.load_state_dict(state["model"])
            self.best = state.get("best")
            log.info("%s: this run finished already; predicting with its weights", path)
            return None
        expected = set(self.model.state_dict()) - frozen_trunk_keys(self.model)
        if set(state["model"]) != expected:
            raise ModelError(f"{path}: its weights do not fit this model (differing keys "
                             f"{sorted(set(state['model']) ^ expected)[:3]}); delete it to train from epoch 1")
        self.model.load_state_dict(state["model"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.hooks.load_state_dict(state["hooks"])
        torch.set_rng_state(state["rng"].cpu())
        self.best = state.get("best")
        log.info("%s: resuming after epoch %d", path, state["epoch"])
        return int(state["epoch"])

    def _save_checkpoint(self, epoch: int, finished: bool = False) -> None:
        if not self.topology.is_main:
            return
        path = self.paths.checkpoint
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        state = {"fingerprint": self.key, "epoch": epoch, "model": self.model.state_dict(),
                 "hooks": self.hooks.state_dict(), "finished": finished, "best": self.best}
        if finished:  # never resumed: no optimiser state, and the best epoch's weights are `model` already
            state["best"] = self.best and {key: value for key, value in self.best.items() if key != "model"}
        else:  # frozen trunks are rebuilt on resume: a linear probe's epoch then writes kilobytes, not 45 MB
            fixed = frozen_trunk_keys(self.model)
            state.update(model={key: value for key, value in state["model"].items() if key not in fixed},
                         optimizer=self.optimizer.state_dict(), scaler=self.scaler.state_dict(),
                         rng=torch.get_rng_state())
        torch.save(state, partial)
        partial.replace(path)


def _autocast_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 where the GPU has it, else fp16 (with loss scaling); no autocast on CPU."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _f1_summary(prefix: str, probabilities: np.ndarray, labels: np.ndarray, aus: tuple[int, ...]) -> dict[str, float]:
    scores = score_fold(probabilities, labels)
    summary = {f"{prefix}/mean_f1": scores.mean_f1}
    summary.update({f"{prefix}/f1/{name}": value for name, value in zip(au_names(aus), scores.f1)})
    return summary


def train_fold(method: Method, method_config: Any, optim: OptimConfig, config: TrainConfig, store: AlignedStore,
               fold: Fold, au_rates: np.ndarray, paths: RunPaths) -> torch.nn.Module:
    """Train `method` on `fold`, save its per-frame test probabilities, and return the trained model."""
    try:
        trainer = FoldTrainer(method, method_config, optim, config, store, fold, au_rates, paths)
        trainer.run()
        return trainer.model
    finally:
        distributed.shutdown()
