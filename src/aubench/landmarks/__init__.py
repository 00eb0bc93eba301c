"""Face detection and 68-point landmarks (iBUG order, pipeline.md §5)."""
