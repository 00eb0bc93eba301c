"""The small family of exceptions aubench raises; each message names the file or key and what to do."""


class AubenchError(Exception):
    """Base class: a problem the user can fix, explained in the message."""


class DataError(AubenchError):
    """Input data is missing, unreadable or inconsistent (names the file and the problem)."""


class ConfigError(AubenchError):
    """A params entry is unknown, mistyped or out of range (names the key)."""


class ModelError(AubenchError):
    """A model cannot be built or trained as configured (e.g. NaN loss, missing weights)."""
