"""Learning-rate schedules, including STF eq. 7 (docs/methods/stf.md, "Loss and training") on hand-worked values."""
import pytest
import torch

from aubench.errors import ConfigError
from aubench.train.optim import OptimConfig, build_optimizer, learning_rate


@pytest.mark.parametrize("theta,expected", [(0, 0.01), (10, 0.00505), (20, 1e-4), (30, 0.00505), (40, 0.01),
                                            (239, 0.0099391)])
def test_stf_eq7_periodic(theta, expected):
    config = OptimConfig(optimizer="sgd", lr=0.01, schedule="cosine_periodic", cosine_period=20, min_lr_ratio=0.01)
    for step in (0, 5):  # stepped per epoch: constant within an epoch
        assert learning_rate(config, theta, step, 10, 240) == pytest.approx(expected, rel=1e-4)


def test_stf_eq7_clamped_and_full():
    clamped = OptimConfig(lr=0.01, schedule="cosine_clamped", cosine_period=20, min_lr_ratio=0.01)
    assert learning_rate(clamped, 30, 0, 1, 240) == pytest.approx(1e-4)
    full = OptimConfig(lr=0.01, schedule="cosine_full", min_lr_ratio=0.01)
    assert learning_rate(full, 120, 0, 1, 240) == pytest.approx(0.00505)
    assert learning_rate(full, 240, 0, 1, 240) == pytest.approx(1e-4)


def test_per_iteration_cosine_with_warmup():
    config = OptimConfig(lr=1.0, schedule="cosine", warmup_epochs=1)
    # 4 steps per epoch, 3 epochs: warm-up 0.25, 0.5, 0.75, 1.0, then cosine over the remaining 8 steps
    assert [learning_rate(config, 0, s, 4, 3) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert learning_rate(config, 1, 0, 4, 3) == pytest.approx(1.0)
    assert learning_rate(config, 2, 0, 4, 3) == pytest.approx(0.5)  # halfway through the decay
    assert learning_rate(OptimConfig(lr=2.0, schedule="constant"), 5, 3, 4, 9) == 2.0


def test_optimizers_and_validation():
    parameters = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(parameters, OptimConfig(optimizer="sgd", lr=0.1, momentum=0.8))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.8
    assert isinstance(build_optimizer(parameters, OptimConfig(optimizer="adamw")), torch.optim.AdamW)
    with pytest.raises(ConfigError, match="optim.schedule"):
        OptimConfig(schedule="linear")


def test_step_schedule_and_nesterov():
    """JAA-Net / CIU: lr × 0.3 every 2 epochs, constant within an epoch; Nesterov momentum for SGD only."""
    config = OptimConfig(optimizer="sgd", lr=0.006, schedule="step", step_epochs=2, step_factor=0.3, nesterov=True)
    rates = [learning_rate(config, epoch, step, 10, 12) for epoch in range(6) for step in (0, 9)]
    assert rates == pytest.approx([0.006] * 4 + [0.0018] * 4 + [0.00054] * 4)
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(2))], config)
    assert optimizer.param_groups[0]["nesterov"] is True
    with pytest.raises(ConfigError, match="nesterov"):
        OptimConfig(optimizer="adamw", nesterov=True)
    with pytest.raises(ConfigError, match="step_epochs"):
        OptimConfig(schedule="step", step_epochs=0)
