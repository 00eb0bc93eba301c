"""Efficiency report figures against STF Table 1 row 1 (stf.md §6.3) and the baseline's own head."""
import pytest
import torch

from aubench.eval.efficiency_report import EfficiencyConfig, method_efficiency, torchvision_resnet18_reference
from aubench.models.baseline import BaselineConfig
from aubench.models.registry import get_method
from aubench.train.optim import OptimConfig


def test_resnet18_reference_is_stf_table1_baseline_row():
    reference = torchvision_resnet18_reference(256)
    assert reference["parameters"] == 11_689_512  # "11.69 M"
    assert reference["macs_per_frame"] == pytest.approx(2.382e9, rel=0.01)  # "2.382 G"
    assert round(reference["macs_per_frame"] / 1e9, 2) == 2.38


def test_baseline_row_counts_its_per_au_head_and_measures_throughput():
    config = EfficiencyConfig(paper_input_size=64, measure_frames=2, measure_steps=1)
    row = method_efficiency(get_method("baseline"), BaselineConfig(), OptimConfig(), 12, 32, config, torch.device("cpu"))
    assert row["parameters"] == 11_176_512 + 512 * 12 + 12  # trunk without fc + 12-way linear head
    assert row["train_frames_per_s"] > 0 and row["inference_frames_per_s"] > 0
    assert row["macs_per_frame"] == pytest.approx(torchvision_resnet18_reference(64)["macs_per_frame"], rel=0.01)
