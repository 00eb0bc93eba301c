"""MC-SFAU (spec seed 001, /work/shared/specs/mcsfau.md) against its specification: the §7 unit-test-level
checks (numbers in the test names' comments), on CPU with ResNet-18 at 64 px and tiny heads."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aubench.align.store import AlignedStore
from aubench.data.folds import build_fold_table, read_fold
from aubench.errors import ConfigError
from aubench.losses.weighted_bce import WeightedBCELoss, inverse_frequency
from aubench.models.backbones import load_trunk
from aubench.models.mcsfau import LinearProbe, MCSFAUConfig
from aubench.models.mcsfau_pretrain import (
    IBUG49,
    MASK_RULES,
    FeatureReconstructor,
    LandmarkRefiner,
    LossWeights,
    MaskConfig,
    MCIConfig,
    MCSFAUPretrainConfig,
    MCSFAUPretraining,
    MFDCConfig,
    MFRRConfig,
    ModulesConfig,
    PretrainLoss,
    byol_loss,
    cell_mask,
    ema_update,
    interaction_kl,
    keep_squares,
    refine_landmarks,
)
from aubench.models.registry import get_method
from aubench.train.optim import OptimConfig, build_optimizer
from tests.conftest import make_store

SIZE = 64  # ResNet-18 layer4 at 64 px: a 2×2 map of 32-px cells
CPU = torch.device("cpu")
PRETRAIN, PROBE = get_method("mcsfau_pretrain"), get_method("mcsfau")
# Appendix A: the synthetic 49-point frontal template (iBUG-68 index → (x, y) in a 256-px frame)
TEMPLATE = {17: (50, 88), 18: (66.25, 80), 19: (82.5, 76), 20: (98.75, 78), 21: (115, 84), 22: (141, 84),
            23: (157.25, 78), 24: (173.5, 76), 25: (189.75, 80), 26: (206, 88), 27: (128, 105), 28: (128, 120),
            29: (128, 135), 30: (128, 150), 31: (108, 160), 32: (118, 163), 33: (128, 165), 34: (138, 163),
            35: (148, 160), 36: (68, 108), 37: (78, 101), 38: (95, 101), 39: (108, 108), 40: (95, 113),
            41: (78, 113), 42: (148, 108), 43: (158, 101), 44: (175, 101), 45: (188, 108), 46: (175, 113),
            47: (158, 113), 48: (95, 195), 49: (105, 187), 50: (118, 183), 51: (128, 185), 52: (138, 183),
            53: (151, 187), 54: (161, 195), 55: (151, 205), 56: (139, 210), 57: (128, 211), 58: (117, 210),
            59: (105, 205), 61: (115, 193), 62: (128, 194), 63: (141, 193), 65: (141, 198), 66: (128, 199),
            67: (115, 198)}
TEMPLATE_PX = torch.tensor([TEMPLATE[index] for index in IBUG49], dtype=torch.float32)[None]  # (1, 49, 2)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny CPU models run fastest on one thread (and far slower when threads contend for busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(modules=(True, True, True), mask=None, **mfrr) -> MCSFAUPretrainConfig:
    """ResNet-18, heads of 16–32 units, a one-layer d=16 Transformer, k=3, r=20 px (of 64)."""
    mfrr = MFRRConfig(**{"k_iterations": 3, "refiner_hidden": 16, "d_model": 16, "heads": 2, "encoder_layers": 1,
                         "decoder_layers": 1, "feedforward": 32, "dropout": 0.0,
                         "mask": MaskConfig(**{"side_px": 20.0, **(mask or {})}), **mfrr})
    return MCSFAUPretrainConfig(backbone="resnet18", grid=2, modules=ModulesConfig(*modules), mfrr=mfrr,
                                mfdc=MFDCConfig(projector_hidden=32, out_dim=16, predictor_hidden=32),
                                mci=MCIConfig(hidden=16, out_dim=8))


def tiny_model(config: MCSFAUPretrainConfig | None = None, seed: int = 0) -> MCSFAUPretraining:
    torch.manual_seed(seed)
    return MCSFAUPretraining(config or tiny_config())


def tiny_batch(batch: int = 4, seed: int = 0, landmarks: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = {name: torch.randn(batch, 3, SIZE, SIZE, generator=generator) for name in ("image", "view1", "view2")}
    points = torch.rand(batch, 68, 2, generator=generator) * (SIZE - 16) + 8 if landmarks is None else landmarks
    return {**images, "landmarks": points}


def parameters(module: nn.Module) -> dict[int, nn.Parameter]:
    return {id(parameter): parameter for parameter in module.parameters()}


def target_modules(model: MCSFAUPretraining) -> list[nn.Module]:
    return [model.target_trunk, model.target_projector]


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [parameter.detach().clone() for parameter in module.parameters()]


class EncoderInput(nn.Module):
    """A stand-in Transformer that returns its source tokens."""

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return source


class Recording(nn.Module):
    """An identity (times `scale`) reconstructor that keeps its input F_mask."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale, self.inputs = scale, []

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        self.inputs.append(features)
        return self.scale * features


