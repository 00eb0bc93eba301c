"""SynthAU: a small labelled AU video dataset synthesised from real face photos (README, "SynthAU").

Modules: `faces` (source photos and dlib landmarks), `identity` (subjects), `rig` (the AU landmark table and
cues), `warp` (piecewise-affine warps), `labels` (episodes and base rates), `render` (frames), `writers`
(BP4D/DISFA layouts), `generator` (config and the `generate` entry point) and `pool` (unlabeled
videos of identities in no fold, for self-supervised pretraining: `generate_pool`).
"""
from aubench.data.synthau.generator import (
    SequenceLabels,
    SynthConfig,
    SynthSummary,
    generate,
    generate_labels,
    tiny_config,
)

__all__ = ["SequenceLabels", "SynthConfig", "SynthSummary", "generate", "generate_labels", "tiny_config"]
