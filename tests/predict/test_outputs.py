"""Predict's outputs: the CSV's OpenFace-style columns and empty cells, streamed writing, the timeline figure
and an overlay video that OpenCV reads back."""
import csv
import math

import cv2
import numpy as np
import pytest

from aubench.predict.outputs import CsvWriter, OverlayWriter, au_column, columns, write_timeline

AUS = (1, 2, 12)
DATASET = "SynthAU (BP4D layout, synthetic)"


def read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def face_row(frame: int, **values) -> dict:
    row = {"frame": frame, "timestamp": frame / 30, "face_id": 0, "success": 1, "confidence": 0.9,
           "box_x": 10.0, "box_y": 12.0, "box_w": 40.0, "box_h": 44.0, "model_dataset": DATASET}
    for au in AUS:
        row |= {au_column(au, "p"): 0.75, au_column(au, "c"): True}
    return row | values


def test_column_order_and_au_names():
    assert au_column(1, "p") == "AU01_p" and au_column(12, "c") == "AU12_c"
    with pytest.raises(ValueError):
        au_column(1, "r")
    assert columns(AUS, landmarks=False) == [
        "frame", "timestamp", "face_id", "success", "confidence", "box_x", "box_y", "box_w", "box_h",
        "AU01_p", "AU01_c", "AU02_p", "AU02_c", "AU12_p", "AU12_c", "model_dataset"]
    with_points = columns(AUS, landmarks=True)
    assert with_points[9:11] == ["x_0", "x_1"] and with_points[76:78] == ["x_67", "y_0"]
    assert with_points[144:146] == ["y_67", "AU01_p"] and len(with_points) == 9 + 136 + 6 + 1


def test_csv_cells_failed_rows_and_unknown_keys(tmp_path):
    path = tmp_path / "out" / "clip.csv"
    with CsvWriter(path, AUS, landmarks=True) as writer:
        points = {f"{axis}_{i}": 1.5 for axis in "xy" for i in range(68)}
        writer.write([face_row(0, **points), face_row(1, success=0, AU01_p=math.nan, x_3=2.0)])
        writer.write([{"frame": 2, "success": 1, "AU02_p": np.float32(0.1234567891)}])   # missing keys
        with pytest.raises(ValueError, match="AU99_p"):
            writer.write([{"frame": 3, "AU99_p": 0.5}])
    header, found, failed, partial = read_csv(path)
    assert header == columns(AUS, landmarks=True)
    found, failed, partial = (dict(zip(header, row)) for row in (found, failed, partial))
    assert found["AU01_p"] == "0.75" and found["AU01_c"] == "1" and found["x_67"] == "1.5"
    assert found["model_dataset"] == DATASET
    assert {key for key, value in failed.items() if value} == {"frame", "timestamp", "face_id", "success",
                                                              "model_dataset"}
    assert failed["success"] == "0"
    assert partial["AU02_p"] == "0.123457" and partial["AU01_p"] == "" and partial["model_dataset"] == ""


def test_csv_rows_are_written_as_they_come(tmp_path):
    path = tmp_path / "clip.csv"
    writer = CsvWriter(path, AUS, landmarks=False)
    sizes = [path.stat().st_size]
    for frame in range(3):
        writer.write([face_row(frame)])
        sizes.append(path.stat().st_size)
    assert sizes[0] > 0 and all(later > earlier for earlier, later in zip(sizes, sizes[1:]))
    assert len(read_csv(path)) == 4   # readable before close
    writer.close()


def test_timeline_png(tmp_path):
    times = np.arange(50) / 25
    probabilities = np.random.default_rng(0).random((50, len(AUS)))
    probabilities[10:20] = np.nan   # no face
    path = write_timeline(tmp_path / "plots" / "clip.png", times, probabilities, AUS, 0.5, "clip.mp4",
                          "Trained on SynthAU: synthetic faces only.")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    with pytest.raises(ValueError, match="do not match"):
        write_timeline(tmp_path / "bad.png", times, probabilities[:, :2], AUS, 0.5, "clip.mp4", None)


def test_overlay_video_reads_back(tmp_path):
    path, size, count = tmp_path / "overlay" / "clip.avi", (80, 60), 12
    image = np.full((size[1], size[0], 3), 40, np.uint8)
    points = np.stack([np.linspace(20, 60, 68), np.linspace(15, 45, 68)], axis=1)
    face = {"box": (15.2, 10.0, 50.0, 40.0), "points": points, "active": ["AU01", "AU06", "AU12"]}
    with OverlayWriter(path, 25.0, size) as writer:
        for index in range(count):
            writer.write(image, [face] if index % 2 else [])
        with pytest.raises(ValueError, match="80x60"):
            writer.write(np.zeros((60, 64, 3), np.uint8), [])
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    capture.release()
    assert len(frames) == count and frames[0].shape == (size[1], size[0], 3)
    assert np.abs(frames[1].astype(int) - 40).max() > 100 > np.abs(frames[0].astype(int) - 40).max()
    assert (image == 40).all()   # drawn on a copy
