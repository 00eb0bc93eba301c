"""Image- and clip-mode datasets over the aligned store (stf.md §2.3 clip recommendations)."""
import numpy as np
import pytest
import torch

from aubench.align.store import AlignedStore
from aubench.data.clips import ClipSampling, segment_windows
from aubench.train.data import ClipDataset, FrameDataset, crop_and_flip, normalise


def test_centre_crop_and_seeded_random_crop():
    images = np.arange(6 * 6 * 3, dtype=np.uint8).reshape(6, 6, 3)
    np.testing.assert_array_equal(crop_and_flip(images, 4, None), images[1:5, 1:5])
    first = crop_and_flip(images, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(first, crop_and_flip(images, 4, np.random.default_rng(0)))


def test_one_augmentation_per_clip():
    """All frames of a clip share the crop offset and the flip."""
    clip = np.stack([np.full((8, 8, 3), value, dtype=np.uint8) for value in range(5)])
    clip[:, :, :4] += 100  # left half brighter, so a flip is visible
    for seed in range(8):
        out = crop_and_flip(clip, 6, np.random.default_rng(seed))
        sides = out[:, 0, 0, 0] > out[:, 0, -1, 0]
        assert sides.all() or not sides.any()


def test_frames_dataset_items_and_mask(tiny_store):
    store = AlignedStore.open(tiny_store)
    train = FrameDataset(store, ("F001", "F002"), 32, train=True)
    test = FrameDataset(store, ("F003",), 32, train=False)
    item = train[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.uint8
    assert item["target"].shape == item["mask"].shape == (12,)
    labels = store.labels("F003_T1")
    assert len(test) == 24
    np.testing.assert_array_equal(test[5]["mask"].numpy(), labels[5] != -1)
    np.testing.assert_array_equal(test[5]["target"].numpy(), np.clip(labels[5], 0, 1))


def test_unlabeled_frames_for_pretraining(tiny_store):
    store = AlignedStore.open(tiny_store)
    labels = store.labels("F001_T1")
    labels[[3, 7]] = -1  # two frames with no known label (e.g. no face found)
    np.savez(tiny_store / "F001_T1.npz", frame_numbers=store.frame_numbers("F001_T1"), labels=labels)
    supervised = FrameDataset(store, ("F001",), 32, train=True)
    pretraining = FrameDataset(store, ("F001",), 32, train=True, labelled_only=False)
    assert len(supervised) == 22 and len(pretraining) == 24
    assert 3 not in supervised.index.positions and 3 in pretraining.index.positions


def test_test_clips_cover_every_frame_exactly_once(tiny_store):
    store = AlignedStore.open(tiny_store)
    dataset = ClipDataset(store, ("F001",), 32, train=False, sampling=ClipSampling(length=10))  # 24 frames: 0-9, 10-19, 14-23 keep 20-23
    covered = np.zeros(24, dtype=int)
    for item in range(len(dataset)):
        sample = dataset[item]
        assert sample["image"].shape == (10, 3, 32, 32)
        covered[sample["positions"][sample["keep"]].numpy()] += 1
    assert (covered == 1).all()


def test_short_sequence_is_padded_and_masked(tiny_store):
    store = AlignedStore.open(tiny_store)
    dataset = ClipDataset(store, ("F002",), 32, train=False, sampling=ClipSampling(length=30))
    [sample] = [dataset[0]]
    assert len(dataset) == 1 and sample["image"].shape[0] == 30
    assert not sample["mask"][24:].any() and sample["keep"].sum() == 24
    assert (sample["positions"][24:] == 23).all()


@pytest.mark.parametrize("sampler", ["full_pass", "one_clip_per_sequence", "segments"])
def test_training_windows_change_per_epoch_and_stay_inside(tiny_store, sampler):
    store = AlignedStore.open(tiny_store)
    dataset = ClipDataset(store, ("F001", "F002", "F003"), 32, train=True,
                          sampling=ClipSampling(length=8, sampler=sampler))
    epochs = []
    for epoch in range(4):
        dataset.set_epoch(epoch)
        epochs.append(list(dataset.windows))
        assert all(0 <= start <= 24 - 8 for _, start, _ in dataset.windows)
    assert len({tuple(windows) for windows in epochs}) > 1
    if sampler == "one_clip_per_sequence":
        assert len(epochs[0]) == 3


def test_normalise_uses_imagenet_statistics():
    white = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalise(white)
    assert out[0, :, 0, 0].tolist() == pytest.approx([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225])


def test_segment_sampler_lac_algorithm_1():
    """lac.md §8 checks 1–3: L=1000, t=16, N_sep=12 → 12 disjoint 16-frame clips, one per 83-frame segment."""
    draws = np.random.default_rng(0)
    for _ in range(50):
        windows = segment_windows([("S_T1", 1000)], 16, 12, draws)
        starts = sorted(start for _, start, _ in windows)
        assert len(windows) == 12
        for segment, start in enumerate(starts):
            assert segment * 83 <= start and start + 16 <= (segment + 1) * 83
        assert all(b - a >= 16 for a, b in zip(starts, starts[1:]))


def test_segment_sampler_short_sequences_and_endpoints():
    """lac.md §8 checks 5 and 8: short subjects get fewer segments; both start endpoints are reachable."""
    draws = np.random.default_rng(1)
    assert len(segment_windows([("S", 100)], 16, 12, draws)) == 6
    assert segment_windows([("S", 10)], 16, 12, draws) == []
    starts = {segment_windows([("S", 1000)], 16, 12, draws)[0][1] for _ in range(3000)}
    assert min(starts) == 0 and max(starts) == 83 - 16


def test_segment_windows_never_cross_task_boundaries():
    """lac.md §8 check 9: subject_concat windows stay inside one task sequence."""
    draws = np.random.default_rng(2)
    lengths = [("F001_T1", 40), ("F001_T2", 25), ("F001_T3", 50)]
    for _ in range(300):
        for key, start, _ in segment_windows(lengths, 16, 4, draws):
            assert 0 <= start and start + 16 <= dict(lengths)[key]
