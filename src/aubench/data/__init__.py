"""Datasets in their official layouts, SynthAU, video io and folds."""
