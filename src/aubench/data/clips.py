"""How clip-mode methods cut sequences into clips: training samplers and test tiling."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aubench.errors import ConfigError

CLIP_SAMPLERS = ("full_pass", "one_clip_per_sequence", "segments")


@dataclass(frozen=True)
class ClipSampling:
    """How a clip-mode method cuts training clips (part of the method's params).

    `full_pass` (STF §2.3): tile every sequence with non-overlapping windows from a random offset;
    `one_clip_per_sequence`: one random window per sequence; `segments` (LAC Algorithm 1, with the
    spec's fixes): per subject, the task sequences in order are split into `segments` equal parts and one
    window is drawn uniformly inside each part, never across a task boundary.
    """

    length: int = 16
    sampler: str = "full_pass"
    segments: int = 12

    def __post_init__(self) -> None:
        if self.sampler not in CLIP_SAMPLERS:
            raise ConfigError(f"clips.sampler: unknown sampler {self.sampler!r}; use one of {CLIP_SAMPLERS}")


def tiling_windows(key: str, count: int, length: int) -> list[tuple[str, int, int]]:
    """Consecutive windows from frame 0; the last one ends at the last frame and keeps only new frames."""
    starts = list(range(0, max(count - length, 0) + 1, length))
    windows = [(key, start, start) for start in starts]
    if count > length and starts[-1] + length < count:
        windows.append((key, count - length, starts[-1] + length))
    return windows


def segment_windows(lengths: list[tuple[str, int]], length: int, segments: int,
                    draws: np.random.Generator) -> list[tuple[str, int, int]]:
    """LAC Algorithm 1 for one subject: one window per segment of the concatenated task sequences.

    Segments that are shorter than a window fall back to max(1, L // length) segments; a window never
    spans two task sequences; a subject shorter than one window gives no clip.
    """
    total = sum(count for _, count in lengths)
    if total < length:
        return []
    used = segments if total // segments >= length else max(1, total // length)
    size = total // used
    bounds = np.cumsum([0] + [count for _, count in lengths])
    windows = []
    for segment in range(used):
        low, high = segment * size, (segment + 1) * size
        starts = [s for s in range(low, high - length + 1)
                  if np.searchsorted(bounds, s, "right") == np.searchsorted(bounds, s + length - 1, "right")]
        if not starts:
            continue
        start = int(draws.choice(starts))
        sequence = int(np.searchsorted(bounds, start, "right")) - 1
        local = start - int(bounds[sequence])
        windows.append((lengths[sequence][0], local, local))
    return windows
