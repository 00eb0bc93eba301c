"""The method contract, checked for every registered method (like timm's tests over `list_models()`): a
method added later is covered here without new test code.

Each method is built with its config as the shipped params resolve it (the default profile; a method with no
params section, such as the throwaway one, with its config's defaults), takes one training step on a batch
sampled from a tiny aligned store by its own sampling object (images normalised as the trainer does), and must give finite named loss terms whose sum reaches
every parameter it trains; its cost is counted; its model and hook state survive a checkpoint round trip.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from aubench.align.store import AlignedStore
from aubench.config import load_params
from aubench.data.samples import normalise
from aubench.eval.efficiency_report import model_cost
from aubench.models.registry import StepOutput, get_method, method_names
from aubench.train.runs import method_configs
from tests.conftest import make_store
from tests.train import throwaway_method  # noqa: F401  (a method from outside the package: landmarks, two terms, hooks)

NUM_AUS = 12
RATES = np.linspace(0.1, 0.6, NUM_AUS)
PARAMS = load_params("params.yaml")
SIZE = PARAMS["train"]["input_size"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> AlignedStore:
    return AlignedStore.open(make_store(tmp_path_factory.mktemp("store"), subjects=2, frames=20, crop=SIZE + 6))


def one_batch(sampling, store: AlignedStore) -> dict[str, torch.Tensor]:
    dataset = sampling.dataset(store, ("F001", "F002"), SIZE, train=True, seed=0)
    batch = next(iter(DataLoader(dataset, batch_size=sampling.samples(16))))
    return {name: normalise(value) if value.dtype == torch.uint8 else value for name, value in batch.items()}


def shipped_config(name: str):
    """The method's config as params.yaml (default profile) resolves it, else its defaults."""
    return method_configs(PARAMS, name)[1] if name in PARAMS else get_method(name).config_type()


def seeded_step(method, model, loss_fn, batch) -> StepOutput:
    torch.manual_seed(0)  # the same random draws (e.g. masks) for both models
    with torch.no_grad():
        return method.step(model, loss_fn, batch)


def round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("name", method_names())
def test_method_trains_one_step_counts_its_cost_and_round_trips(name, store):
    method = get_method(name)
    config = shipped_config(name)
    torch.manual_seed(0)
    model = method.build_model(config, NUM_AUS)
    loss_fn = method.build_loss(config, RATES)
    hooks = method.hooks(config, model, loss_fn)
    sampling = method.sampling(config)
    batch = one_batch(sampling, store)

    hooks.on_epoch_start(0)
    output = method.step(model, loss_fn, batch)
    assert isinstance(output, StepOutput) and output.terms
    assert all(torch.isfinite(term) and term.dim() == 0 for term in output.terms.values())
    if method.predicts:
        assert output.scores.shape == batch["target"].shape
        probabilities = method.probabilities(output.scores)
        assert ((probabilities >= 0) & (probabilities <= 1)).all()
    sum(output.terms.values()).backward()
    trainable = list(method.trainable(model))
    assert trainable and all(parameter.grad is not None for parameter in trainable if parameter.requires_grad)
    hooks.after_optimizer_step()
    hooks.on_epoch_end(0, {term: value.item() for term, value in output.terms.items()})

    parameters, macs = model_cost(method, config, NUM_AUS, input_size=SIZE)
    assert parameters == sum(p.numel() for p in model.parameters()) and macs > 0

    saved = round_trip({"model": model.state_dict(), "hooks": hooks.state_dict()})
    restored = method.build_model(config, NUM_AUS)
    restored.load_state_dict(saved["model"])
    restored_hooks = method.hooks(config, restored, method.build_loss(config, RATES))
    restored_hooks.load_state_dict(saved["hooks"])
    assert repr(restored_hooks.state_dict()) == repr(hooks.state_dict())
    model.eval(), restored.eval()
    torch.testing.assert_close(seeded_step(method, restored, loss_fn, batch).terms,
                               seeded_step(method, model, loss_fn, batch).terms)


def test_registry_is_a_leaf_and_knows_the_built_in_methods():
    """Importing the package registers its methods; the registry module itself imports no method."""
    import ast
    from pathlib import Path

    import aubench.models.registry as registry

    imported = {node.module for node in ast.walk(ast.parse(Path(registry.__file__).read_text()))
                if isinstance(node, ast.ImportFrom)}
    assert not {module for module in imported if module and module.startswith(("aubench.models.", "aubench.train"))
                and module != "aubench.models.backbones"}
    assert {"baseline", "stf"} <= set(method_names())
