"""CIU (seed 003) against its paper and spec: attention maps from landmarks (eqs. 10–11), the balanced
teacher's weights (eq. 15), the adaptive weights (eqs. 5–6, spec §8 T1–T6), the cross-domain risk (eqs. 7–9)
on hand-worked numbers, the network's shapes and branch independence, and that no gradient reaches a
teacher while the student trains."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aubench.errors import ConfigError
from aubench.models.baseline import Baseline
from aubench.models.ciu import (CIUConfig, RiskConfig, Student, StudentLoss, adaptive_weights, cross_domain_risk,
                                load_teachers, student_step)
from aubench.models.ciu_teachers import (AU_CENTRES, JAANET49, AttentionRegressionNet, NetworkConfig, PartitionedConv,
                                         TeacherLosses, TeacherPair, attention_centres, attention_maps,
                                         balanced_weights, teachers_step)
from aubench.models.registry import get_method

BP4D = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
SMALL = NetworkConfig(unit_dim=2, attention_sigma=0.8)


def landmarks_with(points: dict[int, tuple[float, float]]) -> torch.Tensor:
    """(1, 68, 2) landmarks: the given 49-point indices at the given (x, y), every other point at (50, 50)."""
    landmarks = torch.full((1, 68, 2), 50.0)
    for index, xy in points.items():
        landmarks[0, JAANET49[index]] = torch.tensor(xy)
    return landmarks


def test_jaanet49_drops_the_jaw_and_the_inner_lip_corners():
    assert len(JAANET49) == 49 and JAANET49[0] == 17 and JAANET49[30] == 47
    assert 60 not in JAANET49 and 64 not in JAANET49 and JAANET49[31] == 48 and JAANET49[43] == 61


def test_au_centres_follow_the_table_with_the_eye_corner_scale():
    # inner eye corners 22 and 25 at x = 40 and 60: s = 20; inner brow ends 4, 5 at y = 80
    landmarks = landmarks_with({22: (40, 90), 25: (60, 90), 4: (45, 80), 5: (55, 80), 24: (30, 95), 29: (70, 95)})
    centres = attention_centres(landmarks, (1, 6))
    torch.testing.assert_close(centres[0, 0], torch.tensor([[45.0, 70.0], [55.0, 70.0]]))  # ½ s above
    torch.testing.assert_close(centres[0, 1], torch.tensor([[30.0, 115.0], [70.0, 115.0]]))  # s below
    assert set(BP4D) <= set(AU_CENTRES) and {9, 25, 26} <= set(AU_CENTRES)  # DISFA's too


def test_attention_map_is_two_rounded_gaussians_merged_by_their_maximum():
    # 176-px crop, 44-cell map: the AU7 centres (points 21, 26) at pixels (41, 82) and (130, 82) → cells
    # (10.25 → 10, 20.5 → 20 with round-half-even) and (32.5 → 32, 20)
    landmarks = landmarks_with({22: (80, 80), 25: (96, 80), 21: (41, 82), 26: (130, 82)})
    maps = attention_maps(landmarks, (7,), 176, 44, 3.0)[0, 0]
    assert maps.shape == (44, 44) and maps[20, 10] == 1 and maps[20, 32] == 1
    assert maps[20, 11].item() == pytest.approx(math.exp(-1 / 18))  # one cell away: exp(−1/(2δ²))
    assert maps[22, 12].item() == pytest.approx(math.exp(-8 / 18))
    assert maps[20, 21].item() == pytest.approx(math.exp(-(11 ** 2) / 18))  # the nearer centre counts
    assert maps.max() == 1 and maps.min() > 0


def test_attention_centres_outside_the_crop_are_clipped_to_the_map():
    landmarks = landmarks_with({22: (0, 0), 25: (100, 0), 4: (5, 5), 5: (300, 5)})  # s = 100: 50 px above the top
    maps = attention_maps(landmarks, (1,), 176, 44, 3.0)[0, 0]
    assert maps[0, 1] == 1 and maps[0, 43] == 1


def test_unknown_au_has_no_centre():
    with pytest.raises(ConfigError, match="AU \\[5\\]"):
        attention_centres(torch.zeros(1, 68, 2), (5,))


def test_balanced_weights_are_eq15():
    weights, positives = balanced_weights(np.array([0.5, 0.25]))
    torch.testing.assert_close(weights, torch.tensor([1 / 3, 2 / 3]))  # (n/n_j) / Σ_k (n/n_k)
    torch.testing.assert_close(positives, torch.tensor([1.0, 3.0]))  # (n − n_j) / n_j


@pytest.mark.parametrize("gamma, expected", [(0.0, 0.5), (1.0, 2 / 3), (2.0, 0.8), (5.0, 32 / 33)])
def test_adaptive_weights_on_the_spec_table(gamma, expected):
    """Spec §8 T3: XE^imba = 2, XE^ba = 1 — the worse-fitting teacher's domain gets the larger weight."""
    imbalanced, balanced = adaptive_weights(torch.tensor(2.0), torch.tensor(1.0), gamma)
    assert imbalanced.item() == pytest.approx(expected) and balanced.item() == pytest.approx(1 - expected)


