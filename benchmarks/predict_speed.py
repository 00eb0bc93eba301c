"""Benchmark (issue #15): `aubench predict` frames/s on a 640×360, 30 fps face video, and where the time goes.

The video is made from the pipeline's own SynthAU frames (each 512² frame scaled to 360² and centred on a
640×360 canvas, so the face is about as large as in a phone clip; MPEG-4 in .mp4), `--seconds` long. It
runs the default deploy model (`models/deploy/baseline.pt`, written by `dvc repro deploy`) on it:

- end to end: `predict_one` exactly as the console command runs it (decode → landmarks → alignment →
  network → CSV), best of `--repeats`; reported as frames/s and as a ratio to real time (30 frames/s);
- the split, each part timed alone on the same frames in the same process: decoding (the reference: the
  plain OpenCV read loop every other part adds to), landmarks (key-frame detection + tracking), similarity
  alignment, and the network (batched, `predict_subjects`).

    python benchmarks/predict_speed.py metrics/benchmarks/predict_speed.json

Issue #15's target: at least real time (≥ 30 frames/s) on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from aubench.align.transform import align_frame
from aubench.data.video import read_image
from aubench.predict.command import predict_one
from aubench.predict.model_file import load_model_file
from aubench.predict.pipeline import FaceFinder, PredictOptions, Predictor
from aubench.predict.sources import open_source

WIDTH, HEIGHT, FPS = 640, 360, 30.0


def make_video(path: Path, frames_root: Path, count: int) -> Path:
    """`count` frames of 640×360 at 30 fps from the SynthAU frames under `frames_root` (cycled)."""
    files = sorted(frames_root.rglob("*.jpg"))
    if not files:
        raise SystemExit(f"{frames_root}: no SynthAU frames (run `dvc repro synthesize`)")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for index in range(count):
        canvas = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        left = (WIDTH - HEIGHT) // 2
        canvas[:, left:left + HEIGHT] = cv2.resize(read_image(files[index % len(files)]), (HEIGHT, HEIGHT),
                                                   interpolation=cv2.INTER_AREA)
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def split(predictor: Predictor, video: Path) -> dict[str, float]:
    """Seconds of each part, timed alone on the same frames."""
    frames, decode = timed(lambda: list(open_source(video).frames()))
    finder = FaceFinder(predictor.landmarker, predictor.deployed, all_faces=False)
    faces, landmarks = timed(finder.find, frames)
    found = [face for face in faces if face.points is not None]
    _, align = timed(lambda: [align_frame(face.frame.image, face.points, predictor.deployed.align) for face in found])
    _, network_and_align = timed(predictor.probabilities, found)
    return {"frames": len(frames), "frames_with_face": len(found), "decode_s": decode, "landmarks_s": landmarks,
            "align_s": align, "network_s": max(network_and_align - align, 0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", type=Path, default=Path("models/deploy/baseline.pt"))
    parser.add_argument("--frames-root", type=Path, default=Path("data/raw/synthau/Sequences"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    deployed = load_model_file(args.model)
    predictor = Predictor(deployed, PredictOptions(device="cpu"))
    with tempfile.TemporaryDirectory() as folder:
        video = make_video(Path(folder) / "clip.mp4", args.frames_root, int(args.seconds * FPS))
        end_to_end = min(timed(predict_one, predictor, video, Path(folder), False, False)[1]
                         for _ in range(args.repeats))
        parts = split(predictor, video)
    frames = parts["frames"]
    report = {"video": f"{WIDTH}x{HEIGHT} @ {FPS:.0f} fps, {frames} frames (SynthAU faces, mp4v)",
              "model": str(args.model), "model_dataset": deployed.dataset, "threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(),
              "end_to_end_frames_per_s": round(frames / end_to_end, 1),
              "real_time_ratio": round(frames / end_to_end / FPS, 2),
              "decode_frames_per_s": round(frames / parts["decode_s"], 1),
              "end_to_end_vs_decode": round(parts["decode_s"] / end_to_end, 3),
              "share_of_parts": {name: round(parts[f"{name}_s"] / sum(parts[f"{key}_s"] for key in
                                                                          ("decode", "landmarks", "align", "network")), 3)
                                 for name in ("decode", "landmarks", "align", "network")},
              "seconds": {key: round(value, 3) for key, value in parts.items() if key.endswith("_s")},
              "frames_with_face": parts["frames_with_face"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
