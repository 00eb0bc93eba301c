"""`aubench predict INPUT... --out DIR`: per-frame AU occurrence for videos, images and folders of images.

`predict()` is the Python function behind the console command: the same options, the tables in memory.
Each input is processed on its own: one that cannot be read is named in an error and the others are still
processed (the command then exits with status 1).
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from aubench.errors import AubenchError
from aubench.predict.model_file import DeployedModel, load_model_file
from aubench.predict.outputs import CsvWriter, OverlayWriter, au_column, columns, write_timeline
from aubench.predict.pipeline import FaceFrame, PredictOptions, Predictor
from aubench.predict.sources import expand_inputs, open_source

log = logging.getLogger("aubench.predict")

DEFAULT_MODELS = Path("models/deploy")

SYNTHETIC_WARNING = ("this model was trained on {dataset}: its outputs on real video are a demonstration of the "
                     "pipeline, not AU measurements (README, \"Predict\": train a deploy model on a licensed "
                     "BP4D/DISFA copy)")


@dataclass
class PredictResult:
    """One input's table: `rows` (dicts keyed by `columns`) or the error that stopped it."""

    path: Path
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    written: list[Path] = field(default_factory=list)


def model_path(model: Path | None, method: str | None) -> Path:
    """`--model PATH`, else the deploy model of `--method NAME` (default: baseline) under models/deploy."""
    return Path(model) if model is not None else DEFAULT_MODELS / f"{method or 'baseline'}.pt"


def predict(inputs: Sequence[Path], out_dir: Path | None = None, model: Path | None = None,
            method: str | None = None, device: str = "auto", overlay: bool = False, all_faces: bool = False,
            landmarks: bool = False, keep_rows: bool = True, fps: float = 30.0) -> list[PredictResult]:
    """Per-frame AU probabilities and occurrences of every input (`rows`, unless `keep_rows` is False); with
    `out_dir`, also `<name>.csv`, `<name>_timeline.png` and (with `overlay`) `<name>_overlay.avi` per input.
    `fps` times image sequences (videos carry their own timestamps)."""
    deployed = load_model_file(model_path(model, method))
    if deployed.synthetic:
        log.warning(SYNTHETIC_WARNING.format(dataset=deployed.dataset))
    predictor = Predictor(deployed, PredictOptions(device=device, landmarks=landmarks, all_faces=all_faces))
    results = []
    paths = _expanded(inputs, results)
    for path, name in zip(paths, output_names(paths)):
        try:
            results.append(predict_one(predictor, path, out_dir, overlay, keep_rows, fps, name))
        except AubenchError as error:
            log.error("%s", error)
            results.append(PredictResult(path, error=str(error)))
    return results


def output_names(paths: Sequence[Path]) -> list[str]:
    """Each input's output file stem: its own stem, or `<folder>_<stem>` where two inputs share a stem
    (e.g. the `T1` folders of two subjects), so that no output overwrites another."""
    stems = [path.stem for path in paths]
    return [f"{path.parent.name}_{path.stem}" if stems.count(path.stem) > 1 else path.stem for path in paths]


def _expanded(inputs: Sequence[Path], results: list[PredictResult]) -> list[Path]:
    """Every input path expanded; an input that cannot be expanded becomes a failed result."""
    paths = []
    for path in inputs:
        try:
            paths += expand_inputs([Path(path)])
        except AubenchError as error:
            log.error("%s", error)
            results.append(PredictResult(Path(path), error=str(error)))
    return paths


def predict_one(predictor: Predictor, path: Path, out_dir: Path | None, overlay: bool,
                keep_rows: bool = True, fps: float = 30.0, name: str | None = None) -> PredictResult:
    """Stream one input through the predictor, writing its outputs as the chunks come; `keep_rows` keeps
    the table in memory too (the console command does not: its memory stays flat for long videos)."""
    deployed, options = predictor.deployed, predictor.options
    source = open_source(path, fps)
    result = PredictResult(path, columns(deployed.aus, options.landmarks))
    stem = out_dir / (name or path.stem) if out_dir is not None else None
    csv = CsvWriter(Path(f"{stem}.csv"), deployed.aus, options.landmarks) if stem is not None else None
    video, curve, found_face = None, Timeline(), False
    with tqdm(desc=path.name, unit="frame", total=source.length_hint) as progress:  # the header's count: ETA
        for chunk in predictor.run(source):
            rows = [table_row(face, deployed, options.landmarks) for face in chunk]
            found_face |= any(row["success"] for row in rows)
            curve.add(chunk)
            if keep_rows:
                result.rows += rows
            if csv is not None:
                csv.write(rows)
            if overlay and stem is not None:
                video = video or _overlay_writer(stem, source, chunk)
                _draw(video, chunk, deployed)
            progress.update(len({face.frame.index for face in chunk}))
    for writer, written in ((csv, stem and Path(f"{stem}.csv")), (video, stem and Path(f"{stem}_overlay.avi"))):
        if writer is not None:
            writer.close()
            result.written.append(written)
    if not found_face:
        log.warning("%s: no face found in any frame; every row has success 0", path)
    if stem is not None:
        result.written.append(curve.write(Path(f"{stem}_timeline.png"), path, deployed))
    return result


