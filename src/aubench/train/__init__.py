"""The training engine shared by every method."""
