"""Export the aligned store as ME-GraphAU list files, to compare with that codebase.

ME-GraphAU reads, per fold k (1–3; the train/test prefix is from the fold's point of view):
- `{DS}_{train|test}_img_path_fold{k}.txt`: one image path per line, relative to its `data/{DS}/img/`
  folder: `F001/T1/2440.jpg` for BP4D (subject/task/frame number), `SN001/0.png` for DISFA (subject/0-based
  video frame; DISFA label frame k is video frame k−1);
- `{DS}_{train|test}_label_fold{k}.txt`: the matching lines of space-separated 0/1, one column per AU in
  the dataset's order;
- `{DS}_train_weight_fold{k}.txt`: one tab-separated line of per-AU weights w_i = 1/r_i (r_i the AU's
  occurrence rate in the training list), scaled to sum to the number of AUs. ME-GraphAU's training scripts
  read the same file under the name `{DS}_weight_fold{k}.txt`, so it is written under both names;
- optionally `{DS}_train_AU_relation_fold{k}.txt` (its stage 2): per training image, C×C ints
  2·a_j + a_k in row-major order.
ME-GraphAU only accepts 0/1 labels, so frames with any unknown label (BP4D's 9, faceless frames) are left
out of the lists. `DS` is BP4D or DISFA by the store's layout (SynthAU in the BP4D layout exports as BP4D,
so the lists drop into ME-GraphAU's BP4D configuration); the crops can be written as the image files too.

    python -m aubench.align.export --store data/aligned --folds data/folds.json \
        --out exports/BP4D/list --images exports/BP4D/img
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from aubench.align.store import AlignedStore
from aubench.data.aus import UNKNOWN
from aubench.data.video import write_image
from aubench.errors import DataError
from aubench.io import read_json

log = logging.getLogger(__name__)

DATASET_NAMES = {"bp4d": "BP4D", "disfa": "DISFA"}


def image_path(layout: str, subject: str, task: str, frame_number: int) -> str:
    """ME-GraphAU's relative image path of one frame (under its `data/{DS}/img/` folder)."""
    if layout == "disfa":
        return f"{subject}/{int(frame_number) - 1}.png"
    return f"{subject}/{task}/{int(frame_number)}.jpg"


def class_weights(labels: np.ndarray) -> np.ndarray:
    """w_i = 1 / occurrence rate, scaled so the weights sum to the number of AUs."""
    rates = labels.mean(0)
    weights = 1.0 / rates
    return weights * len(weights) / weights.sum()


def relation_labels(labels: np.ndarray) -> np.ndarray:
    """(N, C·C) ints 2·a_j + a_k (entry j·C + k): the 4-class AU-pair labels of ME-GraphAU's stage 2."""
    return (2 * labels[:, :, None] + labels[:, None, :]).reshape(len(labels), -1)


def _split_rows(store: AlignedStore, subjects: list[str]) -> tuple[list[str], np.ndarray, int]:
    """Image paths and 0/1 labels of the fully labelled frames of `subjects`, and how many frames were left out."""
    known = set(store.subjects())
    absent = sorted(set(subjects) - known)
    if absent:
        raise DataError(f"{store.root}: folds name subjects that the aligned store lacks: {', '.join(absent)} "
                        "(re-run the folds stage on this store)")
    paths, labels, dropped = [], [], 0
    for sequence in store.sequences:
        if sequence.subject not in subjects:
            continue
        sequence_labels = store.labels(sequence.key)
        keep = (sequence_labels != UNKNOWN).all(1)
        dropped += int((~keep).sum())
        numbers = store.frame_numbers(sequence.key)[keep]
        paths.extend(image_path(store.layout, sequence.subject, sequence.task, number) for number in numbers)
        labels.append(sequence_labels[keep])
    stacked = np.concatenate(labels) if labels else np.zeros((0, len(store.aus)), dtype=np.int8)
    return paths, stacked.astype(np.int64), dropped


