"""AU intensity trajectories: episodes with onset–apex–offset, drawn from prototype AU combinations.

Each channel (a prototype expression or a single AU) fires episodes as a Poisson process whose rate is
set from the fraction of time it should be active, so base rates land near BP4D's (AU6/7/10/12/14
frequent, AU1/2/4/15/23/24 rare). Co-occurrence comes from the prototypes; AU12 and AU15 (lip corners
up vs down) exclude each other. Occurrence is intensity >= 2, the BP4D/DISFA A-level cut-off, so a
label always matches what is rendered; some episodes only reach a trace (< 2): visible but not coded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aubench.data.aus import ALL_AUS

OCCURRENCE_THRESHOLD = 2.0
NOT_CODED = 9  # the BP4D label-file value for "not coded"
MIN_EPISODE_S, MAX_EPISODE_S = 0.3, 3.0
EXCLUSIVE = ((12, 15),)  # lip corners cannot go up and down at once
GAP_SHAPE = 3.0  # Gamma shape of the pauses between a channel's episodes


@dataclass(frozen=True)
class Channel:
    """A source of episodes: AUs that always fire together, optional extras, and time share active."""

    name: str
    aus: tuple[int, ...]
    coverage: float
    optional: tuple[tuple[int, float], ...] = ()  # (AU, probability)
    one_of: tuple[int, ...] = ()  # exactly one of these joins each episode


#: Prototype expressions (FACS AU combinations) and single AUs, with the fraction of time each is active.
CHANNELS: tuple[Channel, ...] = (
    Channel("smile", (6, 12), 0.50, optional=((25, 0.35),)),
    Channel("pain", (4, 6, 7), 0.06, one_of=(9, 10)),
    Channel("surprise", (1, 2), 0.09, optional=((26, 0.5),)),
    Channel("sadness", (1, 4, 15), 0.10, optional=((17, 0.5),)),
    Channel("anger", (4, 7, 23, 24), 0.06),
    Channel("disgust", (9, 10), 0.07, optional=((17, 0.5),)),
    *(Channel(f"AU{au}", (au,), coverage) for au, coverage in (
        (1, 0.05), (2, 0.07), (4, 0.05), (6, 0.12), (7, 0.52), (9, 0.02), (10, 0.55), (12, 0.12),
        (14, 0.60), (15, 0.16), (17, 0.24), (23, 0.10), (24, 0.10), (25, 0.15), (26, 0.06))),
)
#: AU26 (jaw drop) usually parts the lips too.
LIPS_PART_WITH_JAW = 0.8


@dataclass(frozen=True)
class Episode:
    """AUs with apex intensities, active from `start` for `length` frames (may start before frame 0)."""

    start: int
    length: int
    apex: dict[int, float]


def sample_intensities(generator: np.random.Generator, frames: int, fps: float,
                       trace_fraction: float = 0.15) -> np.ndarray:
    """(frames, 15) float32 intensities 0–5 in ALL_AUS order for one sequence."""
    mood = generator.lognormal(0.0, 0.3, size=len(CHANNELS))  # sequences differ in what they elicit
    episodes = [episode for channel, gain in zip(CHANNELS, mood)
                for episode in _channel_episodes(generator, channel, gain, frames, fps, trace_fraction)]
    episodes.sort(key=lambda episode: (episode.start, episode.length))
    track = np.zeros((frames, len(ALL_AUS)), dtype=np.float32)
    for episode in episodes:
        _add(track, _without_conflicts(track, episode), generator, fps)
    return track


def _channel_episodes(generator: np.random.Generator, channel: Channel, gain: float, frames: int, fps: float,
                      trace_fraction: float) -> list[Episode]:
    """Episodes of one channel as a renewal process active `coverage` x gain of the time on average.

    Gaps are Gamma-distributed (shape 3): more regular than a Poisson process, so a small dataset's base
    rates stay near their targets, yet still random.
    """
    coverage = min(channel.coverage * gain, 0.9)
    mean_length = (MAX_EPISODE_S - MIN_EPISODE_S) / np.log(MAX_EPISODE_S / MIN_EPISODE_S) * fps
    mean_gap = mean_length * (1.0 - coverage) / coverage
    time = -generator.uniform(0.0, mean_length + mean_gap)  # a random phase: the process started earlier
    episodes = []
    while time < frames:
        length = int(round(np.exp(generator.uniform(np.log(MIN_EPISODE_S), np.log(MAX_EPISODE_S))) * fps))
        length = max(length, 2)
        if time + length > 0:
            episodes.append(Episode(int(time), length, _apexes(generator, channel, trace_fraction)))
        time += length + generator.gamma(GAP_SHAPE, mean_gap / GAP_SHAPE)
    return episodes


def _apexes(generator: np.random.Generator, channel: Channel, trace_fraction: float) -> dict[int, float]:
    """Peak intensity per AU: a shared level with per-AU variation; some episodes stay at trace level."""
    aus = list(channel.aus) + [au for au, chance in channel.optional if generator.random() < chance]
    if channel.one_of:
        aus.append(int(generator.choice(channel.one_of)))
    if 26 in aus and 25 not in aus and generator.random() < LIPS_PART_WITH_JAW:
        aus.append(25)
    trace = generator.random() < trace_fraction
    level = generator.uniform(0.8, 1.9) if trace else generator.uniform(2.3, 5.0)
    return {au: float(np.clip(level * generator.uniform(0.85, 1.1), 0.5, 5.0)) for au in aus}


def _without_conflicts(track: np.ndarray, episode: Episode) -> Episode:
    """Drops from a later episode any AU that excludes one already active during its span."""
    span = slice(max(episode.start, 0), max(episode.start + episode.length, 0))
    apex = dict(episode.apex)
    for first, second in EXCLUSIVE:
        for mine, other in ((first, second), (second, first)):
            if mine in apex and track[span, ALL_AUS.index(other)].max(initial=0.0) > 0.25:
                del apex[mine]
    return Episode(episode.start, episode.length, apex)


def _add(track: np.ndarray, episode: Episode, generator: np.random.Generator, fps: float) -> None:
    """Writes the episode's onset–apex–offset profile per AU into the track (max with what is there)."""
    frames = track.shape[0]
    for au, apex in episode.apex.items():
        lag = int(generator.integers(0, max(int(0.1 * fps), 1) + 1))  # AUs of one expression are not in lockstep
        profile = apex * _profile(generator, episode.length)
        start = episode.start + lag
        low, high = max(start, 0), min(start + len(profile), frames)
        if high > low:
            column = ALL_AUS.index(au)
            track[low:high, column] = np.maximum(track[low:high, column], profile[low - start: high - start])


def _profile(generator: np.random.Generator, length: int) -> np.ndarray:
    """Onset (smooth rise), apex (plateau), offset (smooth fall), peak 1."""
    onset = max(int(length * generator.uniform(0.15, 0.4)), 1)
    offset = max(int(length * generator.uniform(0.15, 0.4)), 1)
    apex = max(length - onset - offset, 0)
    rise = _smoothstep(np.arange(1, onset + 1) / onset)
    fall = _smoothstep(np.arange(offset - 1, -1, -1) / offset)
    return np.concatenate([rise, np.ones(apex), fall]).astype(np.float32)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def occurrence(intensity: np.ndarray) -> np.ndarray:
    """0/1 occurrence (int8) from intensities: present at the A-level cut-off or above."""
    return (intensity >= OCCURRENCE_THRESHOLD).astype(np.int8)


def mark_not_coded(labels: np.ndarray, generator: np.random.Generator, fraction: float) -> np.ndarray:
    """A copy of 0/1 labels with about `fraction` of cells set to 9, as BP4D's coders left some cells."""
    coded = labels.copy()
    coded[generator.random(labels.shape) < fraction] = NOT_CODED
    return coded