class Timeline:
    """Per decoded frame: its timestamp and the AU probabilities of face 0 (NaN where it was not found)."""

    def __init__(self) -> None:
        self.timestamps: dict[int, float] = {}
        self.probabilities: dict[int, np.ndarray] = {}

    def add(self, chunk: Sequence[FaceFrame]) -> None:
        for face in chunk:
            self.timestamps[face.frame.index] = face.frame.timestamp
            if face.face_id == 0 and face.probabilities is not None:
                self.probabilities[face.frame.index] = face.probabilities

    def write(self, path: Path, source: Path, deployed: DeployedModel) -> Path:
        frames = sorted(self.timestamps)
        missing = np.full(len(deployed.aus), np.nan)
        probabilities = np.array([self.probabilities.get(frame, missing) for frame in frames]).reshape(-1, len(deployed.aus))
        note = SYNTHETIC_WARNING.format(dataset=deployed.dataset) if deployed.synthetic else None
        return write_timeline(path, np.array([self.timestamps[frame] for frame in frames]), probabilities,
                              deployed.aus, deployed.threshold, f"{source.name}: AU probability of face 0 (model "
                              f"{deployed.run}, trained on {deployed.dataset})", note)


def table_row(face: FaceFrame, deployed: DeployedModel, landmarks: bool) -> dict[str, Any]:
    """One CSV row (OpenFace's column names where they overlap); empty AU cells where no face was found."""
    row: dict[str, Any] = {"frame": face.frame.index, "timestamp": round(face.frame.timestamp, 6),
                           "face_id": face.face_id if face.face_id >= 0 else "", "success": int(face.points is not None),
                           "model_dataset": deployed.dataset}
    if face.points is None or face.probabilities is None:
        return row
    (x0, y0), (x1, y1) = face.points.min(0), face.points.max(0)
    row.update(confidence=round(float(face.confidence), 4), box_x=round(float(x0), 1), box_y=round(float(y0), 1),
               box_w=round(float(x1 - x0), 1), box_h=round(float(y1 - y0), 1))
    if landmarks:
        row.update({f"x_{index}": round(float(x), 2) for index, x in enumerate(face.points[:, 0])})
        row.update({f"y_{index}": round(float(y), 2) for index, y in enumerate(face.points[:, 1])})
    for au, probability in zip(deployed.aus, face.probabilities):
        row[au_column(au, "p")] = round(float(probability), 4)
        row[au_column(au, "c")] = int(probability >= deployed.threshold)
    return row


def _overlay_writer(stem: Path, source: Any, chunk: list[FaceFrame]) -> OverlayWriter:
    height, width = chunk[0].frame.image.shape[:2]
    return OverlayWriter(Path(f"{stem}_overlay.avi"), source.fps_hint or 30.0, (width, height))


def _draw(video: OverlayWriter, chunk: list[FaceFrame], deployed: DeployedModel) -> None:
    """One overlay frame per decoded frame, with every face found in it."""
    by_frame: dict[int, list[FaceFrame]] = {}
    for face in chunk:
        by_frame.setdefault(face.frame.index, []).append(face)
    for faces in by_frame.values():
        drawn = [{"box": _box(face.points), "points": face.points,
                  "active": [f"AU{au}" for au, p in zip(deployed.aus, face.probabilities) if p >= deployed.threshold]}
                 for face in faces if face.points is not None and face.probabilities is not None]
        video.write(faces[0].frame.image, drawn)


def _box(points: np.ndarray) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(prog="aubench", description="aubench command line")
    sub = commands.add_subparsers(dest="command", required=True)
    run = sub.add_parser("predict", help=__doc__.splitlines()[0])
    run.add_argument("inputs", nargs="+", type=Path, help="video files, image files, or folders of either")
    run.add_argument("--out", type=Path, required=True, help="folder for <name>.csv, _timeline.png, _overlay.avi")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--model", type=Path, help="a model file written by the deploy stage")
    which.add_argument("--method", help=f"use {DEFAULT_MODELS}/<METHOD>.pt (default: baseline)")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    run.add_argument("--overlay", action="store_true", help="also write a video with box, landmarks and active AUs")
    run.add_argument("--all-faces", action="store_true", help="every face with its own face_id (default: largest)")
    run.add_argument("--landmarks", action="store_true", help="add the 68 landmarks (x_0..y_67) to the CSV")
    run.add_argument("--fps", type=float, default=30.0, help="frame rate of image sequences (default 30)")
    return commands


def main(argv: Sequence[str] | None = None) -> int:
    """The console command; exit status 1 when any input failed, 2 when nothing could run."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        results = predict(args.inputs, args.out, args.model, args.method, args.device, args.overlay,
                          args.all_faces, args.landmarks, keep_rows=False, fps=args.fps)
    except AubenchError as error:
        log.error("%s", error)
        return 2
    for result in results:
        if result.error is None:
            log.info("%s → %s", result.path, ", ".join(map(str, result.written)))
    return 1 if any(result.error for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
