"""aubench: reproducible facial action unit occurrence detection."""

__version__ = "0.1.0"
