"""Benchmark: landmarks by detection on every frame vs detection on key frames + tracking, in one process.

Both modes run the same backend on the same decoded frames of a generated SynthAU set (or an existing tree
in the BP4D layout with `SynthAU_Landmarks/<subject>_<task>.npy` ground truth), alternating, best of
`--repeats` runs each. Reported per mode: landmarking frames/s (frames already decoded; the part the
modes differ in), end-to-end frames/s (adding the measured JPEG decoding time), detector calls, detection
rate and the NME against the ground truth (mean point error / true inter-ocular distance, over the frames
each mode found a face on, and over all frames after gap filling), plus the speed ratios.

    python benchmarks/landmarks_speed.py metrics/benchmarks/landmarks_speed.json              # SynthAU
    python benchmarks/landmarks_speed.py out.json --root data/raw/synthau                     # existing tree
    python benchmarks/landmarks_speed.py out.json --source photos                             # no generator

Issue #4's target: track ≥ 4× the frames/s of detect_every_frame at equal or better NME.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from aubench.data.datasets import DatasetConfig, load_sequences
from aubench.io import write_json
from aubench.landmarks.pipeline import LandmarkConfig, fill_gaps, make_landmarker, make_tracker, normalised_error
from aubench.landmarks.tracking import NO_FACE

REPO = Path(__file__).resolve().parents[1]


def synthesize(root: Path, subjects: int, tasks: int, frames: int, frame_size: int, seed: int,
               extra: dict | None = None) -> Path:
    """Generate SynthAU in the BP4D layout with the pipeline's own `synthesize` stage (in a scratch folder)."""
    script = REPO / "stages" / "synthesize.py"
    if not script.is_file():
        raise SystemExit(f"{script} is missing (the SynthAU generator is not in this checkout); "
                         "use --source photos or --root DIR")
    params = {"synthesize": {"seed": seed, "root": str(root), "layout": "bp4d", "subjects": subjects,
                             "tasks": tasks, "frames": frames, "frame_size": frame_size, "fps": 25.0,
                             **(extra or {})}}
    params_path = root.parent / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    paths = [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    subprocess.run([sys.executable, str(script), "--params", str(params_path)], cwd=root.parent, check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)})
    return root


def decode_all(records) -> tuple[list[list[np.ndarray]], float]:
    """Every sequence's frames in memory, and the seconds decoding took."""
    started = time.perf_counter()
    frames = [list(record.frames) for record in records]
    return frames, time.perf_counter() - started


