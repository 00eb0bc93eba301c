"""Frame and clip samples over the aligned store: crops, flips, landmarks, clip windows (STF's "16 sampled
frames" as docs/methods/stf.md reads them, LAC's Algorithm 1 segments) and the sampling objects' shapes."""
import numpy as np
import pytest
import torch

from aubench.align.store import AlignedStore
from aubench.data.samples import (
    MIRROR_68,
    ClipDataset,
    ClipSampling,
    Crop,
    FrameDataset,
    FrameSampling,
    normalise,
    segment_windows,
)
from aubench.errors import ConfigError
from tests.conftest import write_index, write_sequence


def crop_and_flip(images: np.ndarray, size: int, draws: np.random.Generator | None) -> np.ndarray:
    return Crop.draw(images.shape[-3], size, draws).images(images)


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
    """LAC Algorithm 1: L=1000, t=16, N_sep=12 → 12 disjoint 16-frame clips, one per 83-frame segment."""
    draws = np.random.default_rng(0)
    for _ in range(50):
        windows = segment_windows([("S_T1", 1000)], 16, 12, draws)
        starts = sorted(start for _, start, _ in windows)
        assert len(windows) == 12
        for segment, start in enumerate(starts):
            assert segment * 83 <= start and start + 16 <= (segment + 1) * 83
        assert all(b - a >= 16 for a, b in zip(starts, starts[1:]))


def test_segment_sampler_short_sequences_and_endpoints():
    """LAC Algorithm 1: short subjects get fewer segments; both start endpoints of a segment are reachable."""
    draws = np.random.default_rng(1)
    assert len(segment_windows([("S", 100)], 16, 12, draws)) == 6
    assert segment_windows([("S", 10)], 16, 12, draws) == []
    starts = {segment_windows([("S", 1000)], 16, 12, draws)[0][1] for _ in range(3000)}
    assert min(starts) == 0 and max(starts) == 83 - 16


def test_segment_windows_never_cross_task_boundaries():
    """LAC Algorithm 1 over a subject's concatenated task sequences: windows stay inside one task sequence."""
    draws = np.random.default_rng(2)
    lengths = [("F001_T1", 40), ("F001_T2", 25), ("F001_T3", 50)]
    for _ in range(300):
        for key, start, _ in segment_windows(lengths, 16, 4, draws):
            assert 0 <= start and start + 16 <= dict(lengths)[key]


# --- landmarks follow the crop and the flip ----------------------------------------------------------------

def face_points() -> np.ndarray:
    """68 (x, y) points in a 40-pixel crop: left eye outer corner 36 at (12, 15), right eye outer corner 45
    at (28, 15), jaw ends 0 at (8, 18) and 16 at (33, 18), nose tip 30 at (20.5, 22); the rest random whole pixels."""
    points = np.random.default_rng(0).integers(8, 33, (68, 2)).astype(np.float32)
    points[[36, 45, 0, 16, 30]] = [(12, 15), (28, 15), (8, 18), (33, 18), (20.5, 22)]
    return points


def test_landmarks_follow_the_crop_offset_and_the_mirror():
    """Crop at (top 4, left 6) to 32²: x − 6, y − 4. Flipped: x → 31 − x, and each point takes its mirror's
    index (the image-left eye stays the image-left eye): 45 ← 36 at (31 − 6, 11) = (25, 11), 36 ← 45 at
    (31 − 22, 11) = (9, 11), 16 ← 0 at (31 − 2, 14) = (29, 14), 0 ← 16 at (31 − 27, 14) = (4, 14), and the
    nose tip 30 stays 30 at (31 − 14.5, 18) = (16.5, 18)."""
    points = face_points()
    moved = Crop(top=4, left=6, size=32, flip=False).points(points)
    np.testing.assert_array_equal(moved, points - [6, 4])
    assert moved[36].tolist() == [6, 11] and moved[45].tolist() == [22, 11] and moved[30].tolist() == [14.5, 18]
    flipped = Crop(top=4, left=6, size=32, flip=True).points(points)
    expected = {45: (25, 11), 36: (9, 11), 16: (29, 14), 0: (4, 14), 30: (16.5, 18)}
    for index, point in expected.items():
        assert flipped[index].tolist() == list(point), index
    assert flipped.dtype == np.float32
    # Every frame of a clip ((T, 68, 2)) gets the same crop and mirror.
    clip = Crop(top=4, left=6, size=32, flip=True).points(np.stack([points, points + 1]))
    np.testing.assert_array_equal(clip[0], flipped)
    np.testing.assert_array_equal(clip[1] - clip[0], np.tile([-1, 1], (68, 1)))