# --- MFDC / EMA (checks 1–6) ----------------------------------------------------------------------------

def test_ema_rule_is_exact_in_float64():
    """1: ξ ← 0.99ξ + 0.01θ; n updates with θ fixed: ξ_n = θ + 0.99ⁿ(ξ_0 − θ); buffers copied."""
    torch.manual_seed(0)
    online, target = (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double() for _ in range(2))
    online[1].running_mean.normal_()
    theta, xi = snapshot(online), snapshot(target)
    ema_update(target, online, 0.99)
    for new, old, fixed in zip(target.parameters(), xi, theta):
        torch.testing.assert_close(new, 0.99 * old + 0.01 * fixed, rtol=0, atol=1e-12)
    assert torch.equal(target[1].running_mean, online[1].running_mean)
    for _ in range(99):
        ema_update(target, online, 0.99)
    for new, old, fixed in zip(target.parameters(), xi, theta):
        torch.testing.assert_close(new, fixed + 0.99 ** 100 * (old - fixed), rtol=0, atol=1e-12)


def test_ema_hook_uses_the_online_weights_after_the_optimizer_step():
    """2: the registered TargetEMA hook, run after an SGD step, mixes in the stepped θ (not the old one)."""
    config, model = tiny_config(), tiny_model()
    for module in target_modules(model):
        for parameter in module.parameters():
            parameter.data.add_(torch.randn_like(parameter))  # ξ_0 ≠ θ_0, so the two readings differ
    loss_fn = PRETRAIN.build_loss(config, np.zeros(12))
    optimizer = build_optimizer(PRETRAIN.trainable(model), OptimConfig(optimizer="sgd", lr=0.5, weight_decay=0))
    hooks = PRETRAIN.hooks(config, model, loss_fn)
    xi = [snapshot(module) for module in target_modules(model)]
    sum(PRETRAIN.step(model, loss_fn, tiny_batch()).terms.values()).backward()
    optimizer.step()
    hooks.after_optimizer_step()
    for target, online, old in zip(target_modules(model), (model.trunk, model.projector), xi):
        for new, before, stepped in zip(target.parameters(), old, online.parameters()):
            torch.testing.assert_close(new, 0.99 * before + 0.01 * stepped.detach(), rtol=0, atol=1e-6)
        assert all(torch.equal(a, b) for a, b in zip(target.buffers(), online.buffers()))


