"""Runs (main runs and ablation variants alike) resolve to the right method config; typos fail loudly."""
from pathlib import Path

import pytest

from aubench.errors import ConfigError
from aubench.eval.report import metrics_file
from aubench.train.runs import ablation_rows, parse_assignments, resolve_run, run_specs

PARAMS = {
    "k": 4,
    "stf": {"clip_length": 16, "srm_top_k": 3, "optim": {"lr": 0.01, "optimizer": "sgd"}},
    "ablate": {"folds": [1], "epochs": 2},
    "train": {"epochs": 5},
    "runs": {"scratch": [{"name": "baseline", "method": "baseline", "key": "baseline"}],
             "from_upstream": [{"name": "stf", "method": "stf", "key": "k", "upstream": "baseline"}],
             "ablation": {"stf": ["A1_baseline", "K5"]}},
    "variants": {"stf": {"A1_baseline": {"use_srm": False, "use_trm": False, "use_sff": False},
                         "K5": {"srm_top_k": 5, "optim.lr": 0.02}}},
}


def test_main_run_takes_its_top_level_key_and_command_line_overrides():
    run = resolve_run(PARAMS, "stf")
    assert run.method_config.srm_top_k == 4  # STF's `k`
    run = resolve_run(PARAMS, "stf", overrides=parse_assignments(["srm_top_k=2", "optim.lr=0.02"]))
    assert run.name == "stf" and run.method_config.srm_top_k == 2 and run.optim.lr == 0.02
    assert run.paths(2).predictions.as_posix() == "predictions/stf/fold2.npz"
    assert PARAMS["stf"]["optim"]["lr"] == 0.01  # params are not modified in place
    assert run.train_config(PARAMS).epochs == 5


def test_variant_applies_its_overrides_on_the_method_section_and_the_ablation_protocol():
    run = resolve_run(PARAMS, "stf_A1_baseline")
    assert run.name == "stf_A1_baseline" and run.method.name == "stf"
    assert not (run.method_config.use_srm or run.method_config.use_trm or run.method_config.use_sff)
    assert run.method_config.srm_top_k == 3  # variants do not read `k`
    assert run.optim.lr == 0.01 and run.train_config(PARAMS).epochs == 2
    assert run.spec.key == "variants.stf.A1_baseline" and run.spec.upstream == "baseline"
    k5 = resolve_run(PARAMS, "stf_K5")
    assert k5.method_config.srm_top_k == 5 and k5.optim.lr == 0.02


def test_unknown_run_key_or_assignment_is_an_error():
    with pytest.raises(ConfigError, match="no run named 'stf_K9'"):
        resolve_run(PARAMS, "stf_K9")
    with pytest.raises(ConfigError, match="srm_topk: unknown key; did you mean 'srm_top_k'"):
        resolve_run(PARAMS, "stf", overrides={"srm_topk": 2})
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_assignments(["srm_top_k"])
    missing = {**PARAMS, "variants": {"stf": {}}}
    with pytest.raises(ConfigError, match="names key 'variants.stf.K5'"):
        resolve_run(missing, "stf_K5")


def test_run_entries_are_checked():
    scratch_with_upstream = {"runs": {"scratch": [{"name": "a", "method": "stf", "key": "k", "upstream": "b"}]}}
    with pytest.raises(ConfigError, match="must not name an upstream"):
        run_specs(scratch_with_upstream)
    twice = {"runs": {"scratch": [{"name": "a", "method": "stf", "key": "k"}] * 2}}
    with pytest.raises(ConfigError, match="used twice"):
        run_specs(twice)
    with pytest.raises(ConfigError, match="unknown group"):
        run_specs({"runs": {"main": []}})


def test_ablation_rows_belong_to_a_from_upstream_run_and_live_in_its_folders():
    """A row is trained in its main run's stage (dvc.yaml lists one folder per stage), so its outputs are under
    the main run's; it takes the main run's method and upstream; it cannot be another run's upstream."""
    row = resolve_run(PARAMS, "stf_K5")
    assert row.spec.parent == "stf" and ablation_rows(PARAMS, "stf") == ["stf_A1_baseline", "stf_K5"]
    assert ablation_rows(PARAMS, "baseline") == []
    paths = row.paths(1)
    assert paths.checkpoint.as_posix() == "models/stf/ablations/stf_K5/fold1/checkpoint.pt"
    assert paths.predictions.as_posix() == "predictions/stf/ablations/stf_K5/fold1.npz"
    assert paths.live_dir.as_posix() == "dvclive/train/stf/ablations/stf_K5/fold1"
    assert metrics_file(row.name, True, parent=row.spec.parent).as_posix() == "metrics/ablations/stf/stf_K5.json"
    assert metrics_file("mcsfau_full", True).as_posix() == "metrics/ablations/mcsfau_full.json"
    with pytest.raises(ConfigError, match="belong to a run of runs.from_upstream, runs.pretrain or runs.from_pretrain, "
                                          "which 'baseline' is not"):
        run_specs({**PARAMS, "runs": {**PARAMS["runs"], "ablation": {"baseline": ["K5"]}}})
    with pytest.raises(ConfigError, match="expected a mapping"):
        run_specs({**PARAMS, "runs": {**PARAMS["runs"], "ablation": ["K5"]}})
    from_row = [*PARAMS["runs"]["from_upstream"], {"name": "x", "method": "stf", "key": "k", "upstream": "stf_K5"}]
    with pytest.raises(ConfigError, match="starts from the ablation row 'stf_K5'"):
        run_specs({**PARAMS, "runs": {**PARAMS["runs"], "from_upstream": from_row}})