def test_mirror_68_swaps_sides_and_is_an_involution():
    """iBUG pairs: jaw 0↔16, brows 17↔26, nostrils 31↔35, eye outer corners 36↔45 and inner 39↔42, mouth
    corners 48↔54 and 60↔64; the midline (chin 8, bridge 27–30, lips 51, 57, 62, 66) maps to itself."""
    assert sorted(MIRROR_68.tolist()) == list(range(68))
    np.testing.assert_array_equal(MIRROR_68[MIRROR_68], np.arange(68))
    pairs = {0: 16, 17: 26, 31: 35, 36: 45, 39: 42, 37: 44, 41: 46, 48: 54, 60: 64, 59: 55}
    for left, right in pairs.items():
        assert MIRROR_68[left] == right and MIRROR_68[right] == left
    for midline in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66):
        assert MIRROR_68[midline] == midline


def bright_eye_store(root) -> AlignedStore:
    """One subject, 6 black 40² frames with one white pixel at landmark 36 (12, 15); 45 is at (28, 15)."""
    root.mkdir(parents=True, exist_ok=True)
    images = np.zeros((6, 40, 40, 3), dtype=np.uint8)
    images[:, 15, 12] = 255
    points = np.repeat(face_points()[None], 6, axis=0)
    labels = np.ones((6, 12), dtype=np.int8)
    entry = write_sequence(root, "F001", images, labels=labels, points=points)
    return AlignedStore.open(write_index(root, [entry], 40))


def test_sample_landmarks_stay_on_their_pixels_under_random_crops_and_flips(tmp_path):
    """In every augmented sample the white pixel lies at landmark 36 (not flipped) or at landmark 45 (flipped:
    the mirrored left eye corner is the right one), and 36 stays image-left of 45."""
    store = bright_eye_store(tmp_path)
    dataset = FrameDataset(store, ("F001",), 32, train=True, seed=3, fields=("landmarks",))
    flips = []
    for epoch in range(4):
        dataset.set_epoch(epoch)
        for item in range(len(dataset)):
            sample = dataset[item]
            landmarks = sample["landmarks"]
            assert landmarks.shape == (68, 2) and landmarks.dtype == torch.float32
            [(y, x)] = torch.nonzero(sample["image"][0] == 255).tolist()
            flipped = landmarks[45].tolist() == [x, y]
            assert flipped or landmarks[36].tolist() == [x, y]
            assert landmarks[36, 0] < landmarks[45, 0] and landmarks[36, 1] == landmarks[45, 1]
            flips.append(flipped)
    assert any(flips) and not all(flips)
    centre = FrameDataset(store, ("F001",), 32, train=False, fields=("landmarks",))[0]
    assert centre["landmarks"][36].tolist() == [8, 11]  # centre crop: offset (4, 4), no flip
    clip = ClipDataset(store, ("F001",), 32, train=True, sampling=ClipSampling(length=4, fields=("landmarks",)))[0]
    assert clip["landmarks"].shape == (4, 68, 2) and (clip["landmarks"] == clip["landmarks"][0]).all()


def test_unknown_field_or_clip_sampler_is_refused():
    with pytest.raises(ConfigError, match="landmarks"):
        FrameSampling(fields=("heatmaps",))
    with pytest.raises(ConfigError, match="full_pass"):
        ClipSampling(sampler="random")


# --- sampling objects: batch sizes and example inputs ------------------------------------------------------