def test_adaptive_weights_direction_equal_losses_and_stability():
    xe = torch.tensor([0.5, 1.0, 2.0])
    imbalanced, _ = adaptive_weights(xe, torch.ones(3), 1.0)
    torch.testing.assert_close(imbalanced, torch.tensor([1 / 3, 1 / 2, 2 / 3]))  # T2: grows with XE^imba
    for gamma in (0.0, 1.0, 20.0):
        assert adaptive_weights(torch.tensor(0.7), torch.tensor(0.7), gamma)[0].item() == pytest.approx(0.5)
    assert adaptive_weights(torch.tensor(0.0), torch.tensor(0.0), 5.0)[0].item() == 0.5  # 0/0 → 0.5 (A20)
    extreme = adaptive_weights(torch.tensor([1e-30, 1e-4]), torch.tensor([1.0, 1.0]), 20.0)[0]
    assert torch.isfinite(extreme).all() and (extreme < 1e-6).all()
    wide = adaptive_weights(torch.tensor(2.0), torch.tensor(1.0), 20.0)[0].item()
    assert wide == pytest.approx(1 - 1 / (2 ** 20 + 1)) and abs(wide - 0.5) > 0.49


def test_cross_domain_risk_on_hand_numbers():
    """One frame, one AU, y = 1. Student p = 0.75; imbalanced teacher p = 0.25 (XE = ln 4); balanced teacher
    p = 0.5 (XE = ln 2, soft label 0.5): w^imba = 2/3, w^ba = 1/3 at γ = 1."""
    student, target, mask = torch.tensor([[math.log(3)]]), torch.ones(1, 1), torch.ones(1, 1)
    imbalanced, balanced = torch.tensor([[-math.log(3)]]), torch.zeros(1, 1)
    risks = cross_domain_risk(student, target, mask, imbalanced, balanced, RiskConfig())
    assert risks["risk_imbalanced"].item() == pytest.approx(2 / 3 * -math.log(0.75))
    assert risks["risk_balanced"].item() == pytest.approx(1 / 3 * -(0.5 * math.log(0.75) + 0.5 * math.log(0.25)))
    te = cross_domain_risk(student, target, mask, imbalanced, balanced, RiskConfig(use_ba_risk=False))
    assert set(te) == {"risk_imbalanced"} and te["risk_imbalanced"] == risks["risk_imbalanced"]
    tde = cross_domain_risk(student, target, mask, imbalanced, balanced,
                            RiskConfig(use_imba_risk=False, keep_adaptive_weights_in_single_risk=False))
    assert set(tde) == {"risk_balanced"} and tde["risk_balanced"].item() == pytest.approx(3 * risks["risk_balanced"].item())
    flat = cross_domain_risk(student, target, mask, imbalanced, balanced, RiskConfig(gamma=0.0))
    assert flat["risk_imbalanced"].item() == pytest.approx(0.5 * -math.log(0.75))


def test_cross_domain_risk_masks_unknown_labels_and_sums_over_aus():
    student = torch.zeros(2, 3)
    target, mask = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    risks = cross_domain_risk(student, target, mask, torch.zeros(2, 3), torch.zeros(2, 3), RiskConfig())
    # frame 1: two known AUs at BCE ln 2 each, weight 1/2 per risk; frame 2 has no known label (not counted)
    assert risks["risk_imbalanced"].item() == pytest.approx(math.log(2))
    assert risks["risk_balanced"].item() == pytest.approx(math.log(2))


def test_per_au_weights_weigh_each_aus_own_cross_entropies():
    """AU 1 (y = 1) fits the balanced teacher, AU 2 (y = 0) the imbalanced one: summed over AUs the two
    teachers' XE are equal (weights 1/2); per AU, each AU's own XE ratio sets its weights."""
    student, target, mask = torch.ones(1, 2), torch.tensor([[1.0, 0.0]]), torch.ones(1, 2)
    imbalanced, balanced = torch.tensor([[-2.0, -2.0]]), torch.tensor([[2.0, 2.0]])
    bce = torch.nn.functional.softplus
    student_bce = [bce(torch.tensor(-1.0)).item(), bce(torch.tensor(1.0)).item()]
    per_sample = cross_domain_risk(student, target, mask, imbalanced, balanced, RiskConfig())
    assert per_sample["risk_imbalanced"].item() == pytest.approx(0.5 * sum(student_bce))
    per_au = cross_domain_risk(student, target, mask, imbalanced, balanced, RiskConfig(weight_granularity="sample_au"))
    xe_large, xe_small = bce(torch.tensor(2.0)).item(), bce(torch.tensor(-2.0)).item()
    w_au1 = xe_large / (xe_large + xe_small)  # AU 1: the imbalanced teacher fits it badly
    assert per_au["risk_imbalanced"].item() == pytest.approx(w_au1 * student_bce[0] + (1 - w_au1) * student_bce[1])