def test_trainer_runs_the_ema_hook_after_each_optimizer_step(tmp_path):
    """2, in the engine: every optimiser step is followed by one EMA update that sees the stepped weights."""
    from aubench.train import distributed
    from aubench.train.config import RunPaths, TrainConfig
    from aubench.train.trainer import FoldTrainer

    store = AlignedStore.open(make_store(tmp_path / "store", subjects=3, frames=4, crop=SIZE))
    labels = {sequence.subject: store.labels(sequence.key) for sequence in store.sequences}
    fold, rates = read_fold(build_fold_table("synthau", store.aus, labels, seed=0), 1)
    paths = RunPaths(tmp_path / "ckpt.pt", tmp_path / "pred.npz", tmp_path / "live")
    trainer = FoldTrainer(PRETRAIN, tiny_config(), OptimConfig(optimizer="sgd", lr=0.5),
                          TrainConfig(input_size=SIZE, epochs=1, batch_size=4, device="cpu"), store, fold, rates, paths)
    try:
        events, step, update = [], trainer.optimizer.step, trainer.hooks.after_optimizer_step

        def recorded_step(*args, **kwargs):
            events.append("step")
            return step(*args, **kwargs)

        def recorded_update():
            before, stepped = snapshot(trainer.model.target_trunk), snapshot(trainer.model.trunk)
            update()
            events.append("ema")
            for new, old, online in zip(trainer.model.target_trunk.parameters(), before, stepped):
                torch.testing.assert_close(new, 0.99 * old + 0.01 * online, rtol=0, atol=1e-6)

        trainer.optimizer.step, trainer.hooks.after_optimizer_step = recorded_step, recorded_update
        trainer.train_epoch(trainer.model, 0)
    finally:
        distributed.shutdown()
    assert len(events) >= 2 and events == ["step", "ema"] * (len(events) // 2)


def test_target_stream_gets_no_gradient_and_is_not_optimised():
    """3: target params frozen, no .grad after backward, V_tar without grad, none in the optimiser."""
    config, model = tiny_config(), tiny_model()
    seen = []
    model.target_projector.register_forward_hook(lambda module, inputs, output: seen.append(output))
    terms = PRETRAIN.step(model, PRETRAIN.build_loss(config, np.zeros(12)), tiny_batch()).terms
    sum(terms.values()).backward()
    target = {key: value for module in target_modules(model) for key, value in parameters(module).items()}
    assert target and all(not p.requires_grad and p.grad is None for p in target.values())
    assert seen and not any(output.requires_grad for output in seen)
    optimizer = build_optimizer(PRETRAIN.trainable(model), OptimConfig(optimizer="sgd"))
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert optimised == set(parameters(model)) - set(target)  # every online part, no target tensor


def test_target_starts_as_a_copy_of_the_online_stream_in_its_own_storage():
    """4: at step 0, target state == online backbone and projector value for value; data_ptr differs."""
    model = tiny_model()
    for target, online in zip(target_modules(model), (model.trunk, model.projector)):
        target_state, online_state = target.state_dict(), online.state_dict()
        assert target_state.keys() == online_state.keys()
        for key, value in online_state.items():
            assert torch.equal(target_state[key], value) and target_state[key].data_ptr() != value.data_ptr()


def test_byol_loss_is_eq_2():
    """5: L_s = 2 − 2cos = ‖a/|a| − b/|b|‖², 0 for c·a (c > 0), 4 for −a, scale-free, batch mean."""
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 6, 16, generator=generator, dtype=torch.float64)
    per_sample = (F.normalize(a, dim=-1) - F.normalize(b, dim=-1)).pow(2).sum(-1)
    cosine = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    torch.testing.assert_close(per_sample, 2 - 2 * cosine)
    torch.testing.assert_close(byol_loss(a, b), per_sample.mean(), rtol=0, atol=1e-6)
    torch.testing.assert_close(byol_loss(a[:1], b[:1]), per_sample[0], rtol=0, atol=1e-6)
    assert byol_loss(a, 3.5 * a).item() == pytest.approx(0, abs=1e-6)
    assert byol_loss(a, -a).item() == pytest.approx(4, abs=1e-6)
    torch.testing.assert_close(byol_loss(7 * a, 0.1 * b), byol_loss(a, b), rtol=0, atol=1e-6)


def test_only_view1_goes_online_and_only_view2_to_the_target():
    """6: symmetric_loss false: the online trunk sees P1 (and P), the target trunk only P2."""
    model, batch, seen = tiny_model(), tiny_batch(), {"online": [], "target": []}
    model.trunk.register_forward_hook(lambda module, inputs, output: seen["online"].append(inputs[0]))
    model.target_trunk.register_forward_hook(lambda module, inputs, output: seen["target"].append(inputs[0]))
    model(batch)
    assert len(seen["target"]) == 1 and torch.equal(seen["target"][0], batch["view2"])
    assert len(seen["online"]) == 1 and torch.equal(seen["online"][0], batch["view1"])  # P uses feature_map


# --- MFRR: landmarks (checks 7–10) ----------------------------------------------------------------------

def test_ibug49_drops_the_jaw_and_the_inner_mouth_corners():
    """7: [17..59] ∪ {61, 62, 63, 65, 66, 67}."""
    assert list(IBUG49) == list(range(17, 60)) + [61, 62, 63, 65, 66, 67]
    assert len(IBUG49) == 49 and not {*range(17), 60, 64} & set(IBUG49)


def test_refiner_samples_features_with_the_align_corners_false_convention():
    """8: on ramp maps f[..., i] = i (x) and f[..., j, :] = j (y), the refiner reads u·W − 0.5 at x = u
    (and v·H − 0.5 at y = v) for u in [0.5/W, 1 − 0.5/W], and clamps to the border outside."""
    width, height = 8, 4
    features = torch.stack([torch.arange(width).float().expand(height, width),
                            torch.arange(height).float().view(-1, 1).expand(height, width)])[None]
    refiner = LandmarkRefiner(2, 8, "feature_sampled_absolute")
    read = []
    refiner.read.register_forward_pre_hook(lambda module, inputs: read.append(inputs[0]))
    u = torch.linspace(0.5 / width, 1 - 0.5 / width, 47)
    v = torch.linspace(0.5 / height, 1 - 0.5 / height, 47)
    points = torch.cat([torch.stack([u, v], -1), torch.tensor([[0.0, 0.0], [1.0, 1.0]])])[None]
    refiner(features, points)
    torch.testing.assert_close(read[0][0, :47], torch.stack([u * width - 0.5, v * height - 0.5], -1))
    torch.testing.assert_close(read[0][0, 47:], torch.tensor([[0.0, 0.0], [width - 1.0, height - 1.0]]))


