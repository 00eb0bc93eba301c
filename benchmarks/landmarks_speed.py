"""Benchmark (issue #4): landmarks by detection on every frame vs key-frame detection + tracking, same run.

Both modes run the same backend (one loaded detector and landmark model) on the same frames of a generated
SynthAU set (or an existing tree in the BP4D layout with `SynthAU_Landmarks/<subject>_<task>.npy` ground
truth), alternating, best of `--repeats` runs each. Frames are decoded one at a time right before they are
landmarked, as the landmarks stage does (a frame decoded long before would be cold in the CPU cache, which
penalises the mode that touches it least); decoding and landmarking are timed apart.

Reported per mode: landmarking frames/s (wall clock, and per CPU-second: the part the modes differ in),
end-to-end frames/s (adding the decoding), detector calls (of which on a region around the tracked face),
landmark fits, detection rate, and the NME against the ground truth (mean point error / true inter-ocular
distance) over the frames each mode found a face on, and over all frames after gap filling; then the
speed-ups and the NME difference track − detect_every_frame with a 95% bootstrap interval over sequences
(SynthAU's NME varies mostly between sequences and with the detector's box scale on key frames).

The SynthAU set is the pipeline's (`synthesize` in --params: frame size, IOD, nuisance) with fewer
sequences; --frame-size/--iod/--subjects/--tasks/--frames override it. The landmark settings start from
the `landmarks` section of --params; --key-interval, --min-confidence, --max-motion, --roi-margin
override them.

    python benchmarks/landmarks_speed.py metrics/benchmarks/landmarks_speed.json
    python benchmarks/landmarks_speed.py out.json --frame-size 512 --iod 80 --key-interval 10
    python benchmarks/landmarks_speed.py out.json --root data/raw/synthau      # an existing tree
    python benchmarks/landmarks_speed.py out.json --source photos              # no generator

Issue #4's target: track ≥ 4× the landmarking frames/s of detect_every_frame at equal or better NME.
"""
from __future__ import annotations

import argparse
import os
import platform
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
from aubench.landmarks.tracking import DETECTED, NO_FACE

REPO = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 4.0
#: `synthesize` params the benchmark sets itself (where and how much to generate).
OWN_SYNTH_KEYS = ("root", "layout", "subjects", "tasks", "frames", "seed")


def synthesize(root: Path, settings: dict) -> Path:
    """Generate SynthAU in the BP4D layout with the pipeline's own `synthesize` stage (in a scratch folder)."""
    script = REPO / "stages" / "synthesize.py"
    if not script.is_file():
        raise SystemExit(f"{script} is missing (the SynthAU generator is not in this checkout); "
                         "use --source photos or --root DIR")
    params_path = root.parent / "params.yaml"
    params_path.write_text(yaml.safe_dump({"synthesize": {**settings, "root": str(root), "layout": "bp4d"}}))
    paths = [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    subprocess.run([sys.executable, str(script), "--params", str(params_path), "--stats",
                    str(root.parent / "synthau_stats.json")], cwd=root.parent, check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)})
    return root


def run_mode(config: LandmarkConfig, records) -> dict:
    """Landmark every sequence in one mode, decoding each frame just before it is landmarked.

    Returns the points, sources, backend call counts, and the wall-clock and CPU seconds of landmarking and
    of decoding (apart).
    """
    landmarker = make_landmarker(config)
    points, sources = [], []
    counts = {"detector_calls": 0, "roi_detector_calls": 0, "fit_calls": 0, "redetections": 0}
    seconds = {"landmark": 0.0, "landmark_cpu": 0.0, "decode": 0.0, "decode_cpu": 0.0}
    clock, cpu_clock = time.perf_counter, time.process_time
    for record in records:
        tracker = make_tracker(landmarker, config)
        results = []
        frames = iter(record.frames)
        while True:
            started, cpu_started = clock(), cpu_clock()
            image = next(frames, None)
            decoded, cpu_decoded = clock(), cpu_clock()
            if image is None:
                break
            results.append(tracker.step(image))
            seconds["decode"] += decoded - started
            seconds["decode_cpu"] += cpu_decoded - cpu_started
            seconds["landmark"] += clock() - decoded
            seconds["landmark_cpu"] += cpu_clock() - cpu_decoded
        for name in ("detector_calls", "roi_detector_calls", "fit_calls"):
            counts[name] += getattr(tracker, name, 0)
        points.append(np.stack([r.points if r.points is not None else np.zeros((68, 2), np.float32)
                                for r in results]))
        sources.append(np.array([r.source for r in results]))
        # a detection on a frame whose tracking was tried and rejected
        counts["redetections"] += sum(r.source == DETECTED and np.isfinite(r.confidence) for r in results)
    return {"points": points, "sources": sources, **counts, "seconds": seconds}


