"""Errors for bad input: each message names the config key or file at fault and says what to do."""


class ZFError(Exception):
    """Base class; the command line prints these as one clean line instead of a traceback."""


class ConfigError(ZFError):
    """A config value is missing, malformed or inconsistent."""


class DataError(ZFError):
    """A dataset path, layout or file is missing or unusable."""


class TrainingError(ZFError):
    """Training cannot go on (for example the loss became NaN)."""