@pytest.fixture
def refiner_inputs():
    torch.manual_seed(0)
    refiner = LandmarkRefiner(8, 16, "feature_sampled_absolute")
    features = torch.randn(3, 8, 4, 4, requires_grad=True)
    detected = torch.rand(3, 49, 2, requires_grad=True)
    return refiner, features, detected


def test_one_iteration_or_no_refiner_gives_no_landmark_loss(refiner_inputs):
    """9: k = 1 → L_d = 0 and p_k = p_1 (also with refine_mode none)."""
    refiner, features, detected = refiner_inputs
    for module, k in ((refiner, 1), (None, 50)):
        points, loss = refine_landmarks(module, features, detected, k, "sum")
        assert points is detected and loss.item() == 0


def test_landmark_loss_is_eq_3_with_detached_targets(refiner_inputs):
    """9: k = 2 → mean_b Σ_n mean_xy (p2 − p1)²; k = 3 → the same sum over m with p_{m−1} detached (value
    and gradients equal the hand-built chain); `mean` divides by (k − 1)·49; no gradient reaches p_{m−1}."""
    refiner, features, detected = refiner_inputs
    p2 = refiner(features, detected.detach())
    points, loss = refine_landmarks(refiner, features, detected, 2, "sum")
    torch.testing.assert_close(points, p2)
    torch.testing.assert_close(loss, ((p2 - detected.detach()) ** 2).mean(-1).sum(-1).mean())

    def by_hand() -> torch.Tensor:
        total, previous = 0, detected.detach()
        for _ in range(2):
            current = refiner(features, previous)
            total = total + ((current - previous) ** 2).mean(-1).sum(-1).mean()
            previous = current.detach()
        return total

    def gradients(loss: torch.Tensor) -> list[torch.Tensor]:
        return torch.autograd.grad(loss, [features, *refiner.parameters()])

    _, chain = refine_landmarks(refiner, features, detected, 3, "sum")
    expected = by_hand()
    torch.testing.assert_close(chain, expected)
    for got, want in zip(gradients(chain), gradients(expected)):
        torch.testing.assert_close(got, want)
    _, mean = refine_landmarks(refiner, features, detected, 3, "mean")
    torch.testing.assert_close(mean, chain / (2 * 49))
    mean.backward()
    assert detected.grad is None and features.grad.abs().sum() > 0


def test_mean_shape_start_reads_the_features_at_the_start_points_but_regresses_onto_p1(refiner_inputs):
    """`refine_start: mean_shape`: p_2 reads F_p at the given start points (not at p_1) and is still
    regressed onto the detected p_1; later iterations read at their predecessor, as with `detected`."""
    refiner, features, detected = refiner_inputs
    start = detected.mean(0, keepdim=True).expand_as(detected)
    p2 = refiner(features, start.detach())
    points, loss = refine_landmarks(refiner, features, detected, 2, "sum", start)
    torch.testing.assert_close(points, p2)
    torch.testing.assert_close(loss, ((p2 - detected.detach()) ** 2).mean(-1).sum(-1).mean())
    assert not torch.allclose(p2, refiner(features, detected.detach()))
    p3 = refiner(features, p2.detach())
    torch.testing.assert_close(refine_landmarks(refiner, features, detected, 3, "sum", start)[0], p3)


def test_landmark_loss_trains_the_backbone_and_the_refiner_only():
    """10: ∂L_d reaches the online backbone (through F_p) and the refiner; not the landmarks (FAN's p_1,
    a batch input), the reconstructor or the target."""
    model, batch = tiny_model(), tiny_batch()
    batch["landmarks"].requires_grad_(True)
    model(batch)["landmark"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.refiner.parameters())
    assert model.trunk.stages[-1][-1].conv2.weight.grad.abs().sum() > 0
    assert model.trunk.stem[0].weight.grad.abs().sum() > 0
    assert batch["landmarks"].grad is None
    assert all(p.grad is None for module in (model.reconstructor, *target_modules(model)) for p in module.parameters())


# --- MFRR: masking (checks 12–17) -----------------------------------------------------------------------

def masked_cells(points, side, rule="cell_center", keep=None) -> set[tuple[int, int]]:
    """Cells (row, column) of the 8×8 grid of 32-px cells masked around `points` [(x, y), ...]."""
    points = torch.tensor([points], dtype=torch.float32)
    keep = torch.ones(points.shape[:2], dtype=torch.bool) if keep is None else keep
    mask = cell_mask(points, keep, side, 8, 32.0, rule)
    assert mask.shape == (1, 8, 8) and mask.dtype == torch.bool
    return {tuple(cell) for cell in mask[0].nonzero().tolist()}


