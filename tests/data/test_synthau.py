"""SynthAU: layout round trip, determinism, the AU rig against FACS, dlib on the frames, label statistics."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from aubench.config import section
from aubench.data.aus import ALL_AUS, BP4D_AUS, UNKNOWN
from aubench.data.datasets import DatasetConfig, load_sequences
from aubench.data.synthau import SynthConfig, generate, generate_labels, tiny_config
from aubench.data.synthau.faces import Face, eye_centres, mirror, photo_face
from aubench.data.synthau.generator import make_identity
from aubench.data.synthau.render import Nuisance, render_frame, sample_pose_track
from aubench.data.synthau.rig import MIRROR, RIG, au_displacement
from aubench.errors import ConfigError, DataError
from aubench.seeding import rng

BP4D_COLUMNS = [ALL_AUS.index(au) for au in BP4D_AUS]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SynthConfig:
    """3 subjects x 1 task x 12 frames; more 'not coded' cells than default so some surely appear."""
    config = tiny_config(tmp_path_factory.mktemp("synthau") / "synthau", not_coded=0.03)
    generate(config)
    return config


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and path.name != "synthau.json"}  # the manifest names its own root


def _dataset(config: SynthConfig) -> DatasetConfig:
    return DatasetConfig(name="synthau", layout=config.layout, root=config.root)


# --- layout ---------------------------------------------------------------------------------------------

def test_bp4d_layout_reads_back_through_the_real_adapter(tiny: SynthConfig) -> None:
    records = load_sequences(_dataset(tiny))
    assert [record.key for record in records] == ["F001_T1", "F002_T1", "M001_T1"]
    expected = {f"{item.subject}_{item.task}": item for item in generate_labels(tiny)}
    root = Path(tiny.root)
    for record in records:
        frames = list(record.frames)
        assert len(frames) == 12 and all(frame.shape == (256, 256, 3) for frame in frames)
        assert record.frame_numbers.tolist() == list(range(1, 13))
        truth = expected[record.key]
        assert np.array_equal(record.labels, np.where(truth.coded == 9, UNKNOWN, truth.coded)[:, BP4D_COLUMNS])
        landmarks = np.load(root / "SynthAU_Landmarks" / f"{record.key}.npy")
        intensity = np.load(root / "SynthAU_Intensity" / f"{record.key}.npy")
        assert landmarks.shape == (12, 68, 2) and landmarks.dtype == np.float32
        assert intensity.shape == (12, len(ALL_AUS)) and intensity.dtype == np.float32
        coded = record.labels != UNKNOWN  # labels are the written intensity cut at 2 (what is rendered)
        assert np.array_equal(record.labels[coded], (intensity[:, BP4D_COLUMNS] >= 2).astype(np.int8)[coded])


def test_label_csv_has_every_au_column_and_nine_means_not_coded(tiny: SynthConfig) -> None:
    path = Path(tiny.root) / "AUCoding" / "AU_OCC" / "F001_T1.csv"
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    assert header[0] == "0" and {str(au) for au in ALL_AUS} <= set(header[1:])
    nines = 0
    for record in load_sequences(_dataset(tiny)):
        with (Path(tiny.root) / "AUCoding" / "AU_OCC" / f"{record.key}.csv").open(newline="") as handle:
            table = np.array([[int(cell) for cell in row] for row in list(csv.reader(handle))[1:]])
        raw = table[:, [header.index(str(au)) for au in BP4D_AUS]]
        assert np.array_equal(raw == 9, record.labels == UNKNOWN)
        nines += int((raw == 9).sum())
    assert nines > 0


def test_disfa_layout_reads_back(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "disfa", layout="disfa", subjects=2, tasks=2, frames=6)
    generate(config)
    records = load_sequences(_dataset(config))
    assert [record.key for record in records] == ["SN001_video", "SN002_video"]
    for record in records:
        assert len(list(record.frames)) == 12 and record.labels.shape == (12, 8)
        intensity = np.load(tmp_path / "disfa" / "SynthAU_Intensity" / f"{record.key}.npy")
        columns = [ALL_AUS.index(au) for au in (1, 2, 4, 6, 9, 12, 25, 26)]
        assert np.array_equal(record.labels, (np.rint(intensity[:, columns]) >= 2).astype(np.int8))


# --- determinism and safety -----------------------------------------------------------------------------

def test_same_seed_gives_identical_files_and_another_seed_differs(tiny: SynthConfig, tmp_path: Path) -> None:
    again = tiny_config(tmp_path / "again", not_coded=0.03)
    generate(again)
    assert _files(Path(tiny.root)) == _files(tmp_path / "again")
    other = tiny_config(tmp_path / "other", not_coded=0.03, seed=1)
    generate(other)
    first, second = _files(Path(tiny.root)), _files(tmp_path / "other")
    assert first.keys() == second.keys()
    assert first["AUCoding/AU_OCC/F001_T1.csv"] != second["AUCoding/AU_OCC/F001_T1.csv"]
    assert first["Sequences/F001/T1/0001.jpg"] != second["Sequences/F001/T1/0001.jpg"]


def test_refuses_to_overwrite_a_foreign_folder_and_leaves_no_partial_output(tmp_path: Path) -> None:
    root = tmp_path / "precious"
    root.mkdir()
    (root / "thesis.tex").write_text("keep me")
    with pytest.raises(DataError, match="refusing to overwrite"):
        generate(tiny_config(root))
    assert (root / "thesis.tex").read_text() == "keep me"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["precious"]


def test_config_rejects_typos_and_out_of_range_values() -> None:
    with pytest.raises(ConfigError, match="did you mean 'subjects'"):
        section(SynthConfig, {"synthesize": {"subject": 3}}, "synthesize")
    with pytest.raises(ConfigError, match="synthesize.iod"):
        section(SynthConfig, {"synthesize": {"iod": 120.0}}, "synthesize")
    with pytest.raises(ConfigError, match="synthesize.layout"):
        section(SynthConfig, {"synthesize": {"layout": "ck+"}}, "synthesize")


# --- the AU rig against FACS ----------------------------------------------------------------------------

BROWS, EYES, NOSE, MOUTH = range(17, 27), range(36, 48), range(27, 36), range(48, 68)
LOWER_JAW = range(4, 13)
UP, DOWN, LEFT, RIGHT = (1, -1), (1, 1), (0, -1), (0, 1)  # (axis, sign) of the displacement in image axes
#: FACS expectations, written independently of the rig table: region allowed to move, and required moves.
FACS = {
    1: ({*BROWS}, {21: [UP], 22: [UP]}),
    2: ({*BROWS}, {17: [UP], 26: [UP]}),
    4: ({*BROWS}, {21: [DOWN, RIGHT], 22: [DOWN, LEFT]}),
    6: ({*EYES, *BROWS}, {40: [UP], 41: [UP], 46: [UP], 47: [UP]}),
    7: ({*EYES}, {40: [UP], 47: [UP], 37: [DOWN], 44: [DOWN]}),
    9: ({*NOSE, *BROWS, *MOUTH}, {31: [UP], 35: [UP], 21: [DOWN], 22: [DOWN]}),
    10: ({*MOUTH, *NOSE}, {50: [UP], 51: [UP], 52: [UP], 62: [UP]}),
    12: ({*MOUTH}, {48: [UP, LEFT], 54: [UP, RIGHT]}),
    14: ({*MOUTH}, {48: [RIGHT], 54: [LEFT]}),
    15: ({*MOUTH}, {48: [DOWN], 54: [DOWN]}),
    17: ({*MOUTH, *LOWER_JAW}, {8: [UP], 57: [UP]}),
    23: ({*MOUTH}, {48: [RIGHT], 54: [LEFT]}),
    24: ({*MOUTH}, {51: [DOWN], 57: [UP]}),
    25: ({*MOUTH}, {57: [DOWN], 66: [DOWN], 62: [UP]}),
    26: ({*MOUTH, *LOWER_JAW}, {8: [DOWN], 57: [DOWN], 66: [DOWN]}),
}


def test_facs_table_covers_every_animated_au() -> None:
    assert set(FACS) == set(ALL_AUS) == set(RIG)


@pytest.mark.parametrize("au", ALL_AUS)
def test_each_au_moves_only_its_declared_landmarks_in_the_facs_direction(au: int) -> None:
    displacement = au_displacement(au, 5.0)
    moved = set(np.flatnonzero(np.abs(displacement).sum(axis=1) > 1e-9).tolist())
    region, required = FACS[au]
    assert moved == set(RIG[au].points)
    assert moved <= region, f"AU{au} moves landmarks outside its FACS region: {sorted(moved - region)}"
    for point, directions in required.items():
        for axis, sign in directions:
            assert sign * displacement[point, axis] > 0.01, f"AU{au}: point {point} axis {axis}"
    assert np.allclose(au_displacement(au, 2.0), displacement * 2 / 5)  # linear in intensity
    assert not au_displacement(au, 0.0).any()


@pytest.mark.parametrize("au", ALL_AUS)
def test_each_rig_is_left_right_symmetric(au: int) -> None:
    displacement = au_displacement(au, 5.0)
    mirrored = displacement[MIRROR] * np.array([-1.0, 1.0])
    assert np.allclose(mirrored, displacement)


def test_subtle_aus_move_less_than_smile_and_mouth_opening() -> None:
    def reach(au: int) -> float:
        return float(np.linalg.norm(au_displacement(au, 5.0), axis=1).max())

    subtle = [au for au in ALL_AUS if RIG[au].subtle]
    assert set(subtle) == {1, 2, 15, 23, 24}
    assert max(reach(au) for au in subtle) < min(reach(au) for au in (12, 25, 26))


def test_mirroring_remaps_landmark_indices_like_dlib_on_the_flipped_photo() -> None:
    from aubench.landmarks.dlib_backend import DlibLandmarker

    face = photo_face("grace_hopper")
    flipped = mirror(face)
    assert np.array_equal(MIRROR[MIRROR], np.arange(68))
    landmarker = DlibLandmarker()
    fitted = landmarker.fit(flipped.image, landmarker.detect(flipped.image))
    error = np.linalg.norm(fitted - flipped.landmarks, axis=1) / Face(face.image, face.landmarks).iod
    assert error.max() < 0.25  # a wrong left/right pairing puts a point half a mouth width off
    left, right = eye_centres(flipped.landmarks)
    assert left[0] < right[0]


# --- frames are real-looking faces: dlib finds them and its landmarks match the ground truth -------------

def test_dlib_detects_faces_and_matches_ground_truth_landmarks(tiny: SynthConfig) -> None:
    from aubench.landmarks.dlib_backend import DlibLandmarker

    landmarker = DlibLandmarker()
    detected, errors = 0, []
    for record in load_sequences(_dataset(tiny)):
        truth = np.load(Path(tiny.root) / "SynthAU_Landmarks" / f"{record.key}.npy")
        for frame, landmarks in zip(record.frames, truth):
            box = landmarker.detect(frame)
            if box is None:
                continue
            detected += 1
            left, right = eye_centres(landmarks)
            fitted = landmarker.fit(frame, box)
            errors.append(np.linalg.norm(fitted - landmarks, axis=1).mean() / np.linalg.norm(right - left))
    assert detected >= 0.9 * 36
    assert np.mean(errors) < 0.1
    assert np.median(errors) < 0.045  # ground truth that misses the head-motion transform is ~0.05 off


@pytest.fixture(scope="module")
def still() -> tuple[object, ...]:
    """An identity and a renderer without nuisance, to look at one AU at a time.

    The mirrored astronaut: dlib follows her lips well (on Grace Hopper's thin lips it under-reads AU12).
    """
    config = SynthConfig()
    identity = make_identity(config, 2, "F002")
    calm = Nuisance(head_motion=0.0, lighting=0.0, noise=0.0, blur=0.0)
    track = sample_pose_track(rng(0, "test"), 1, config.fps, config.frame_size, calm)
    return identity, calm, track, config.frame_size


@pytest.mark.parametrize(("au", "points"), [(26, (8, 57)), (12, (48, 54)), (25, (57, 66))])
def test_rendered_au_moves_the_face_where_the_ground_truth_says(still: tuple[object, ...], au: int,
                                                                points: tuple[int, ...]) -> None:
    """dlib, run on the pixels, sees the landmarks move as the ground truth does (warp direction and size)."""
    from aubench.landmarks.dlib_backend import DlibLandmarker

    identity, calm, track, size = still
    landmarker = DlibLandmarker()
    seen, truth = [], []
    for level in (0.0, 5.0):
        intensity = np.zeros(len(ALL_AUS), np.float32)
        intensity[ALL_AUS.index(au)] = level
        image, landmarks = render_frame(identity, intensity, track, 0, size, calm, rng(0))
        seen.append(landmarker.fit(image, landmarker.detect(image)))
        truth.append(landmarks)
    for point in points:
        expected, measured = truth[1][point] - truth[0][point], seen[1][point] - seen[0][point]
        assert np.linalg.norm(expected) > 3.0
        assert np.linalg.norm(measured - expected) < 0.4 * np.linalg.norm(expected), (point, expected, measured)


def test_six_identities_are_distinct() -> None:
    config = SynthConfig()
    faces = [make_identity(config, index, f"S{index}").face for index in range(6)]
    for first in range(6):
        for second in range(first + 1, 6):
            image_gap = np.abs(faces[first].image - faces[second].image).mean()
            shape_gap = np.abs(faces[first].landmarks - faces[second].landmarks).mean()
            assert image_gap > 5.0 and shape_gap > 1.0, (first, second, image_gap, shape_gap)


# --- label statistics (labels only: no rendering) -------------------------------------------------------

@pytest.fixture(scope="module")
def label_set() -> np.ndarray:
    labels = generate_labels(SynthConfig(seed=3, subjects=40, tasks=4, frames=120))
    return np.concatenate([item.coded for item in labels])


def _rate(labels: np.ndarray, au: int) -> float:
    column = labels[:, ALL_AUS.index(au)]
    return float((column == 1).sum() / (column != 9).sum())


def test_base_rates_are_bp4d_like(label_set: np.ndarray) -> None:
    frequent = {au: _rate(label_set, au) for au in (6, 7, 10, 12, 14)}
    rare = {au: _rate(label_set, au) for au in (1, 2, 4, 15, 23, 24)}
    assert min(frequent.values()) > max(rare.values()), (frequent, rare)
    assert all(0.25 <= rate <= 0.6 for rate in frequent.values()), frequent
    assert all(0.03 <= rate <= 0.25 for rate in rare.values()), rare


def test_lip_corner_puller_and_depressor_rarely_co_occur(label_set: np.ndarray) -> None:
    smile, frown = label_set[:, ALL_AUS.index(12)] == 1, label_set[:, ALL_AUS.index(15)] == 1
    assert frown.mean() > 0.03
    assert (smile & frown).mean() < 0.2 * smile.mean() * frown.mean()


def test_prototype_aus_co_occur(label_set: np.ndarray) -> None:
    """Smile (6+12) and surprise (1+2) are learnable relations: far above chance co-occurrence."""
    for first, second in ((6, 12), (1, 2)):
        a, b = label_set[:, ALL_AUS.index(first)] == 1, label_set[:, ALL_AUS.index(second)] == 1
        assert (a & b).mean() > 1.5 * a.mean() * b.mean()


def test_not_coded_cells_appear_at_the_configured_rate(label_set: np.ndarray) -> None:
    assert 0.002 < (label_set == 9).mean() < 0.01


def test_parallel_rendering_writes_the_same_files(tmp_path):
    """`workers` only spreads subjects over processes: every file, the manifest included, is byte-identical
    (so the dataset's DVC hash does not depend on the worker count)."""
    roots = {workers: tmp_path / f"w{workers}" / "synthau" for workers in (1, 2)}
    for workers, root in roots.items():
        generate(tiny_config(root, workers=workers))
    files = {workers: {path.relative_to(root): path.read_bytes() for path in sorted(root.rglob("*"))
                       if path.is_file()} for workers, root in roots.items()}
    assert files[1].keys() == files[2].keys() and len(files[1]) > 4
    assert all(files[1][name] == files[2][name] for name in files[1])