def score(run: dict, truths: list[np.ndarray | None], max_gap: int) -> tuple[dict, list[np.ndarray]]:
    """NME summary of one mode, and the per-sequence per-frame errors (NaN where no face was found)."""
    found, filled, per_sequence = [], [], []
    for points, sources, truth in zip(run["points"], run["sources"], truths):
        if truth is None:
            continue
        detected = sources != NO_FACE
        error = normalised_error(points, truth)
        found.append(error[detected])
        per_sequence.append(np.where(detected, error, np.nan))
        gap_filled, valid = fill_gaps(points, detected, max_gap)
        filled.append(np.where(valid, normalised_error(gap_filled, truth), np.nan))
    if not found:
        return {}, []
    found_errors, all_errors = np.concatenate(found), np.concatenate(filled)
    return {"nme_found_frames": float(found_errors.mean()), "nme_median": float(np.median(found_errors)),
            "nme_p95": float(np.percentile(found_errors, 95)),
            "nme_all_frames_after_gap_filling": float(np.nanmean(all_errors)),
            "frames_unusable": int(np.isnan(all_errors).sum())}, per_sequence


def paired_difference(track: list[np.ndarray], every: list[np.ndarray], seed: int = 0,
                      resamples: int = 2000) -> dict:
    """Mean NME difference track − every over frames both found a face on, with a 95% bootstrap interval
    that resamples whole sequences (frames of one sequence are not independent)."""
    differences = [a - b for a, b in zip(track, every)]
    sums = np.array([np.nansum(d) for d in differences])
    counts = np.array([np.isfinite(d).sum() for d in differences])
    if counts.sum() == 0:
        return {}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(resamples, len(sums)))
    means = sums[draws].sum(1) / np.maximum(counts[draws].sum(1), 1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(sums.sum() / counts.sum()), "ci95": [float(low), float(high)],
            "sequences_track_better": int((sums < 0).sum()), "sequences": len(sums)}