@pytest.mark.parametrize("point, side, cells", [
    ((128, 128), 40, {(3, 3), (3, 4), (4, 3), (4, 4)}),
    ((128, 128), 30, set()),  # the nearest centres are 16 px away, > 15
    ((128, 128), 32, {(3, 3), (3, 4), (4, 3), (4, 4)}),  # inclusive: 16 px ≤ r/2
    *[((112, 112), side, {(3, 3)}) for side in (20, 30, 40, 50)],  # a cell centre
    ((0, 0), 40, {(0, 0)}),  # no out-of-range cell, no error
    ((16, 112), 10, {(3, 0)}),  # x picks the column, y the row
])
def test_cell_center_rule_geometry(point, side, cells):
    """12: the cell_center rule on the 8×8 grid of 32-px cells (inclusive |c − x| ≤ r/2)."""
    assert masked_cells([point], side) == cells


@pytest.mark.parametrize("prob, source, cells", [(1.0, "detected", [(0, 0)]), (1.0, "refined", [(1, 0)]),
                                                  (0.0, "detected", []), (0.0, "refined", [])])
def test_masked_cells_are_zero_in_every_channel_and_the_rest_untouched(prob, source, cells):
    """13 (and 6 of §3.3.1): F_mask = F_p·(¬M), M around p_1 or the refined p_k; γ = 0 leaves F_p as is."""
    model = tiny_model(tiny_config(mask={"prob": prob, "landmarks": source})).eval()
    model.reconstructor = Recording()
    with torch.no_grad():  # p_k = sigmoid(bias) = (0.25, 0.75): x = 16, y = 48 px, the centre of cell (1, 0)
        model.refiner.layers[-1].weight.zero_()
        model.refiner.layers[-1].bias.copy_(torch.logit(torch.tensor([0.25, 0.75])))
        batch = tiny_batch(2, landmarks=torch.full((2, 68, 2), 16.0))  # p_1: the centre of cell (0, 0)
        model(batch)
        features = model.feature_map(batch["image"])
    masked, expected = model.reconstructor.inputs[0], torch.zeros_like(features, dtype=torch.bool)
    for row, column in cells:
        expected[:, :, row, column] = True
    assert (masked[expected] == 0).all() and (features[expected] != 0).any() == bool(cells)
    assert torch.equal(masked[~expected], features[~expected])


@pytest.mark.parametrize("prob", [1.0, 0.8, 0.6, 0.4])
def test_keep_rate_is_bernoulli_gamma(prob):
    """14: per_landmark over 20,000 × 49 draws within ±4σ of γ (γ = 1 deterministic); per_sample all or
    none per sample at rate γ; per_batch one draw for the whole batch."""
    torch.manual_seed(0)
    draws, points = 20_000, 49
    kept = keep_squares(draws, points, prob, "per_landmark", CPU)
    assert kept.shape == (draws, points) and kept.dtype == torch.bool
    sigma = math.sqrt(prob * (1 - prob) / (draws * points))
    assert abs(kept.float().mean().item() - prob) <= 4 * sigma
    assert kept.all() if prob == 1 else not kept.all()
    samples = keep_squares(draws, points, prob, "per_sample", CPU)
    assert (samples.all(1) | ~samples.any(1)).all()
    assert abs(samples[:, 0].float().mean().item() - prob) <= 4 * math.sqrt(prob * (1 - prob) / draws) + 1e-9
    batches = torch.stack([keep_squares(4, points, prob, "per_batch", CPU) for _ in range(2000)])
    assert (batches.flatten(1).all(1) | ~batches.flatten(1).any(1)).all()
    assert abs(batches[:, 0, 0].float().mean().item() - prob) <= 4 * math.sqrt(prob * (1 - prob) / 2000) + 1e-9


@pytest.mark.parametrize("rule", MASK_RULES)
def test_coverage_grows_with_r_and_gamma(rule):
    """15: fixed landmarks and keep-vector → coverage non-decreasing in r (the masks nest); with the same
    uniforms, keep = u < γ nests in γ too, so the expected coverage is non-decreasing in γ."""
    uniforms = torch.rand(1, 49, generator=torch.Generator().manual_seed(0))
    previous = torch.zeros(1, 8, 8, dtype=torch.bool)
    for side in range(0, 121, 5):
        mask = cell_mask(TEMPLATE_PX, uniforms < 0.6, float(side), 8, 32.0, rule)
        assert (mask | ~previous).all()  # previous ⊆ mask
        previous = mask
    previous = torch.zeros(1, 8, 8, dtype=torch.bool)
    for prob in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        mask = cell_mask(TEMPLATE_PX, uniforms < prob, 40.0, 8, 32.0, rule)
        assert (mask | ~previous).all()
        previous = mask


@pytest.mark.parametrize("rule, counts", [("cell_center", [14, 16, 22, 22]), ("area_half", [14, 16, 20, 24]),
                                          ("any_overlap", [22, 30, 40, 42])])
