"""`aubench predict` end to end on generated SynthAU video: one row per decoded frame, `success` 0 exactly on
inserted blank frames, a second face, the evaluation pipeline's probabilities for the same frames and model,
and bad inputs that fail alone."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from aubench.align.store import AlignedStore, build_store
from aubench.align.transform import AlignConfig
from aubench.data.datasets import DatasetConfig, load_sequences
from aubench.data.synthau.generator import generate, tiny_config
from aubench.data.video import read_image
from aubench.errors import DataError
from aubench.landmarks.pipeline import LandmarkConfig, run_landmarks
from aubench.models.registry import get_method
from aubench.predict.command import main, output_names, predict
from aubench.predict.model_file import load_model_file, save_model_file
from aubench.train.predict import predict_subjects

CROP, INPUT = 40, 36


@pytest.fixture(scope="module")
def synthau(tmp_path_factory) -> dict[str, Path]:
    """Two SynthAU subjects (20 frames each), their landmarks and aligned store, and an untrained baseline saved
    as a model file with the store's alignment template (the weights do not matter for these checks)."""
    root = tmp_path_factory.mktemp("synthau")
    dataset = DatasetConfig(root=str(root / "raw"))
    generate(tiny_config(dataset.root, subjects=2, frames=20, frame_size=256, iod=60.0))
    records = load_sequences(dataset)
    landmarks = LandmarkConfig()
    run_landmarks(records, landmarks, root / "landmarks", None)
    align = AlignConfig(crop_size=CROP)
    build_store(records, root / "landmarks", dataset, align, root / "aligned")
    store = AlignedStore.open(root / "aligned")
    method = get_method("baseline")
    config = method.config_type(pretrained=False)
    model = method.build_model(config, len(store.aus))
    path = save_model_file(root / "model.pt", "baseline", method, config, model.eval(), store, INPUT, "centre", 0.5,
                           align, landmarks, "SynthAU (BP4D layout, synthetic)")
    return {"root": root, "raw": Path(dataset.root), "model": path, "store": root / "aligned"}


def _frames(synthau: dict[str, Path], subject: str) -> list[np.ndarray]:
    folder = synthau["raw"] / "Sequences" / subject / "T1"
    return [read_image(path) for path in sorted(folder.iterdir())]


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_model_file_loads_weights_only_and_rejects_foreign_files(synthau, tmp_path):
    deployed = load_model_file(synthau["model"])
    assert deployed.method.name == "baseline" and deployed.input_size == INPUT and deployed.align.crop_size == CROP
    assert deployed.synthetic and deployed.dataset.startswith("SynthAU")
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"not a model")
    with pytest.raises(DataError, match="foreign.pt: not a readable aubench model file"):
        load_model_file(foreign)
    with pytest.raises(DataError, match="missing.pt: model file is missing"):
        load_model_file(tmp_path / "missing.pt")


def test_probabilities_equal_the_evaluation_pipelines(synthau):
    """The same frames through predict (from the raw image folder) and through the aligned store."""
    deployed = load_model_file(synthau["model"])
    store = AlignedStore.open(synthau["store"])
    cpu = torch.device("cpu")
    evaluation = predict_subjects(deployed.build(cpu), deployed.method, deployed.method.sampling(deployed.config), store,
                                  ("F001",), INPUT, 16, cpu)
    (result,) = predict([synthau["raw"] / "Sequences" / "F001" / "T1"], model=synthau["model"], device="cpu")
    scored = [row for row in result.rows if row["success"]]
    assert len(result.rows) == 20 and len(scored) >= 18
    valid = np.load(synthau["store"] / "F001_T1.npz")["valid"]
    for row in scored:
        assert valid[row["frame"]]
        expected = evaluation["probabilities"][row["frame"]]
        got = np.array([row[f"AU{au:02d}_p"] for au in deployed.aus])
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_one_row_per_decoded_frame_and_no_face_on_blank_frames(synthau, tmp_path):
    frames = _frames(synthau, "F001")
    blank = np.full_like(frames[0], 30)
    video = _write_video(tmp_path / "clip.avi", frames[:8] + [blank] * 4 + frames[8:])
    assert main(["predict", str(video), "--model", str(synthau["model"]), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--overlay", "--landmarks"]) == 0
    rows = _rows(tmp_path / "out" / "clip.csv")
    assert [int(row["frame"]) for row in rows] == list(range(24))
    assert [int(row["success"]) for row in rows] == [1] * 8 + [0] * 4 + [1] * 12
    assert rows[9]["AU12_p"] == "" and rows[0]["AU12_p"] != "" and rows[0]["x_67"] != ""
    assert float(rows[1]["timestamp"]) == pytest.approx(0.04, abs=1e-3)
    assert all(row["model_dataset"].startswith("SynthAU") for row in rows)
    assert (tmp_path / "out" / "clip_timeline.png").stat().st_size > 1000
    overlay = cv2.VideoCapture(str(tmp_path / "out" / "clip_overlay.avi"))
    assert int(overlay.get(cv2.CAP_PROP_FRAME_COUNT)) == 24


def test_a_second_face_gets_its_own_id_with_all_faces(synthau, tmp_path):
    """M001's face beside F001's (smaller): the default follows the largest, --all-faces both."""
    left, right = _frames(synthau, "F001")[:10], _frames(synthau, "M001")[:10]
    pairs = [np.hstack([a, np.pad(cv2.resize(b, (150, 150)), ((53, 53), (0, 0), (0, 0)))]) for a, b in zip(left, right)]
    video = _write_video(tmp_path / "two.avi", pairs)
    (single,) = predict([video], model=synthau["model"], device="cpu")
    assert {row["face_id"] for row in single.rows} == {0} and len(single.rows) == 10
    (both,) = predict([video], model=synthau["model"], device="cpu", all_faces=True)
    per_frame = {}
    for row in both.rows:
        per_frame.setdefault(row["frame"], set()).add(row["face_id"])
    assert len(per_frame) == 10 and per_frame[0] == {0, 1}
    sides = {face: {row["box_x"] > 256 for row in both.rows if row["face_id"] == face} for face in (0, 1)}
    assert sorted(map(tuple, sides.values())) == [(False,), (True,)]  # one id per face, each keeps to its side
    assert all(row["box_x"] < 256 for row in single.rows)  # the default follows the larger, left face


def test_bad_inputs_fail_alone_and_are_named(synthau, tmp_path):
    good = _write_video(tmp_path / "good.avi", _frames(synthau, "F001")[:5])
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video")
    truncated = tmp_path / "truncated.avi"
    data = _write_video(tmp_path / "whole.avi", _frames(synthau, "F001")).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    status = main(["predict", str(not_video), str(truncated), str(good), "--model", str(synthau["model"]),
                   "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert status == 1
    assert len(_rows(tmp_path / "out" / "good.csv")) == 5
    results = predict([not_video, truncated, good], model=synthau["model"], device="cpu")
    errors = {result.path.name: result.error for result in results}
    assert errors["notes.mp4"].startswith(str(not_video)) and "truncated.avi" in errors["truncated.avi"]
    assert errors["good.avi"] is None


def test_inputs_sharing_a_name_get_distinct_outputs():
    paths = [Path("data/F001/T1"), Path("data/M001/T1"), Path("clips/smile.mp4")]
    assert output_names(paths) == ["F001_T1", "M001_T1", "smile"]