def run_mode(config: LandmarkConfig, frames: list[list[np.ndarray]]) -> dict:
    """Landmark all sequences in one mode; the points, sources, detector calls and seconds."""
    landmarker = make_landmarker(config)
    points, sources, detector_calls, fit_calls = [], [], 0, 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for sequence in frames:
        tracker = make_tracker(landmarker, config)
        results = list(tracker.run(sequence))
        detector_calls += tracker.detector_calls
        fit_calls += tracker.fit_calls
        points.append(np.stack([r.points if r.points is not None else np.zeros((68, 2), np.float32)
                                for r in results]))
        sources.append(np.array([r.source for r in results]))
    return {"points": points, "sources": sources, "detector_calls": detector_calls, "fit_calls": fit_calls,
            "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started}


def score(run: dict, truths: list[np.ndarray | None], max_gap: int) -> dict:
    found, filled = [], []
    for points, sources, truth in zip(run["points"], run["sources"], truths):
        if truth is None:
            continue
        detected = sources != NO_FACE
        error = normalised_error(points, truth)
        found.append(error[detected])
        gap_filled, valid = fill_gaps(points, detected, max_gap)
        filled.append(np.where(valid, normalised_error(gap_filled, truth), np.nan))
    if not found:
        return {}
    found_errors, all_errors = np.concatenate(found), np.concatenate(filled)
    return {"nme_found_frames": float(found_errors.mean()), "nme_all_frames_after_gap_filling":
            float(np.nanmean(all_errors)), "frames_unusable": int(np.isnan(all_errors).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="where to write the JSON results")
    parser.add_argument("--source", choices=("synthau", "photos"), default="synthau")
    parser.add_argument("--root", type=Path, help="use this existing BP4D-layout tree instead of generating one")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--frame-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthesize-set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra `synthesize` param for the generator (YAML value), e.g. iod=112")
    parser.add_argument("--key-interval", type=int, default=LandmarkConfig().key_interval)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per mode; the fastest counts")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml",
                        help="landmarks section to start from (backend, upsample, thresholds)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aubench-landmarks-bench-") as scratch:
        root = args.root
        if root is None:
            root = Path(scratch) / "data"
            if args.source == "synthau":
                extra = {key: yaml.safe_load(value) for key, _, value in
                         (item.partition("=") for item in args.synthesize_set)}
                synthesize(root, args.subjects, args.tasks, args.frames, args.frame_size, args.seed, extra)
            else:
                sys.path.insert(0, str(Path(__file__).parent))
                from photo_sequences import generate

                generate(root, tasks=args.tasks, frames=args.frames, seed=args.seed, frame_size=args.frame_size)
        base = {}
        if args.params.is_file():
            base = dict((yaml.safe_load(args.params.read_text()) or {}).get("landmarks", {}))
        base.pop("workers", None)
        records = load_sequences(DatasetConfig(name="benchmark", layout="bp4d", root=str(root)))
        truth_dir = root / base.get("ground_truth_dir", "SynthAU_Landmarks")
        truths = [np.load(truth_dir / f"{r.key}.npy") if (truth_dir / f"{r.key}.npy").is_file() else None
                  for r in records]
        frames, decode_seconds = decode_all(records)

    total = sum(len(sequence) for sequence in frames)
    configs = {"detect_every_frame": LandmarkConfig(**{**base, "mode": "detect_every_frame"}),
               "track": LandmarkConfig(**{**base, "mode": "track", "key_interval": args.key_interval})}
    make_landmarker(configs["track"]).detect(frames[0][0])  # load the models before timing
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        for mode, config in configs.items():
            run = run_mode(config, frames)
            if mode not in best:
                best[mode] = run
            best[mode]["seconds"] = min(best[mode]["seconds"], run["seconds"])
            best[mode]["cpu_seconds"] = min(best[mode]["cpu_seconds"], run["cpu_seconds"])
    results = {}
    for mode, run in best.items():
        detected = np.concatenate([sources != NO_FACE for sources in run["sources"]])
        results[mode] = {"frames_per_second": total / run["seconds"],
                         "frames_per_cpu_second": total / run["cpu_seconds"],
                         "end_to_end_frames_per_second": total / (run["seconds"] + decode_seconds),
                         "detector_calls": run["detector_calls"], "fit_calls": run["fit_calls"],
                         "detection_rate": float(detected.mean()),
                         **score(run, truths, configs[mode].max_gap)}
    track, every = results["track"], results["detect_every_frame"]
    summary = {"source": str(args.root) if args.root else args.source, "sequences": len(records), "frames": total,
               "frame_size": list(frames[0][0].shape[:2]), "backend": configs["track"].backend,
               "key_interval": args.key_interval, "decode_frames_per_second": total / decode_seconds,
               "modes": results,
               "speedup": track["frames_per_second"] / every["frames_per_second"],
               "cpu_speedup": track["frames_per_cpu_second"] / every["frames_per_cpu_second"],
               "end_to_end_speedup": track["end_to_end_frames_per_second"] / every["end_to_end_frames_per_second"]}
    if "nme_found_frames" in track and "nme_found_frames" in every:
        summary["nme_track_minus_detect"] = track["nme_found_frames"] - every["nme_found_frames"]
    write_json(args.out, summary)

    print(f"{summary['sequences']} sequences, {total} frames of {summary['frame_size']} px ({summary['source']}), "
          f"backend {summary['backend']}, key interval {args.key_interval}")
    header = (f"{'mode':<20}{'frames/s':>10}{'fr/cpu-s':>10}{'e2e fr/s':>10}{'detector':>10}{'det.rate':>10}"
              f"{'NME':>9}{'NME all':>9}")
    print(header)
    print("-" * len(header))
    for mode, result in results.items():
        print(f"{mode:<20}{result['frames_per_second']:>10.1f}{result['frames_per_cpu_second']:>10.1f}"
              f"{result['end_to_end_frames_per_second']:>10.1f}"
              f"{result['detector_calls']:>10d}{result['detection_rate']:>10.3f}"
              f"{result.get('nme_found_frames', float('nan')):>9.4f}"
              f"{result.get('nme_all_frames_after_gap_filling', float('nan')):>9.4f}")
    print(f"speed-up track / detect_every_frame: {summary['speedup']:.2f}× wall clock, {summary['cpu_speedup']:.2f}× "
          f"CPU time, {summary['end_to_end_speedup']:.2f}× with decoding "
          f"({summary['decode_frames_per_second']:.0f} frames/s)")


if __name__ == "__main__":
    main()