def test_appendix_a_template_masks_the_documented_cell_counts(rule, counts):
    """16: γ = 1 on the Appendix A template, r = 20, 30, 40, 50."""
    keep = torch.ones(1, 49, dtype=torch.bool)
    assert [int(cell_mask(TEMPLATE_PX, keep, side, 8, 32.0, rule).sum()) for side in (20, 30, 40, 50)] == counts


def test_appendix_a_template_coverage_at_the_paper_setting():
    """16: r = 40, γ = 0.6, per_landmark: mean coverage over 2,000 draws is 0.29 ± 0.01."""
    torch.manual_seed(0)
    keep = keep_squares(2000, 49, 0.6, "per_landmark", CPU)
    coverage = cell_mask(TEMPLATE_PX.expand(2000, 49, 2), keep, 40.0, 8, 32.0).float().mean((1, 2))
    assert abs(coverage.mean().item() - 0.29) <= 0.01


# --- MFRR: reconstruction (checks 18–19) ----------------------------------------------------------------

def test_reconstructor_keeps_the_shape_and_the_token_order():
    """18: (B, C, g, g) → (B, C, g, g); with identity embeddings and Transformer the input comes back."""
    config = tiny_config().mfrr
    torch.manual_seed(0)
    reconstructor = FeatureReconstructor(16, 2, config)
    features = torch.randn(3, 16, 2, 2)
    assert reconstructor(features).shape == features.shape
    with torch.no_grad():
        for layer in (reconstructor.embed, reconstructor.unembed):
            layer.weight.copy_(torch.eye(16)), layer.bias.zero_()
        reconstructor.positions.zero_()
    reconstructor.transformer = EncoderInput()
    torch.testing.assert_close(reconstructor(features), features)
    with pytest.raises(ConfigError, match="grid"):
        reconstructor(torch.randn(1, 16, 4, 4))


@pytest.mark.parametrize("detach", [True, False])
def test_reconstruction_loss_and_its_target_path(detach):
    """19: L_r = 0 when F_mic == F_p; with F_mic = 2·F_p, ∂L_r/∂F_p = 4F_p/N along F_mask only (target
    detached) and 2F_p/N when the target is not detached."""
    model = tiny_model(tiny_config(modules=(True, True, False), mask={"prob": 0.0}, k_iterations=1,
                                   detach_target=detach))
    batch = tiny_batch()
    model.reconstructor = Recording()
    assert model(batch)["reconstruction"].item() == 0
    model.reconstructor, maps = Recording(2.0), []
    feature_map = model.feature_map
    model.feature_map = lambda images: maps.append(feature_map(images)) or maps[-1].retain_grad() or maps[-1]
    model(batch)["reconstruction"].backward()
    features = maps[0].detach()
    torch.testing.assert_close(maps[0].grad, (4 if detach else 2) * features / features.numel())


# --- MCI (checks 20–21) ---------------------------------------------------------------------------------

def test_interaction_kl_is_kl_of_micro_to_macro_softmax():
    """20: ≥ 0, 0 for equal inputs, Σ p_mic (log p_mic − log p_mac) batch mean, direction matters."""
    generator = torch.Generator().manual_seed(0)
    micro, macro = torch.randn(2, 5, 8, generator=generator, dtype=torch.float64)

    def manual(p_logits, q_logits, temperature=1.0):
        p, log_p, log_q = (p_logits / temperature).softmax(-1), (p_logits / temperature).log_softmax(-1), \
            (q_logits / temperature).log_softmax(-1)
        return (p * (log_p - log_q)).sum(-1).mean()

    value = interaction_kl(micro, macro, 1.0, "mic_to_mac")
    assert value.item() > 0 and interaction_kl(micro, micro, 1.0, "mic_to_mac").item() == pytest.approx(0, abs=1e-7)
    torch.testing.assert_close(value.double(), manual(micro, macro), rtol=1e-5, atol=1e-6)
    swapped = interaction_kl(macro, micro, 1.0, "mic_to_mac")
    assert abs(swapped.item() - value.item()) > 1e-3
    torch.testing.assert_close(interaction_kl(micro, macro, 1.0, "mac_to_mic"), swapped)
    torch.testing.assert_close(interaction_kl(micro, macro, 1.0, "symmetric"), (value + swapped) / 2)
    torch.testing.assert_close(interaction_kl(micro, macro, 2.0, "mic_to_mac").double(), manual(micro, macro, 2.0),
                               rtol=1e-5, atol=1e-6)


