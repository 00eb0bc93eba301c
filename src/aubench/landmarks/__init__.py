"""Face detection and 68-point landmarks (iBUG order: 0–16 jaw, 17–26 brows, 27–35 nose, 36–47 eyes,
48–67 mouth)."""
