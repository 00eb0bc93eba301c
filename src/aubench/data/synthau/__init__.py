"""SynthAU: the embedded default dataset, synthesised in the official layouts from shipped face photos."""
