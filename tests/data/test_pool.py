"""SynthAU's unlabeled pool (issue #11): identities in no fold, read back by the `videos` layout, bit-reproducible,
and through the landmarks and align code into a store without AUs."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from aubench.align.store import AlignedStore, build_store
from aubench.align.transform import AlignConfig
from aubench.data.datasets import DatasetConfig, load_sequences
from aubench.data.samples import FrameIndex
from aubench.data.synthau import SynthConfig, generate, tiny_config
from aubench.data.synthau.generator import POOL_FIELDS, make_identity, sequence_plan
from aubench.data.synthau.identity import IdentityTraits, sample_traits, subject_name
from aubench.data.synthau.pool import POOL_MANIFEST, generate_pool, pool_identities
from aubench.errors import ConfigError, DataError
from aubench.landmarks.pipeline import LandmarkConfig, run_landmarks

KEYS = ["id00003_clip01", "id00004_clip01"]  # tiny_config: 3 labelled subjects, then 2 pool identities


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> SynthConfig:
    """The tiny preset's pool: 2 identities x 1 clip x 6 frames."""
    config = tiny_config(tmp_path_factory.mktemp("pool") / "synthau")
    assert generate_pool(config) == KEYS
    return config


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _videos(config: SynthConfig) -> DatasetConfig:
    return DatasetConfig(name="synthau-pool", layout="videos", root=config.unlabeled_root)


# --- layout and reproducibility -------------------------------------------------------------------------

def test_pool_is_videos_per_identity_with_ground_truth_landmarks_and_no_labels(pool: SynthConfig) -> None:
    root = Path(pool.unlabeled_root)
    assert sorted(_files(root)) == ["SynthAU_Landmarks/id00003_clip01.npy", "SynthAU_Landmarks/id00004_clip01.npy",
                                    "id00003/clip01.avi", "id00004/clip01.avi", POOL_MANIFEST]
    records = load_sequences(_videos(pool))
    assert [record.key for record in records] == KEYS
    for record in records:
        frames = list(record.frames)
        assert len(frames) == 6 and frames[0].shape == (256, 256, 3) and record.labels.shape == (6, 0)
        assert np.load(root / "SynthAU_Landmarks" / f"{record.key}.npy").shape == (6, 68, 2)
    manifest = json.loads((root / POOL_MANIFEST).read_text())
    assert manifest["identities"] == ["id00003", "id00004"] and manifest["frames"] == 12
    assert {"seed", "subjects", "unlabeled_subjects", "au_strength"} <= set(manifest["config"])
    assert not {"root", "unlabeled_root", "workers", "layout", "frames"} & set(manifest["config"])


def test_pool_is_identical_for_any_worker_count_and_another_seed_differs(pool: SynthConfig, tmp_path: Path) -> None:
    again = tiny_config(tmp_path / "again", workers=2)
    generate_pool(again)
    assert _files(Path(again.unlabeled_root)) == _files(Path(pool.unlabeled_root))
    other = tiny_config(tmp_path / "other", seed=1)
    generate_pool(other)
    name = "id00003/clip01.avi"
    assert _files(Path(other.unlabeled_root))[name] != _files(Path(pool.unlabeled_root))[name]


def test_pool_replaces_an_earlier_pool_but_refuses_a_foreign_folder(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "synthau", unlabeled_subjects=1, unlabeled_frames=2)
    generate_pool(config)
    generate_pool(dataclasses.replace(config, unlabeled_frames=3))
    assert len(list(load_sequences(_videos(config))[0].frames)) == 3
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(DataError, match="not a SynthAU pool.*synthesize.unlabeled_root"):
        generate_pool(dataclasses.replace(config, unlabeled_root=str(foreign)))
    assert (foreign / "thesis.tex").read_text() == "keep me"
    assert not list(tmp_path.glob(".*partial"))
    with pytest.raises(ConfigError, match="synthesize.unlabeled_root"):
        tiny_config(tmp_path / "synthau", unlabeled_root=str(tmp_path / "synthau"))


