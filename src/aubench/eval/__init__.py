"""Evaluation protocol (pipeline.md §3): pooled per-AU F1 and accuracy at a fixed threshold."""
