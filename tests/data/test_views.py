"""MC-SFAU views (spec seed 001, §2.3 and §7 check 25): two independent augmented draws per frame,
deterministic per (seed, epoch, item); each Table 8 single-op policy applies only its operation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from aubench.align.store import AlignedStore
from aubench.data import views
from aubench.data.views import POLICIES, AugmentConfig, ViewsSampling, draw_view
from aubench.errors import ConfigError
from tests.conftest import make_store

SIZE = 32
SUBJECTS = ("F001", "F002")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> AlignedStore:
    return AlignedStore.open(make_store(tmp_path_factory.mktemp("views"), subjects=2, frames=6, crop=40))


def dataset(store, seed=0, **sampling):
    return ViewsSampling(fields=("landmarks",), **sampling).dataset(store, SUBJECTS, SIZE, True, seed)


def blocks(size=48) -> torch.Tensor:
    """A (3, size, size) uint8 face stand-in: 6×6-pixel blocks of distinct colours."""
    index = torch.arange(size) // 6
    cells = index.view(-1, 1) * 8 + index.view(1, -1)
    return torch.stack([(cells * 37 + 11) % 200 + 20, (cells * 53 + 7) % 200 + 20, (cells * 71) % 200 + 20]).byte()


def constant(size=48) -> torch.Tensor:
    return torch.tensor([100, 150, 200], dtype=torch.uint8).view(3, 1, 1).expand(3, size, size).clone()


def view(image, seed=0, **augment) -> torch.Tensor:
    return draw_view(image, SIZE, AugmentConfig(**augment), np.random.default_rng(seed))


# --- the dataset ----------------------------------------------------------------------------------------

def test_views_have_the_input_shape_differ_from_each_other_and_are_redrawn_identically(store):
    first = dataset(store)[3]
    assert set(first) >= {"image", "view1", "view2", "landmarks"}
    for name in ("image", "view1", "view2"):
        assert first[name].shape == (3, SIZE, SIZE) and first[name].dtype == torch.uint8
    assert not torch.equal(first["view1"], first["view2"])  # two independent draws of the policy
    again = dataset(store)[3]
    assert all(torch.equal(first[name], again[name]) for name in first)  # same (seed, epoch, item)
    other_epoch = dataset(store)
    other_epoch.set_epoch(1)
    later = other_epoch[3]
    assert torch.equal(later["image"], first["image"])  # the MFRR input P is not augmented
    assert not torch.equal(later["view1"], first["view1"])
    assert not torch.equal(dataset(store, seed=1)[3]["view1"], first["view1"])


def test_samples_per_epoch_draws_that_many_frames_again_each_epoch(store):
    pool = dataset(store)
    assert len(pool) == 12
    chosen = dataset(store, samples_per_epoch=5)
    first = [chosen.sample_key(item) for item in range(5)] + list(chosen.chosen)
    assert len(chosen) == 5
    chosen.set_epoch(1)
    assert list(chosen.chosen) != first[5:]


def test_unknown_policy_is_a_config_error():
    with pytest.raises(ConfigError, match="policy"):
        AugmentConfig(policy="cutout")


# --- the policies (Table 8) -----------------------------------------------------------------------------

class RecordingTF:
    """Stands in for torchvision's functional module inside `views`, recording which operations run."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def __getattr__(self, name):
        original = getattr(TF, name)
        if not callable(original) or name[0].isupper():
            return original

        def record(*args, **kwargs):
            self.calls.append(name)
            return original(*args, **kwargs)
        return record


GEOMETRY = {"crop": {"resized_crop"}, "rotation": {"rotate"}}
JITTER = {"adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue"}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_each_policy_applies_only_its_operations(policy, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(views, "TF", RecordingTF(calls))
    operations = POLICIES[policy]
    for seed in range(4):
        view(blocks(), seed, policy=policy, jitter_probability=1.0)
        expected = set().union(*(GEOMETRY.get(operation, set()) for operation in operations))
        expected |= JITTER if "jitter" in operations else set()
        expected |= set() if "crop" in operations else {"center_crop"}
        assert set(calls) == expected and calls.count("adjust_hue") == ("jitter" in operations)
        calls.clear()


def test_color_jitter_leaves_the_geometry():
    centre = TF.center_crop(blocks(), [SIZE, SIZE])
    assert torch.equal(view(blocks(), policy="color_jitter", jitter_probability=0.0), centre)
    for seed in range(3):
        jittered = view(blocks(), seed, policy="color_jitter", jitter_probability=1.0)
        assert not torch.equal(jittered, centre)
        # a per-pixel colour map: pixels of one colour before still share one colour after
        before, after = centre.flatten(1).T, jittered.flatten(1).T
        same_before = (before[:, None] == before[None]).all(-1)
        assert (after[:, None] == after[None]).all(-1)[same_before].all()


def test_random_crop_keeps_the_colours_and_moves_the_face():
    for seed in range(3):
        assert torch.equal(view(constant(), seed, policy="random_crop"), constant(SIZE))
        assert not torch.equal(view(blocks(), seed, policy="random_crop"), TF.center_crop(blocks(), [SIZE, SIZE]))


def test_random_rotation_turns_about_the_centre_and_keeps_the_colours():
    assert torch.equal(view(blocks(), policy="random_rotation", degrees=0.0), TF.center_crop(blocks(), [SIZE, SIZE]))
    rows, columns = torch.meshgrid(torch.arange(SIZE) - 15.5, torch.arange(SIZE) - 15.5, indexing="ij")
    inside = rows.hypot(columns) <= 14
    for seed in range(3):
        rotated = view(constant(), seed, policy="random_rotation")
        assert torch.equal(rotated[:, inside], constant(SIZE)[:, inside])  # colours kept inside the face
        # the corners come from outside the crop: blended with the fill value 0, never brighter
        corners = rotated[:, [0, 0, -1, -1], [0, -1, 0, -1]]
        assert (rotated <= constant(SIZE)).all() and (corners < constant(4)[:, 0]).all()
