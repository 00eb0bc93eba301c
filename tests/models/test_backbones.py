"""Starting a model's backbone from another run's checkpoint (the offline stand-in for ImageNet weights)."""
from pathlib import Path

import pytest
import torch

from aubench.errors import ConfigError
from aubench.models.backbones import load_trunk
from aubench.models.baseline import Baseline
from aubench.models.stf import STF, STFConfig


def save_checkpoint(path: Path, model: torch.nn.Module, finished: bool = True) -> Path:
    torch.save({"model": model.state_dict(), "finished": finished}, path)
    return path


def test_stf_backbone_starts_from_a_baseline_checkpoint_and_nothing_else_changes(tmp_path):
    torch.manual_seed(0)
    baseline = Baseline(12)
    stf = STF(12, STFConfig(clip_length=2, d=8, use_trm=False))
    head_before = {k: v.clone() for k, v in stf.state_dict().items() if not k.startswith("backbone.")}
    assert not torch.equal(stf.backbone.trunk.stem[0].weight, baseline.trunk.stem[0].weight)
    load_trunk(stf, save_checkpoint(tmp_path / "baseline.pt", baseline))
    for key, value in baseline.trunk.state_dict().items():
        assert torch.equal(stf.backbone.trunk.state_dict()[key], value), key
    for key, value in stf.state_dict().items():
        if not key.startswith("backbone."):
            assert torch.equal(value, head_before[key]), key


def test_backbone_init_refuses_missing_unfinished_and_mismatched_checkpoints(tmp_path):
    stf = STF(12, STFConfig(clip_length=2, d=8, use_trm=False))
    with pytest.raises(ConfigError, match="missing.pt: no checkpoint"):
        load_trunk(stf, tmp_path / "missing.pt")
    with pytest.raises(ConfigError, match="unfinished.pt: that run has not finished"):
        load_trunk(stf, save_checkpoint(tmp_path / "unfinished.pt", Baseline(12), finished=False))
    with pytest.raises(ConfigError, match="resnet34.pt: holds no backbone matching"):
        load_trunk(stf, save_checkpoint(tmp_path / "resnet34.pt", Baseline(12, backbone="resnet34")))


def test_imagenet_weights_and_a_checkpoint_init_are_exclusive():
    with pytest.raises(ConfigError, match="choose one"):
        STFConfig(pretrained=True, init_from="baseline")