def export_megraphau_lists(store: AlignedStore, folds_table: dict, out_dir: Path, image_dir: Path | None = None,
                           relations: bool = False) -> dict:
    """Write ME-GraphAU's list files for every fold of `folds_table` into `out_dir`; returns a summary.

    `image_dir` (optional) receives the aligned crops under the listed relative paths (JPEG for BP4D, PNG
    for DISFA); `relations` adds the stage-2 AU relation files.
    """
    if tuple(folds_table["aus"]) != store.aus:
        raise DataError(f"folds table AUs {folds_table['aus']} differ from the store's {list(store.aus)}")
    name = DATASET_NAMES.get(store.layout)
    if name is None:
        raise DataError(f"{store.root}: layout {store.layout!r} has no ME-GraphAU naming")
    # Everything is computed and checked before the first file is written, so a failure leaves no lists.
    files: dict[str, tuple[str, np.ndarray | list[str]]] = {}
    summary = {"dataset": name, "folds": {}}
    for fold in folds_table["folds"]:
        number = fold["fold"]
        entry = {}
        for split in ("train", "test"):
            paths, labels, dropped = _split_rows(store, sorted(fold[f"{split}_subjects"]))
            if not paths:
                raise DataError(f"fold {number}: no fully labelled {split} frame to export")
            files[f"{name}_{split}_img_path_fold{number}.txt"] = ("paths", paths)
            files[f"{name}_{split}_label_fold{number}.txt"] = ("%d", labels)
            entry[split] = {"frames": len(paths), "left_out_unknown": dropped}
            if split == "train":
                absent = np.flatnonzero(labels.sum(0) == 0)
                if absent.size:
                    aus = ", ".join(f"AU{store.aus[i]}" for i in absent)
                    raise DataError(f"fold {number}: {aus} never occurs in the training frames, so the "
                                    "ME-GraphAU class weight (1 / occurrence rate) is undefined")
                weights = class_weights(labels)[None]
                files[f"{name}_train_weight_fold{number}.txt"] = ("weights", weights)
                files[f"{name}_weight_fold{number}.txt"] = ("weights", weights)
                if relations:
                    files[f"{name}_train_AU_relation_fold{number}.txt"] = ("%d", relation_labels(labels))
        summary["folds"][number] = entry
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for file_name, (kind, content) in files.items():
        path = out_dir / file_name
        if kind == "paths":
            path.write_text("".join(f"{line}\n" for line in content))
        elif kind == "weights":
            np.savetxt(path, content, fmt="%.8f", delimiter="\t")
        else:
            np.savetxt(path, content, fmt=kind, delimiter=" ")
    if image_dir is not None:
        write_images(store, Path(image_dir))
    return summary


def write_images(store: AlignedStore, image_dir: Path) -> int:
    """Write every aligned crop under its ME-GraphAU relative path; returns the number of images."""
    count = 0
    for sequence in store.sequences:
        images = store.images(sequence.key)
        for position, number in enumerate(store.frame_numbers(sequence.key)):
            write_image(image_dir / image_path(store.layout, sequence.subject, sequence.task, number),
                        np.asarray(images[position]), jpeg_quality=95)
            count += 1
    return count


def main() -> None:
    from aubench.cli import run_stage

    parser = argparse.ArgumentParser(description="Export the aligned store as ME-GraphAU list files")
    parser.add_argument("--store", default="data/aligned")
    parser.add_argument("--folds", default="data/folds.json")
    parser.add_argument("--out", required=True, help="folder for the list files (ME-GraphAU: data/<DS>/list)")
    parser.add_argument("--images", help="also write the crops here (ME-GraphAU: data/<DS>/img)")
    parser.add_argument("--relations", action="store_true", help="also write the stage-2 AU relation files")
    args = parser.parse_args()

    def export() -> None:
        summary = export_megraphau_lists(AlignedStore.open(Path(args.store)), read_json(Path(args.folds)),
                                         Path(args.out), Path(args.images) if args.images else None, args.relations)
        log.info("exported %s lists to %s: %s", summary["dataset"], args.out, summary["folds"])

    run_stage(export)


if __name__ == "__main__":
    main()
