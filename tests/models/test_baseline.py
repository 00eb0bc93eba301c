"""The baseline (backbone + GAP + per-AU linear head) and its optional, offline-safe ImageNet weights."""
import pytest
import torch

from aubench.errors import ConfigError, ModelError
from aubench.eval.efficiency import count_parameters
from aubench.models.baseline import Baseline


@pytest.mark.parametrize("backbone,trunk", [("resnet18", 11_176_512), ("resnet50", 23_508_032)])
def test_parameter_counts_are_trunk_plus_per_au_head(backbone, trunk):
    model = Baseline(12, backbone)
    width = 512 if backbone == "resnet18" else 2048
    assert count_parameters(model) == trunk + width * 12 + 12


def test_forward_gives_one_logit_per_au():
    model = Baseline(8).eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 8)


def test_pretrained_weights_missing_from_cache_fail_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ModelError, match=r"resnet18-f37072fd\.pth.*not cached.*pretrained: false"):
        Baseline(12, "resnet18", pretrained=True)


def test_unknown_backbone_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown backbone 'vgg16'"):
        Baseline(12, "vgg16")
