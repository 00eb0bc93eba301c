"""Runs and ablation variants resolve to the right method config; typos fail loudly."""
import pytest

from aubench.errors import ConfigError
from aubench.train.runs import parse_assignments, resolve_run

PARAMS = {
    "stf": {"clip_length": 16, "optim": {"lr": 0.01, "optimizer": "sgd"}},
    "ablations": {"stf_A1_baseline": {"method": "stf", "overrides": {"use_srm": False, "use_trm": False,
                                                                      "use_sff": False}},
                  "stf_K5": {"method": "stf", "overrides": {"srm_top_k": 5}}},
}


def test_method_run_with_command_line_override():
    run = resolve_run(PARAMS, method="stf", overrides=parse_assignments(["srm_top_k=4", "optim.lr=0.02"]))
    assert run.name == "stf" and run.method_config.srm_top_k == 4 and run.optim.lr == 0.02
    assert run.paths(2).predictions.as_posix() == "predictions/stf/fold2.npz"
    assert PARAMS["stf"]["optim"]["lr"] == 0.01  # params are not modified in place


def test_variant_applies_its_overrides_on_the_method_section():
    run = resolve_run(PARAMS, variant="stf_A1_baseline")
    assert run.name == "stf_A1_baseline" and run.method.name == "stf"
    assert not (run.method_config.use_srm or run.method_config.use_trm or run.method_config.use_sff)
    assert run.optim.lr == 0.01
    assert run.paths(1).checkpoint.as_posix() == "models/stf_A1_baseline/fold1/checkpoint.pt"
    assert resolve_run(PARAMS, variant="stf_K5").method_config.srm_top_k == 5


def test_unknown_variant_key_or_assignment_is_an_error():
    with pytest.raises(ConfigError, match="ablations.stf_K9"):
        resolve_run(PARAMS, variant="stf_K9")
    with pytest.raises(ConfigError, match="srm_topk: unknown key; did you mean 'srm_top_k'"):
        resolve_run(PARAMS, method="stf", overrides={"srm_topk": 2})
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_assignments(["srm_top_k"])


def test_a_run_initialised_from_another_reads_that_runs_checkpoint_on_the_same_fold():
    variant = resolve_run(PARAMS, variant="stf_A1_baseline", overrides={"init_from": "baseline"})
    assert variant.paths(3).backbone_init.as_posix() == "models/baseline/fold3/checkpoint.pt"
    assert resolve_run(PARAMS, method="stf").paths(1).backbone_init is None
    with pytest.raises(ConfigError, match="cannot start from its own checkpoint"):
        resolve_run(PARAMS, method="stf", overrides={"init_from": "stf"}).paths(1)
