"""Face alignment: similarity transform on the eye centres into a square crop, and the aligned store."""
