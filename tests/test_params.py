"""The shipped params.yaml: the paper profile resolves every run to its paper's protocol, and the cpu
profile is exactly its one visible block of overrides on top of that."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aubench.config import apply_profile, load_params
from aubench.errors import ConfigError
from aubench.train.runs import method_configs, resolve_run, run_specs

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def params_with(profile: str) -> dict:
    raw = yaml.safe_load(PARAMS.read_text())
    return apply_profile({**raw, "profile": profile})


def test_paper_profile_gives_stf_its_paper_protocol():
    """STF paper §4: ImageNet ResNet-18, 16-frame clips, SGD (momentum 0.9) at lr 0.01 with the eq. 7
    schedule (γ = 0.01, period 20), 240 epochs, 2 clips per step; SRM Top-K 3 (Table 4); 224² crops of
    256² aligned faces with random crop and flip."""
    params = params_with("paper")
    run = resolve_run(params, "stf")
    config, optim, train = run.method_config, run.optim, run.train_config(params)
    assert (config.backbone, config.pretrained, config.init_from) == ("resnet18", True, None)
    assert (config.clip_length, config.d, config.srm_top_k) == (16, 256, 3)
    assert (config.use_srm, config.use_trm, config.use_sff) == (True, True, True)
    assert (optim.optimizer, optim.lr, optim.momentum) == ("sgd", 0.01, 0.9)
    assert (optim.schedule, optim.cosine_period, optim.min_lr_ratio) == ("cosine_periodic", 20, 0.01)
    assert (optim.epochs, optim.batch_size) == (240, 2)
    assert (train.epochs, train.batch_size, train.epoch_fraction) == (None, None, 1.0)  # the method's own
    assert (train.input_size, train.augment, params["align"]["crop_size"]) == (224, True, 256)


def test_paper_profile_gives_the_baseline_the_shared_recipe():
    """No paper of its own: the ME-GraphAU recipe the cited results share (docs/methods/baseline.md)."""
    params = params_with("paper")
    run = resolve_run(params, "baseline")
    assert (run.method_config.backbone, run.method_config.pretrained) == ("resnet18", True)
    assert (run.optim.optimizer, run.optim.lr, run.optim.weight_decay) == ("adamw", 0.0001, 0.0005)
    assert (run.optim.schedule, run.optim.epochs, run.optim.batch_size) == ("cosine", 20, 64)


def test_paper_profile_gives_mcsfau_its_paper_protocol():
    """MC-SFAU §3–4.1 (seed 001): ResNet-50 at 256², all three objectives, τ = 0.99, k = 50, r = 40, γ = 0.6,
    α = 0.05, SGD (momentum 0.9, weight decay 5e-4) at lr 1e-3 with cosine decay, batch 256, 400 epochs;
    the probe (§4.2) on the online backbone of that pretraining; the config defaults are the same values."""
    from aubench.models.mcsfau import MCSFAUConfig
    from aubench.models.mcsfau_pretrain import MCSFAUPretrainConfig

    params = params_with("paper")
    pretrain, probe = resolve_run(params, "pretrain"), resolve_run(params, "mcsfau")
    config, optim = pretrain.method_config, pretrain.optim
    assert config == MCSFAUPretrainConfig() and probe.method_config == MCSFAUConfig()
    assert (config.backbone, config.feature_map, config.grid) == ("resnet50", "layer4", 8)
    assert (config.modules.mfdc, config.modules.mfrr, config.modules.mci) == (True, True, True)
    assert (config.mfdc.ema_tau, config.mfrr.k_iterations, config.mfrr.mask.side_px, config.mfrr.mask.prob,
            config.loss_weights.interaction) == (0.99, 50, 40, 0.6, 0.05)
    assert (optim.optimizer, optim.lr, optim.momentum, optim.weight_decay) == ("sgd", 0.001, 0.9, 0.0005)
    assert (optim.schedule, optim.min_lr_ratio, optim.epochs, optim.batch_size) == ("cosine", 0.0, 400, 256)
    assert (probe.method_config.init_from, probe.optim.optimizer, probe.optim.lr) == ("pretrain", "adam", 0.001)
    assert (probe.optim.epochs, probe.optim.batch_size) == (20, 256)
    rows = {name: resolve_run(params, name).method_config.modules for name in ("pretrain_mfdc_only", "pretrain_mfdc_mfrr")}
    assert (rows["pretrain_mfdc_only"].mfrr, rows["pretrain_mfdc_mfrr"].mfrr, rows["pretrain_mfdc_mfrr"].mci) == (
        False, True, False)


def test_paper_profile_gives_mdhr_its_paper_protocol():
    """MDHR §3–4 and its released code: ImageNet ResNet-50 fine-tuned end to end, 16-frame clips (one random
    window per video per epoch), k = 5, all four scales with adaptive weights (step kernels 8, 4, 2, 1), the
    code's four BP4D groups, λ = 0.01, the weighted asymmetric loss, AdamW (0.9, 0.999) at 1e-4 with a cosine
    to 0, weight decay 5e-4, 200 epochs, 8 clips; the config defaults are the same values. Table 3–5 rows
    switch only their modules."""
    from aubench.models.mdhr import MDHRConfig

    params = params_with("paper")
    run = resolve_run(params, "mdhr")
    config, optim = run.method_config, run.optim
    assert config == MDHRConfig()
    assert (config.backbone, config.pretrained, config.train_backbone, config.init_from) == ("resnet50", True, True, None)
    assert (config.clip_length, config.clip_sampler, config.feat_dim) == (16, "one_clip_per_sequence", 512)
    assert (config.mfd.layers, config.mfd.pad_to_grid, config.mfd.k, config.mfd.fusion) == (
        (1, 2, 3, 4), False, 5, "adaptive")
    assert (config.hsr.aux_weight, config.hsr.crm.edge_mode, config.loss.main) == (
        0.01, "cross_region_activated", "weighted_asymmetric")
    assert (optim.optimizer, optim.lr, optim.betas, optim.weight_decay) == ("adamw", 0.0001, (0.9, 0.999), 0.0005)
    assert (optim.schedule, optim.min_lr_ratio, optim.warmup_epochs, optim.epochs, optim.batch_size) == (
        "cosine", 0.0, 0.0, 200, 8)
    t3_5 = resolve_run(params, "mdhr_T3_5").method_config
    t4_sum = method_configs(params, "mdhr", params["variants"]["mdhr"]["T4_sum"])[1]  # a variant the default does not run
    assert (t3_5.mfd.enabled, t3_5.hsr.crm.enabled, t3_5.tcn.enabled, t3_5.hsr.aux) == (False, True, False, True)
    assert (t4_sum.mfd.fusion, t4_sum.hsr.aux, t4_sum.hsr.crm.enabled) == ("sum", False, False)


def test_every_run_resolves_under_both_profiles():
    for profile in ("paper", "cpu"):
        params = params_with(profile)
        for name in run_specs(params):
            run = resolve_run(params, name)
            for fold in (1, 2, 3):
                run.paths(fold)  # upstream entries agree with the configs' init_from


def test_cpu_profile_changes_exactly_its_block():
    raw = yaml.safe_load(PARAMS.read_text())
    assert raw["profile"] == "cpu" and load_params(PARAMS) == params_with("cpu")
    cpu, paper = params_with("cpu"), params_with("paper")
    changed = {(section, key) for section in paper if isinstance(paper[section], dict)
               for key in set(paper[section]) | set(cpu[section]) if paper[section].get(key) != cpu[section].get(key)}
    declared = {(section, key.split(".")[0]) for section, block in raw["profiles"]["cpu"].items() for key in block}
    assert changed == declared
    stf = resolve_run(cpu, "stf")
    assert (stf.method_config.init_from, stf.method_config.pretrained, stf.optim.optimizer) == ("baseline", False, "adamw")
    assert resolve_run(cpu, "baseline").method_config.init_from == "pretrain"


def test_unknown_profile_or_section_is_an_error():
    raw = yaml.safe_load(PARAMS.read_text())
    with pytest.raises(ConfigError, match="unknown profile 'gpu'"):
        apply_profile({**raw, "profile": "gpu"})
    with pytest.raises(ConfigError, match="profiles.cpu.trian"):
        apply_profile({**raw, "profiles": {"cpu": {"trian": {"epochs": 1}}}})