def test_a_run_initialised_from_another_reads_that_runs_checkpoint_on_the_same_fold():
    variant = resolve_run(PARAMS, "stf_A1_baseline", overrides={"init_from": "baseline"})
    assert variant.paths(3).upstream["backbone"].as_posix() == "models/baseline/fold3/checkpoint.pt"
    assert resolve_run(PARAMS, "stf").paths(1).upstream == {}
    with pytest.raises(ConfigError, match="cannot start from its own checkpoint"):
        resolve_run(PARAMS, "stf", overrides={"init_from": "stf"}).paths(1)
    with pytest.raises(ConfigError, match="names upstream 'baseline'"):
        resolve_run(PARAMS, "stf", overrides={"init_from": "stf_K5"}).paths(1)


def test_a_method_sections_train_subsection_overrides_the_engine_settings_of_its_runs():
    params = {**PARAMS, "stf": {**PARAMS["stf"], "train": {"augment": False}}}
    assert resolve_run(params, "stf").train_config(params).augment is False
    assert resolve_run(params, "stf_A1_baseline").train_config(params).augment is False  # its variants too
    assert resolve_run(PARAMS, "stf").train_config(PARAMS).augment is True
    with pytest.raises(ConfigError, match=r"stf.train: unknown key\(s\) \['augmnet'\]"):
        resolve_run({**PARAMS, "stf": {**PARAMS["stf"], "train": {"augmnet": False}}}, "stf")


PRETRAINED = {
    "mcsfau_pretrain": {"backbone": "resnet18"},
    "mcsfau": {"backbone": "resnet18", "init_from": "pretrain"},
    "ablate": {"folds": [1], "epochs": 2},
    "runs": {"pretrain": [{"name": "pretrain", "method": "mcsfau_pretrain", "key": "mcsfau_pretrain"},
                          {"name": "other", "method": "mcsfau_pretrain", "key": "mcsfau_pretrain"}],
             "from_pretrain": [{"name": "mcsfau", "method": "mcsfau", "upstream": "pretrain", "key": "mcsfau"}],
             "ablation": {"pretrain": ["mfdc_only"], "other": ["mfdc_only"], "mcsfau": ["mfdc_only", "full"]}},
    "variants": {"mcsfau_pretrain": {"mfdc_only": {"modules": {"mfrr": False, "mci": False}}},
                 "mcsfau": {"mfdc_only": {"init_from": "pretrain_mfdc_only"}, "full": {"init_from": "pretrain"},
                            "elsewhere": {"init_from": "other_mfdc_only"}}},
}


def test_a_pretrainings_rows_live_in_its_folders_and_a_probes_rows_start_from_them():
    """MC-SFAU Table 3 as rows: `pretrain`'s stage pretrains `pretrain_mfdc_only` (no fold, its epochs from
    `ablate`), and `mcsfau`'s stage probes it, since both are outputs of the stages dvc.yaml tracks."""
    row = resolve_run(PRETRAINED, "pretrain_mfdc_only")
    assert (row.spec.group, row.spec.parent, row.spec.upstream) == ("pretrain", "pretrain", None)
    assert not row.method_config.modules.mfrr and row.train_config(PRETRAINED).epochs == 2
    paths = row.paths(None)
    assert paths.checkpoint.as_posix() == "models/pretrain/ablations/pretrain_mfdc_only/pool/checkpoint.pt"
    assert paths.live_dir.as_posix() == "dvclive/pretrain/pretrain/ablations/pretrain_mfdc_only"
    assert ablation_rows(PRETRAINED, "pretrain") == ["pretrain_mfdc_only"]
    probe = resolve_run(PRETRAINED, "mcsfau_mfdc_only")
    assert (probe.spec.group, probe.spec.parent) == ("ablation_from_pretrain", "mcsfau")
    assert probe.paths(1).upstream == {
        "backbone": Path("models/pretrain/ablations/pretrain_mfdc_only/pool/checkpoint.pt")}
    assert probe.paths(1).checkpoint.as_posix() == "models/mcsfau/ablations/mcsfau_mfdc_only/fold1/checkpoint.pt"
    assert resolve_run(PRETRAINED, "mcsfau_full").paths(1).upstream == {
        "backbone": Path("models/pretrain/pool/checkpoint.pt")}
    # another pretraining's row is not an output of the stage the probe's stage depends on
    with pytest.raises(ConfigError, match="starts its backbone from 'other_mfdc_only'"):
        resolve_run(PRETRAINED, "mcsfau_mfdc_only", overrides={"init_from": "other_mfdc_only"}).paths(1)
    # only rows reach the upstream's rows: a main run depends on its upstream's main checkpoint
    with pytest.raises(ConfigError, match="starts its backbone from 'pretrain_mfdc_only'"):
        resolve_run(PRETRAINED, "mcsfau", overrides={"init_from": "pretrain_mfdc_only"}).paths(1)