def test_labelled_manifest_does_not_depend_on_the_pool_settings(tmp_path: Path) -> None:
    """The labelled dataset's DVC hash stays as it was: its manifest names no pool setting."""
    manifests = []
    for name, pool in (("a", {}), ("b", {"unlabeled_subjects": 4, "unlabeled_clips": 3, "unlabeled_frames": 9})):
        config = tiny_config(tmp_path / name / "synthau", subjects=1, frames=2, **pool)
        generate(config)
        manifests.append((Path(config.root) / "synthau.json").read_text())
    assert manifests[0] == manifests[1]
    settings = json.loads(manifests[0])["config"]
    assert not set(POOL_FIELDS) & set(settings)
    fields = {field.name for field in dataclasses.fields(SynthConfig)}
    assert set(settings) == fields - {"root", "workers", *POOL_FIELDS}  # the keys it had before the pool


# --- no pool identity is a labelled subject --------------------------------------------------------------

#: The shipped sizes: 12 labelled subjects (indices 0-11), 6 pool identities.
SHIPPED = SynthConfig(subjects=12, unlabeled_subjects=6)


@pytest.mark.parametrize("layout", ["bp4d", "disfa"])
def test_pool_identities_follow_the_labelled_indices_under_other_names(layout: str) -> None:
    config = dataclasses.replace(SHIPPED, layout=layout)
    identities = pool_identities(config)
    assert identities == [(index, f"id{index:05d}") for index in range(12, 18)]
    labelled = {(index, subject) for index, subject, _, _ in sequence_plan(config)}
    assert {index for index, _ in labelled} == set(range(12)) and len(labelled) == 12
    assert not {name for _, name in identities} & {subject for _, subject in labelled}


def _trait_vector(traits: IdentityTraits) -> np.ndarray:
    """Mirroring, shape and colour of an identity as numbers (the photo is one of two, so left out)."""
    return np.hstack(dataclasses.astuple(traits)[1:]).astype(np.float64)


def test_no_pool_identity_is_a_labelled_subject() -> None:
    """At the shipped sizes, every pool identity's trait draws differ from every labelled subject's, and so do
    the rendered neutral faces (appearance and shape)."""
    config, labelled = SHIPPED, [(index, subject_name(index, "bp4d")) for index in range(SHIPPED.subjects)]
    traits = {index: _trait_vector(sample_traits(config.seed, index, config.identity_variation)) for index in range(18)}
    faces = {index: make_identity(config, index, name).face for index, name in labelled + pool_identities(config)}
    for pool_index, _ in pool_identities(config):
        for index, _ in labelled:
            assert np.abs(traits[pool_index] - traits[index]).max() > 0.01, (pool_index, index)
            image_gap = np.abs(faces[pool_index].image - faces[index].image).mean()
            shape_gap = np.abs(faces[pool_index].landmarks - faces[index].landmarks).mean()
            # as far apart as labelled subjects are (test_synthau: > 5 grey levels); the one pair with a shape
            # gap under 1 px (13 vs 7) is mirrored against the other, 68 grey levels apart
            assert image_gap > 5.0 and shape_gap > 0.5, (pool_index, index, image_gap, shape_gap)


# --- through the landmarks and align code ----------------------------------------------------------------

def test_pool_runs_through_landmarks_and_align_into_a_store_without_aus(pool: SynthConfig, tmp_path: Path) -> None:
    dataset = _videos(pool)
    records = load_sequences(dataset)
    config = LandmarkConfig(workers=1)
    report = run_landmarks(records, config, tmp_path / "landmarks", Path(pool.unlabeled_root) / config.ground_truth_dir)
    assert report["frames"] == 12 and report["detection_rate"] > 0.9
    assert report["nme_vs_ground_truth"] < 0.1  # the ground-truth lookup finds the pool's landmarks
    build_store(records, tmp_path / "landmarks", dataset, AlignConfig(crop_size=48), tmp_path / "aligned")
    store = AlignedStore.open(tmp_path / "aligned")
    assert (store.dataset, store.layout, store.aus) == ("synthau-pool", "videos", ())
    assert store.subjects() == ["id00003", "id00004"] and store.labels(KEYS[0]).shape == (6, 0)
    assert store.images(KEYS[1]).shape == (6, 48, 48, 3) and store.frame_index()["labels"].shape == (12, 0)
    every = FrameIndex.for_subjects(store, tuple(store.subjects()), labelled_only=False)
    assert sorted(zip(every.keys.tolist(), every.positions.tolist())) == [(key, frame) for key in KEYS
                                                                            for frame in range(6)]
    assert len(FrameIndex.for_subjects(store, tuple(store.subjects()), labelled_only=True).keys) == 0