def test_mci_heads_are_linear_relu_linear():
    """21: each head is exactly Linear → ReLU → Linear, output (B, D')."""
    model = tiny_model()
    features = torch.randn(4, 512)
    for head in (model.macro_head, model.micro_head):
        assert [type(layer) for layer in head] == [nn.Linear, nn.ReLU, nn.Linear]
        assert (head[0].in_features, head[0].out_features, head[2].out_features) == (512, 16, 8)
        assert head(features).shape == (4, 8)


# --- total loss and module presets (checks 22–23) -------------------------------------------------------

def test_total_loss_is_eq_7_with_each_term_logged():
    """22: L_s + L_d + L_r + 0.05·L_c, the four terms named separately."""
    terms = {"mfdc": torch.tensor(0.7), "landmark": torch.tensor(1.3), "reconstruction": torch.tensor(0.4),
             "interaction": torch.tensor(2.0)}
    weighted = PretrainLoss(LossWeights())(terms)
    assert weighted.keys() == terms.keys()
    assert sum(weighted.values()).item() == pytest.approx(0.7 + 1.3 + 0.4 + 0.05 * 2.0)
    output = PRETRAIN.step(tiny_model(), PRETRAIN.build_loss(tiny_config(), np.zeros(12)), tiny_batch())
    assert set(output.terms) == set(terms) and output.scores is None


def test_module_presets_build_and_report_only_their_parts():
    """23: mfdc_only has no Transformer, refiner or MCI heads and its loss is L_s; mfdc+mfrr has no L_c;
    mci without mfrr is a config error."""
    model, batch = tiny_model(tiny_config(modules=(True, False, False))), tiny_batch()
    assert not any(hasattr(model, name) for name in ("reconstructor", "refiner", "macro_head", "micro_head"))
    assert not any(isinstance(module, (nn.Transformer, LandmarkRefiner)) for module in model.modules())
    terms = model(batch)
    with torch.no_grad():
        online = model.predictor(model.projector(model.trunk(batch["view1"]).mean((2, 3))))
        target = model.target_projector(model.target_trunk(batch["view2"]).mean((2, 3)))
    assert terms.keys() == {"mfdc"}
    torch.testing.assert_close(terms["mfdc"], byol_loss(online, target))
    model = tiny_model(tiny_config(modules=(True, True, False)))
    assert model(batch).keys() == {"mfdc", "landmark", "reconstruction"}
    assert not hasattr(model, "macro_head") and not hasattr(model, "micro_head")
    with pytest.raises(ConfigError, match="mci"):
        MCSFAUPretrainConfig(modules=ModulesConfig(mfdc=True, mfrr=False, mci=True))


# --- the linear probe (checks 28–30) and its loss --------------------------------------------------------

def probe_batch(seed=0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"image": torch.randn(4, 3, SIZE, SIZE, generator=generator),
            "target": torch.rand(4, 3, generator=generator) < 0.5, "mask": torch.ones(4, 3, dtype=torch.bool)}


def test_probe_trains_only_its_linear_head_and_keeps_the_backbone_bit_identical():
    """28, 30: after SGD steps through the registered method every trunk tensor (parameters and BN
    buffers) is unchanged, the trunk stays in eval mode under model.train(), the head is one nn.Linear."""
    config = MCSFAUConfig(backbone="resnet18", init_from=None, pos_weight="inverse_frequency")
    torch.manual_seed(0)
    model, loss_fn = PROBE.build_model(config, 3), PROBE.build_loss(config, np.array([0.2, 0.5, 0.7]))
    assert dict(model.named_children()).keys() == {"trunk", "norm", "head"} and type(model.head) is nn.Linear
    assert type(model.norm) is nn.Identity and (model.head.in_features, model.head.out_features) == (512, 3)
    optimizer = build_optimizer(PROBE.trainable(model), OptimConfig(optimizer="sgd", lr=0.5))
    assert {id(p) for group in optimizer.param_groups for p in group["params"]} == set(parameters(model.head))
    before = {key: value.clone() for key, value in model.trunk.state_dict().items()}
    head = model.head.weight.detach().clone()
    model.train()
    assert not model.trunk.training and not any(module.training for module in model.trunk.modules())
    for seed in range(3):
        optimizer.zero_grad()
        PROBE.step(model, loss_fn, probe_batch(seed)).terms["loss"].backward()
        optimizer.step()
    assert all(torch.equal(value, before[key]) for key, value in model.trunk.state_dict().items())
    assert not torch.equal(model.head.weight, head)


def test_probe_feature_norm_standardises_features_without_parameters():
    """`feature_norm`: BatchNorm1d without affine parameters before the Linear (MAE's probe): the head stays
    the only trained module, and in eval mode the probe is one fixed affine map of the pooled features."""
    model = PROBE.build_model(MCSFAUConfig(backbone="resnet18", init_from=None, feature_norm=True), 3)
    assert type(model.norm) is nn.BatchNorm1d and not model.norm.affine
    assert {id(p) for p in PROBE.trainable(model)} == set(parameters(model.head))
    model.train()
    features = model.trunk(probe_batch(0)["image"]).mean((2, 3))
    standardised = model.norm(features)
    torch.testing.assert_close(standardised.mean(0), torch.zeros(512), atol=1e-5, rtol=0)


