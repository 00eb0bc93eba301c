"""Efficiency report figures: torchvision's ResNet-18 against STF Table 1 row 1, and each method's own
model counted in one place (`model_cost`), checked against hand-worked differences from that ResNet-18."""
import pytest
import torch

from aubench.eval.efficiency_report import (
    EfficiencyConfig,
    method_efficiency,
    model_cost,
    torchvision_resnet18_reference,
)
from aubench.models.baseline import BaselineConfig
from aubench.models.registry import get_method
from aubench.models.stf import STFConfig
from aubench.train.optim import OptimConfig, build_optimizer

FC_1000 = 512 * 1000  # torchvision's fc: weights (its 1000 biases are parameters, not MACs)


def test_resnet18_reference_is_stf_table1_baseline_row():
    reference = torchvision_resnet18_reference(256)
    assert reference["parameters"] == 11_689_512  # "11.69 M"
    assert reference["macs_per_frame"] == pytest.approx(2.382e9, rel=0.01)  # "2.382 G"
    assert round(reference["macs_per_frame"] / 1e9, 2) == 2.38


def test_baseline_cost_is_torchvision_resnet18_with_a_12_way_head():
    """Baseline = ResNet-18 whose 1000-way fc (512·1000 + 1000 parameters, 512·1000 MACs) is replaced by a
    12-way head (512·12 + 12 parameters, 512·12 MACs): 11,689,512 − 513,000 + 6,156 = 11,182,668."""
    reference = torchvision_resnet18_reference(64)
    parameters, macs = model_cost(get_method("baseline"), BaselineConfig(backbone="resnet18"), 12, input_size=64)
    assert parameters == reference["parameters"] - (FC_1000 + 1000) + (512 * 12 + 12) == 11_182_668
    assert macs == reference["macs_per_frame"] - FC_1000 + 512 * 12


@pytest.mark.parametrize("clip_length", [4, 8])
def test_clip_method_cost_is_per_frame(clip_length):
    """STF with SRM, TRM and SFF off is, per frame, the ResNet-18 trunk + 12 token-wise Linear(512, d=16)
    projections on layer4's 2×2 tokens at 64² + 12 prototypes: the same for any clip length.
    Parameters: 11,176,512 + 12·(512·16 + 16) + 12·16 = 11,275,200; MACs: trunk + 4·12·512·16."""
    reference = torchvision_resnet18_reference(64)
    config = STFConfig(clip_length=clip_length, d=16, use_srm=False, use_trm=False, use_sff=False)
    parameters, macs = model_cost(get_method("stf"), config, 12, input_size=64)
    assert parameters == 11_176_512 + 12 * (512 * 16 + 16) + 12 * 16 == 11_275_200
    assert macs == reference["macs_per_frame"] - FC_1000 + 4 * 12 * 512 * 16


def test_baseline_row_counts_its_per_au_head_and_measures_throughput():
    config = EfficiencyConfig(paper_input_size=64, measure_frames=2, measure_steps=1)
    optim = OptimConfig(optimizer="sgd", lr=0.01)
    made = []

    def make_optimizer(parameters):  # as stages/efficiency.py: partial(build_optimizer, config=run.optim)
        made.append(build_optimizer(parameters, config=optim))
        return made[-1]

    method = get_method("baseline")
    row = method_efficiency(method, BaselineConfig(), make_optimizer, 12, 32, config, torch.device("cpu"))
    assert (row["parameters"], row["macs_per_frame"]) == model_cost(method, BaselineConfig(), 12, 64)
    assert row["parameters"] == 11_176_512 + 512 * 12 + 12  # trunk without fc + 12-way linear head
    assert row["train_frames_per_s"] > 0 and row["inference_frames_per_s"] > 0
    assert (row["input_size"], row["measured_at_input_size"], row["device"]) == (64, 32, "cpu")
    [optimizer] = made  # the method's own optimiser, as the efficiency stage builds it
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.01

