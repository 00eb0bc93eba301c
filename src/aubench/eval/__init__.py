"""Evaluation protocol (README, "Evaluation protocol"): pooled per-AU F1 and accuracy at a fixed threshold."""