def parse_margin(value: str) -> float | None:
    return None if value.lower() in ("none", "null", "off") else float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="where to write the JSON results")
    parser.add_argument("--source", choices=("synthau", "photos"), default="synthau")
    parser.add_argument("--root", type=Path, help="use this existing BP4D-layout tree instead of generating one")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml",
                        help="`synthesize` and `landmarks` sections to start from")
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=1, help="sequences per subject")
    parser.add_argument("--frames", type=int, default=40, help="frames per sequence")
    parser.add_argument("--frame-size", type=int, help="SynthAU frame side in pixels (default: --params)")
    parser.add_argument("--iod", type=float, help="SynthAU inter-ocular distance in pixels (default: --params)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthesize-set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other `synthesize` param (YAML value), e.g. head_motion=1.5")
    parser.add_argument("--key-interval", type=int, help="landmarks.key_interval (default: --params)")
    parser.add_argument("--min-confidence", type=float, help="landmarks.track_min_confidence (default: --params)")
    parser.add_argument("--max-motion", type=float, help="landmarks.track_max_motion (default: --params)")
    parser.add_argument("--roi-margin", type=parse_margin, default=argparse.SUPPRESS, metavar="MARGIN|none",
                        help="landmarks.track_roi_margin (default: --params; none: key frames scan the whole frame)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per mode; the fastest counts")
    args = parser.parse_args()

    params = (yaml.safe_load(args.params.read_text()) or {}) if args.params.is_file() else {}
    base = dict(params.get("landmarks") or {})
    base.pop("workers", None)
    overrides = {"key_interval": args.key_interval, "track_min_confidence": args.min_confidence,
                 "track_max_motion": args.max_motion}
    base.update({key: value for key, value in overrides.items() if value is not None})
    if hasattr(args, "roi_margin"):
        base["track_roi_margin"] = args.roi_margin
    configs = {"detect_every_frame": LandmarkConfig(**{**base, "mode": "detect_every_frame"}),
               "track": LandmarkConfig(**{**base, "mode": "track"})}
    synth = {key: value for key, value in (params.get("synthesize") or {}).items() if key not in OWN_SYNTH_KEYS}
    synth.update({key: yaml.safe_load(value) for key, _, value in
                  (item.partition("=") for item in args.synthesize_set)})
    synth.update({key: value for key, value in (("frame_size", args.frame_size), ("iod", args.iod)) if value})
    synth.update(subjects=args.subjects, tasks=args.tasks, frames=args.frames, seed=args.seed)

    with tempfile.TemporaryDirectory(prefix="aubench-landmarks-bench-") as scratch:
        root = args.root
        if root is None:
            root = Path(scratch) / "data"
            if args.source == "synthau":
                synthesize(root, synth)
            else:
                sys.path.insert(0, str(Path(__file__).parent))
                from photo_sequences import generate

                generate(root, tasks=args.tasks, frames=args.frames, seed=args.seed,
                         frame_size=synth.get("frame_size", 256))
        records = load_sequences(DatasetConfig(name="benchmark", layout="bp4d", root=str(root)))
        truth_dir = root / configs["track"].ground_truth_dir
        truths = [np.load(truth_dir / f"{r.key}.npy") if (truth_dir / f"{r.key}.npy").is_file() else None
                  for r in records]
        first = next(iter(records[0].frames))
        make_landmarker(configs["track"]).detect(first)  # load the models before timing
        load_before = os.getloadavg()
        best: dict[str, dict] = {}
        for _ in range(args.repeats):
            for mode, config in configs.items():
                run = run_mode(config, records)
                if mode not in best:
                    best[mode] = run
                best[mode]["seconds"] = {name: min(value, run["seconds"][name])
                                         for name, value in best[mode]["seconds"].items()}
        load_after = os.getloadavg()

    total = sum(len(sequence) for sequence in best["track"]["sources"])
    decode = min(run["seconds"]["decode"] for run in best.values())
    results, per_frame = {}, {}
    for mode, run in best.items():
        detected = np.concatenate([sources != NO_FACE for sources in run["sources"]])
        nme, per_frame[mode] = score(run, truths, configs[mode].max_gap)
        seconds = run["seconds"]
        results[mode] = {"frames_per_second": total / seconds["landmark"],
                         "frames_per_cpu_second": total / seconds["landmark_cpu"],
                         "end_to_end_frames_per_second": total / (seconds["landmark"] + decode),
                         "ms_per_frame": 1000 * seconds["landmark"] / total,
                         "detector_calls": run["detector_calls"], "roi_detector_calls": run["roi_detector_calls"],
                         "redetections": int(run["redetections"]), "fit_calls": run["fit_calls"],
                         "detection_rate": float(detected.mean()), **nme}
    track, every = results["track"], results["detect_every_frame"]
    settings = configs["track"]
    summary = {
        "source": str(args.root) if args.root else args.source, "sequences": len(records), "frames": total,
        "frame_size": list(first.shape[:2]),
        "synthesize": synth if args.root is None and args.source == "synthau" else None,
        "landmarks": {"backend": settings.backend, "upsample": settings.upsample,
                      "key_interval": settings.key_interval, "track_min_confidence": settings.track_min_confidence,
                      "track_max_motion": settings.track_max_motion, "track_roi_margin": settings.track_roi_margin},
        "repeats": args.repeats, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "load_average_before_after": [load_before[0], load_after[0]],
        "decode_frames_per_second": total / decode, "modes": results,
        "speedup": track["frames_per_second"] / every["frames_per_second"],
        "cpu_speedup": track["frames_per_cpu_second"] / every["frames_per_cpu_second"],
        "end_to_end_speedup": track["end_to_end_frames_per_second"] / every["end_to_end_frames_per_second"],
    }
    if "nme_found_frames" in track and "nme_found_frames" in every:
        summary["nme_track_minus_detect"] = track["nme_found_frames"] - every["nme_found_frames"]
        summary["nme_paired_difference"] = paired_difference(per_frame["track"], per_frame["detect_every_frame"])
        summary["target_met"] = bool(summary["speedup"] >= TARGET_SPEEDUP
                                     and track["nme_found_frames"] <= every["nme_found_frames"]
                                     and track["detection_rate"] >= every["detection_rate"])
    write_json(args.out, summary)
    print_table(summary)