def test_frame_sampling_samples_and_example_input():
    sampling = FrameSampling()
    assert sampling.frames_per_sample == 1 and sampling.samples(16) == 16 and sampling.samples(0) == 1
    example = sampling.example_input(32, 4)
    assert example.shape == (4, 3, 32, 32) and example.dtype == torch.float32
    torch.testing.assert_close(example, sampling.example_input(32, 4))  # seeded
    low, high = normalise(torch.zeros(1, 3, 1, 1, dtype=torch.uint8)), normalise(torch.full((1, 3, 1, 1), 255,
                                                                                              dtype=torch.uint8))
    assert (example >= low.min()).all() and (example <= high.max()).all()  # normalised uint8 images


def test_clip_sampling_samples_and_example_input():
    """A batch of F frames is F // T clips (at least one); the example input is clips (B, T, 3, H, W)."""
    sampling = ClipSampling(length=4)
    assert sampling.frames_per_sample == 4
    assert (sampling.samples(16), sampling.samples(6), sampling.samples(3)) == (4, 1, 1)
    assert sampling.example_input(32, 8).shape == (2, 4, 3, 32, 32)
    assert sampling.example_input(24, 2).shape == (1, 4, 3, 24, 24)


def test_clip_context_loads_neighbours_and_labels_only_the_central_frames(tiny_store):
    """`context` c: images hold T + 2c frames (the first / last frame repeated beyond the sequence's ends);
    targets, masks, positions and keep are the central T frames', so tiling still predicts each frame once."""
    store = AlignedStore.open(tiny_store)
    plain = ClipDataset(store, ("F001",), 32, train=False, sampling=ClipSampling(length=10))
    context = ClipDataset(store, ("F001",), 32, train=False, sampling=ClipSampling(length=10, context=2))
    assert ClipSampling(length=10, context=2).example_input(32, 20).shape == (2, 14, 3, 32, 32)
    assert len(context) == len(plain) == 3
    for item, expected_images in ((0, [0, 0] + list(range(12))), (2, list(range(12, 24)) + [23, 23])):
        sample, reference = context[item], plain[item]
        assert sample["image"].shape == (14, 3, 32, 32)
        for name in ("target", "mask", "positions", "keep"):
            assert torch.equal(sample[name], reference[name])
        assert torch.equal(sample["image"][2:12], reference["image"])
        single = [FrameDataset(store, ("F001",), 32, train=False)[frame]["image"] for frame in expected_images]
        assert torch.equal(sample["image"], torch.stack(single))
    with pytest.raises(ConfigError, match="context"):
        ClipSampling(context=-1)


def test_test_crop_resize_gives_the_whole_face_at_the_input_size(tiny_store):
    """`test_crop: resize` feeds the whole aligned face, shrunk, and scales landmarks alike; training ignores it."""
    store = AlignedStore.open(tiny_store)
    sampling = FrameSampling(fields=("landmarks",))
    whole = sampling.dataset(store, ("F001",), 20, train=False, test_crop="resize")[3]
    centre = sampling.dataset(store, ("F001",), 20, train=False)[3]
    assert whole["image"].shape == centre["image"].shape == (3, 20, 20)
    full = np.asarray(store.images("F001_T1")[3])  # 40×40 crop: every 2×2 block averages into one pixel
    expected = full.reshape(20, 2, 20, 2, 3).astype(float).mean((1, 3))
    np.testing.assert_allclose(whole["image"].movedim(0, -1).numpy(), expected, atol=1)
    np.testing.assert_allclose(whole["landmarks"].numpy(), store.landmarks("F001_T1")[3] / 2, rtol=1e-6)
    np.testing.assert_array_equal(centre["image"].movedim(0, -1).numpy(), full[10:30, 10:30])
    training = sampling.dataset(store, ("F001",), 20, train=True, test_crop="resize")[0]
    assert training["image"].shape == (3, 20, 20)
    with pytest.raises(ConfigError, match="test_crop"):
        sampling.dataset(store, ("F001",), 20, train=False, test_crop="full")
