"""Starting a model's backbone from another run's checkpoint (the offline stand-in for ImageNet weights)."""
from pathlib import Path

import pytest
import torch

from aubench.errors import ConfigError
from aubench.models.backbones import FeatureMemo, ResNetTrunk, build_resnet, load_trunk, memoise_frozen_trunks
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


def frozen_trunk() -> ResNetTrunk:
    torch.manual_seed(0)
    return ResNetTrunk(build_resnet("resnet18"), frozen=True)


def test_feature_memo_computes_each_distinct_frame_once_in_fixed_chunks():
    trunk, calls = frozen_trunk(), []
    frames = torch.randn(20, 3, 32, 32)
    assert memoise_frozen_trunks(torch.nn.Sequential(trunk, ResNetTrunk(build_resnet("resnet18")))) == 1
    trunk.stages.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    batch = torch.cat([frames[:5], frames[:1]])  # a clip's padding repeats its first frame
    first = trunk(batch)
    assert trunk.memo.computed == 5 and calls == [FeatureMemo.chunk]  # padded to one fixed-size chunk
    assert torch.equal(first[0], first[5])
    again = trunk(batch.flip(0))
    assert trunk.memo.computed == 5 and len(calls) == 1 and torch.equal(again, first.flip(0))
    trunk(frames)
    assert trunk.memo.computed == 20 and calls == [FeatureMemo.chunk] * 2


def test_memoised_features_do_not_depend_on_the_batch_that_first_brought_a_frame():
    # what makes a resumed run (its memo empty) see exactly the features an uninterrupted one saw
    frames = torch.randn(24, 3, 32, 32)
    alone, mixed = frozen_trunk(), frozen_trunk()
    for trunk in (alone, mixed):
        memoise_frozen_trunks(trunk)
    reference = alone(frames[3:4])
    mixed(frames[[7, 3, 20, 11, 0]])
    assert torch.equal(mixed(frames[3:4]), reference)
    with torch.no_grad():  # unlike batches of different sizes without the memo (why it computes fixed chunks)
        assert not torch.equal(frozen_trunk()(frames[3:4]), frozen_trunk()(frames[:5])[3:4])


def test_memo_is_only_for_frozen_trunks_and_needs_no_gradient():
    trainable = ResNetTrunk(build_resnet("resnet18"))
    assert memoise_frozen_trunks(trainable) == 0 and trainable.memo is None
    trunk = frozen_trunk()
    memoise_frozen_trunks(trunk)
    assert not trunk(torch.randn(2, 3, 32, 32)).requires_grad