def print_table(summary: dict) -> None:
    marks = summary["landmarks"]
    margin = marks["track_roi_margin"]
    print(f"{summary['sequences']} sequences, {summary['frames']} frames of {summary['frame_size'][1]}×"
          f"{summary['frame_size'][0]} px ({summary['source']}"
          + (f", IOD {summary['synthesize'].get('iod', 'default')} px" if summary.get("synthesize") else "")
          + f"), backend {marks['backend']}; track: key interval {marks['key_interval']}, min confidence "
          f"{marks['track_min_confidence']}, max motion {marks['track_max_motion']}, key-frame ROI margin "
          f"{'none (whole frame)' if margin is None else margin}; best of {summary['repeats']}, "
          f"load average {summary['load_average_before_after'][0]:.1f}→{summary['load_average_before_after'][1]:.1f} "
          f"on {summary['cpus']} CPUs")
    header = (f"{'mode':<20}{'frames/s':>9}{'ms/frame':>9}{'fr/cpu-s':>9}{'e2e fr/s':>9}{'detector':>10}"
              f"{'(ROI)':>6}{'fits':>6}{'found':>7}{'NME':>8}{'median':>8}{'p95':>7}{'NME all':>8}")
    print(header)
    print("-" * len(header))
    for mode, result in summary["modes"].items():
        print(f"{mode:<20}{result['frames_per_second']:>9.1f}{result['ms_per_frame']:>9.2f}"
              f"{result['frames_per_cpu_second']:>9.1f}{result['end_to_end_frames_per_second']:>9.1f}"
              f"{result['detector_calls']:>10d}{result['roi_detector_calls']:>6d}{result['fit_calls']:>6d}"
              f"{result['detection_rate']:>7.3f}{result.get('nme_found_frames', float('nan')):>8.4f}"
              f"{result.get('nme_median', float('nan')):>8.4f}{result.get('nme_p95', float('nan')):>7.3f}"
              f"{result.get('nme_all_frames_after_gap_filling', float('nan')):>8.4f}")
    print(f"speed-up track / detect_every_frame: {summary['speedup']:.2f}× landmarking (wall clock), "
          f"{summary['cpu_speedup']:.2f}× CPU time, {summary['end_to_end_speedup']:.2f}× with decoding "
          f"({summary['decode_frames_per_second']:.0f} frames/s)")
    if "nme_paired_difference" in summary:
        paired = summary["nme_paired_difference"]
        low, high = paired.get("ci95", [float("nan")] * 2)
        print(f"NME track − detect_every_frame: {summary['nme_track_minus_detect']:+.4f} "
              f"(paired over frames both found: {paired.get('mean', float('nan')):+.4f}, 95% CI over sequences "
              f"[{low:+.4f}, {high:+.4f}]; track better on {paired.get('sequences_track_better')} of "
              f"{paired.get('sequences')} sequences)")
        verdict = "MET" if summary["target_met"] else "NOT met"
        print(f"issue #4 target (≥ {TARGET_SPEEDUP:.0f}× landmarking frames/s at equal or better NME and detection "
              f"rate): {verdict}")


if __name__ == "__main__":
    main()
