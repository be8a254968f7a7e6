"""Logging into the host's log (capped per call and redacted by the host)."""

from ._bindings import log as _log


def _write(level, message: str) -> None:
    _log.log(level, message)


def debug(message: str) -> None:
    """A debug line."""
    _write(_log.Level.DEBUG, message)


def info(message: str) -> None:
    """An info line."""
    _write(_log.Level.INFO, message)


def warn(message: str) -> None:
    """A warning line."""
    _write(_log.Level.WARN, message)


def error(message: str) -> None:
    """An error line."""
    _write(_log.Level.ERROR, message)