@pytest.mark.parametrize("changes, message", [({"gamma": -1.0}, "γ >= 0"),
                                              ({"use_imba_risk": False, "use_ba_risk": False}, "both false"),
                                              ({"weight_granularity": "frame"}, "sample or sample_au")])
def test_invalid_risk_settings_are_rejected(changes, message):
    with pytest.raises(ConfigError, match=message):
        RiskConfig(**changes)


def test_partitioned_conv_keeps_each_patch_to_itself():
    torch.manual_seed(0)
    conv = PartitionedConv(2, 3, grid=4).eval()
    features = torch.randn(1, 2, 16, 16)
    changed = features.clone()
    changed[:, :, 4:8, 8:12] += 1  # patch (1, 2) of the 4×4 grid
    difference = (conv(changed) - conv(features)).abs().sum(1)[0]
    assert difference[4:8, 8:12].min() > 0
    difference[4:8, 8:12] = 0
    assert difference.max() == 0  # no neighbour sees it, even at the patch border


def test_network_shapes_at_the_papers_size_and_separate_au_branches():
    torch.manual_seed(0)
    network = AttentionRegressionNet(12, NetworkConfig()).eval()
    logits, attention = network(torch.randn(2, 3, 176, 176))
    assert logits.shape == (2, 12) and attention.shape == (2, 12, 44, 44)
    assert ((attention > 0) & (attention < 1)).all()
    images = torch.randn(1, 3, 48, 48)
    small = AttentionRegressionNet(12, SMALL).eval()
    before = small(images)[0]
    with torch.no_grad():
        small.classifier.weight[3] += 1  # AU 4's FC only
    changed = (small(images)[0] - before).abs()[0]
    assert changed[3] > 0 and changed[torch.arange(12) != 3].max() == 0


def test_parameter_count_at_the_papers_configuration():
    """c = 8, 12 AUs: two R^hm layers, 12 branches of 7 convs (+ BN), 12 attention convs and 12 FCs."""
    def conv(cin, cout, k=3):
        return cin * cout * k * k + cout

    def bn(channels):
        return 2 * channels
    c, n = 8, 12

    def region(cin, unit):
        return (conv(cin, 4 * unit) + 64 * (bn(4 * unit) + conv(4 * unit, 2 * unit)) + 16 * (bn(2 * unit) + conv(2 * unit, unit))
                + 4 * (bn(unit) + conv(unit, unit)) + bn(4 * unit))
    branch = (4 * (conv(8 * c, 8 * c) + bn(8 * c)) + conv(8 * c, 1) + conv(8 * c, 12 * c) + bn(12 * c)
              + conv(12 * c, 12 * c) + bn(12 * c) + 12 * c + 1)
    expected = region(3, c) + region(4 * c, 2 * c) + n * branch
    network = AttentionRegressionNet(n, NetworkConfig())
    assert sum(p.numel() for p in network.parameters()) == expected == 5_067_960


def test_teachers_train_independently_on_eq13_and_eq14():
    torch.manual_seed(0)
    model, rates = TeacherPair(12, SMALL), np.linspace(0.1, 0.6, 12)
    losses = TeacherLosses(SMALL, rates)
    torch.testing.assert_close(losses.balanced.au_weights.sum(), torch.tensor(1.0))
    batch = {"image": torch.randn(4, 3, 48, 48), "target": (torch.rand(4, 12) > 0.5).float(),
             "mask": torch.ones(4, 12), "landmarks": torch.rand(4, 68, 2) * 48}
    output = teachers_step(model, losses, batch)
    assert set(output.terms) == {"imbalanced_bce", "imbalanced_attention", "balanced_bce", "balanced_attention"}
    output.terms["balanced_bce"].backward()
    assert all(p.grad is None for p in model.imbalanced.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.balanced.parameters())