def test_probe_loads_the_online_backbone_not_the_ema_target(tmp_path):
    """29: a finished pretraining checkpoint → the probe's trunk equals model.trunk, not target_trunk."""
    pretraining = tiny_model()
    with torch.no_grad():
        for parameter in pretraining.trunk.parameters():
            parameter.add_(torch.randn_like(parameter))
        pretraining.trunk.stem[1].running_var.fill_(3.0)
    path = tmp_path / "pretrain.pt"
    torch.save({"model": pretraining.state_dict(), "finished": True}, path)
    assert PROBE.upstream(MCSFAUConfig()) == {"backbone": "pretrain"}
    for load in (load_trunk, lambda model, checkpoint: PROBE.load_upstream(model, "backbone", checkpoint)):
        probe = LinearProbe(3, "resnet18")
        load(probe, path)
        loaded, online = probe.trunk.state_dict(), pretraining.trunk.state_dict()
        assert all(torch.equal(loaded[key], value) for key, value in online.items())
        assert not torch.equal(loaded["stem.0.weight"], pretraining.target_trunk.state_dict()["stem.0.weight"])


def test_weighted_bce_matches_pos_weight_bce_and_inverse_frequency():
    """Probe loss: BCEWithLogits(pos_weight) summed over AUs, averaged over frames; (1 − r)/r weights."""
    torch.testing.assert_close(inverse_frequency(np.array([0.25, 0.5])), torch.tensor([3.0, 1.0]))
    weights = torch.tensor([3.0, 1.0])
    loss = WeightedBCELoss(torch.ones(2), positive_weights=weights)
    targets, known = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.ones(2, 2, dtype=torch.bool)
    assert loss(torch.zeros(2, 2), targets, known).item() == pytest.approx(3 * math.log(2))  # (3+1+1+1)·log 2 / 2
    scores = torch.tensor([[0.5, -1.0], [2.0, 0.3]])
    expected = F.binary_cross_entropy_with_logits(scores, targets, pos_weight=weights, reduction="none").sum(-1).mean()
    torch.testing.assert_close(loss(scores, targets, known), expected)
    built = PROBE.build_loss(MCSFAUConfig(pos_weight="inverse_frequency"), np.array([0.25, 0.5]))
    torch.testing.assert_close(built.positive_weights, weights)
    torch.testing.assert_close(built.au_weights, torch.ones(2))
    assert PROBE.build_loss(MCSFAUConfig(), np.array([0.25, 0.5])).positive_weights is None


# --- the paper configuration (check 33) -----------------------------------------------------------------

@pytest.fixture(scope="module")
def paper_model() -> MCSFAUPretraining:
    with torch.device("meta"):
        return MCSFAUPretraining(MCSFAUPretrainConfig())


def count(*modules) -> int:
    return sum(parameter.numel() for module in modules for parameter in module.parameters())


def test_paper_configuration_shapes_and_parameter_counts(paper_model):
    """33: layer4 at 256 px is (B, 2048, 8, 8); 84,173,378 trainable and 32,957,760 target parameters (§3.6
    breakdown); 117,131,138 in all, 27,238,862 short of the paper's 144.37 M (recorded, not tuned)."""
    model = paper_model
    assert model.feature_map(torch.empty(2, 3, 256, 256, device="meta")).shape == (2, 2048, 8, 8)
    trainable = sum(parameter.numel() for parameter in PRETRAIN.trainable(model))
    target = count(*target_modules(model))
    assert (trainable, target) == (84_173_378, 32_957_760)
    assert trainable + target == count(model) == 117_131_138
    assert round(144.37e6 - (trainable + target)) == 27_238_862
    reconstructor = model.reconstructor
    assert [count(model.trunk), count(model.projector), count(model.predictor)] == [23_508_032, 9_449_728, 2_109_696]
    assert count(reconstructor.transformer) == 44_140_544
    assert count(reconstructor.embed, reconstructor.unembed) + reconstructor.positions.numel() == 2_132_480
    assert [count(model.macro_head, model.micro_head), count(model.refiner)] == [2_229_504, 603_394]
    assert [type(layer) for layer in model.projector] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert (model.projector[0].out_features, model.projector[3].out_features, model.macro_head[2].out_features) \
        == (4096, 256, 128)
    with torch.device("meta"):
        assert PROBE.build_model(MCSFAUConfig(), 12).head.in_features == 2048
