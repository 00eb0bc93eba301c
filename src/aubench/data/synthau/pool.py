"""SynthAU's unlabeled pool: face videos of identities in no fold, for self-supervised pretraining (issue #11).

MC-SFAU pretrains its backbone on unlabeled face videos (VoxCeleb2 in the paper); this pool is the stand-in a
fresh machine can make. Identities `subjects … subjects + unlabeled_subjects − 1` (trait draws of their own,
so none is a labelled subject), named like VoxCeleb2's (`id00012`), are animated and rendered exactly like
the labelled dataset (AU episodes, head motion, lighting: pretraining sees facial motion) and written as
`<unlabeled_root>/<id>/clip01.avi` (MJPG), the `videos` layout of `aubench.data.datasets`; their AU labels
are not written. The ground-truth landmarks go to `SynthAU_Landmarks/<id>_clip01.npy`, so the landmarks stage
reports its error on the pool too. Like `generate`, the pool is written atomically, is byte-identical for
any worker count and refuses to replace a folder that is not a pool.
"""
from __future__ import annotations

import json
import logging
import time
from itertools import repeat
from pathlib import Path

import numpy as np

from aubench.config import to_dict
from aubench.data.synthau.generator import (SynthConfig, check_replaceable, make_identity, render_sequence,
                                            sequence_labels, write_atomically)
from aubench.data.synthau.writers import LANDMARK_DIR
from aubench.data.video import write_video
from aubench.parallel import progress_map

log = logging.getLogger(__name__)

POOL_MANIFEST = "synthau_pool.json"
#: Settings of the labelled dataset only (its layout, sequences, JPEG frames and 'not coded' cells) and of
#: where and how fast files are written: the pool does not depend on them, so its manifest leaves them out.
NOT_POOL_SETTINGS = ("root", "workers", "unlabeled_root", "layout", "tasks", "frames", "jpeg_quality", "not_coded")


def pool_identities(config: SynthConfig) -> list[tuple[int, str]]:
    """(identity index, name) of every pool identity: the indices that follow the labelled subjects'."""
    first = config.subjects
    return [(index, f"id{index:05d}") for index in range(first, first + config.unlabeled_subjects)]


def clip_names(config: SynthConfig) -> list[str]:
    """Each pool identity's video names, `clip01`, `clip02`, …"""
    return [f"clip{number:02d}" for number in range(1, config.unlabeled_clips + 1)]


def render_pool_identity(config: SynthConfig, folder: Path, identity: tuple[int, str]) -> list[str]:
    """Render and write every clip of one pool identity (one task of a worker); returns the clips' keys."""
    index, name = identity
    face = make_identity(config, index, name)
    keys = []
    for clip in clip_names(config):
        labels = sequence_labels(config, name, clip, config.unlabeled_frames)  # the AUs to animate, not written
        images, landmarks = render_sequence(config, face, labels)
        write_video(folder / name / f"{clip}.avi", images, config.fps)
        keys.append(f"{name}_{clip}")
        np.save(folder / LANDMARK_DIR / f"{keys[-1]}.npy", landmarks)
    return keys


def generate_pool(config: SynthConfig) -> list[str]:
    """Write the pool under `config.unlabeled_root` (replacing an earlier pool there); returns its sequence keys."""
    root = Path(config.unlabeled_root)
    check_replaceable(root, POOL_MANIFEST, "SynthAU pool", "synthesize.unlabeled_root")
    started = time.perf_counter()
    keys = write_atomically(root, lambda folder: _write_pool(config, folder))
    log.info("SynthAU pool: %d identities, %d videos of %d frames written to %s in %.1f s",
             config.unlabeled_subjects, len(keys), config.unlabeled_frames, root, time.perf_counter() - started)
    return keys


def _write_pool(config: SynthConfig, folder: Path) -> list[str]:
    identities = pool_identities(config)
    (folder / LANDMARK_DIR).mkdir()
    rendered = progress_map(render_pool_identity, repeat(config), repeat(folder), identities, total=len(identities),
                            desc="synthau-pool", unit="identity", workers=config.workers)
    keys = [key for clips in rendered for key in clips]
    settings = {name: value for name, value in to_dict(config).items() if name not in NOT_POOL_SETTINGS}
    manifest = {"generator": "aubench.data.synthau.pool", "config": settings,
                "identities": [name for _, name in identities], "sequences": keys,
                "frames": len(keys) * config.unlabeled_frames}
    (folder / POOL_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return keys