def test_no_gradient_reaches_a_teacher_while_the_student_trains(tmp_path):
    torch.manual_seed(0)
    rates = np.linspace(0.1, 0.6, 12)
    teachers = TeacherPair(12, SMALL)
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model": teachers.state_dict(), "finished": True}, checkpoint)
    config = CIUConfig(network=SMALL)
    model = Student(12, SMALL)
    load_teachers(model, "teachers", checkpoint)
    model.train()
    assert not model.teachers.training and model.student.training
    before = {name: value.clone() for name, value in model.teachers.state_dict().items()}
    batch = {"image": torch.randn(4, 3, 48, 48), "target": (torch.rand(4, 12) > 0.5).float(),
             "mask": torch.ones(4, 12), "landmarks": torch.rand(4, 68, 2) * 48}
    output = student_step(model, StudentLoss(config, rates), batch)
    assert set(output.terms) == {"risk_imbalanced", "risk_balanced", "attention"}
    sum(output.terms.values()).backward()
    assert all(p.grad is None and not p.requires_grad for p in model.teachers.parameters())
    assert all(p.grad is not None for p in model.student.parameters())
    after = model.teachers.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)  # eval mode: BN statistics untouched
    assert list(get_method("ciu").trainable(model)) == list(model.student.parameters())


def test_student_refuses_teachers_of_another_network(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model": TeacherPair(12, NetworkConfig(unit_dim=4)).state_dict(), "finished": True}, checkpoint)
    with pytest.raises(ConfigError, match=f"{checkpoint}.*ciu.network"):
        load_teachers(Student(12, SMALL), "teachers", checkpoint)
    torch.save({"model": {}, "finished": False}, checkpoint)
    with pytest.raises(ConfigError, match="not finished"):
        load_teachers(Student(12, SMALL), "teachers", checkpoint)


def test_student_names_its_teachers_run_as_its_upstream():
    assert get_method("ciu").upstream(CIUConfig()) == {"teachers": "ciu_teachers"}
    assert get_method("ciu_teachers").upstream(get_method("ciu_teachers").config_type()) == {}


def test_macs_at_the_papers_configuration_match_a_count_by_hand():
    """Multiply-accumulates of every conv and FC at 176² (flop counter / 2) against the layer shapes."""
    from torch.utils.flop_counter import FlopCounterMode

    def conv(cin, cout, pixels, k=3):
        return cin * cout * k * k * pixels
    c, n, full, half, quarter = 8, 12, 176 ** 2, 88 ** 2, 44 ** 2

    def region(cin, unit, pixels):  # per-patch convs cover the whole map once
        return (conv(cin, 4 * unit, pixels) + conv(4 * unit, 2 * unit, pixels) + conv(2 * unit, unit, pixels)
                + conv(unit, unit, pixels))
    branch = (4 * conv(8 * c, 8 * c, quarter) + conv(8 * c, 1, quarter) + conv(8 * c, 12 * c, quarter)
              + conv(12 * c, 12 * c, 22 ** 2) + 12 * c)
    expected = region(3, c, full) + region(4 * c, 2 * c, half) + n * branch
    network = AttentionRegressionNet(n, NetworkConfig()).eval()
    with FlopCounterMode(display=False) as counter:
        network(torch.zeros(1, 3, 176, 176))
    assert counter.get_total_flops() // 2 == expected
    assert 5.7e9 < expected < 5.8e9  # 5.77 G MACs per frame


def test_teachers_trunks_start_from_the_stem_and_first_stages_of_a_finished_baseline(tmp_path):
    """`network.trunk: resnet18` (the CPU profile): both teachers' frozen trunks are the baseline's stem and
    layers 1–2, by key names; an unfinished run or one without a ResNet is refused, naming the file."""
    torch.manual_seed(0)
    baseline, teachers = Baseline(12), TeacherPair(12, NetworkConfig(unit_dim=2, trunk="resnet18", trunk_stages=2))
    checkpoint = tmp_path / "baseline.pt"
    torch.save({"model": baseline.state_dict(), "finished": True}, checkpoint)
    get_method("ciu_teachers").load_upstream(teachers, "backbone", checkpoint)
    expected = baseline.trunk.state_dict()
    for trunk in (teachers.imbalanced.trunk, teachers.balanced.trunk):
        loaded = trunk.state_dict()
        assert loaded and all(torch.equal(value, expected[key]) for key, value in loaded.items())
    torch.save({"model": baseline.state_dict(), "finished": False}, checkpoint)
    with pytest.raises(ConfigError, match="baseline.pt: that run has not finished"):
        get_method("ciu_teachers").load_upstream(teachers, "backbone", checkpoint)
    torch.save({"model": {"head.weight": torch.zeros(1)}, "finished": True}, checkpoint)
    with pytest.raises(ConfigError, match="baseline.pt: holds no ResNet-18 backbone"):
        get_method("ciu_teachers").load_upstream(teachers, "backbone", checkpoint)
