"""Timestamps as the contract carries them: milliseconds since the Unix
epoch, UTC."""

import datetime as _dt
import time as _time

from .errors import Internal

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def parse_rfc3339(text: str) -> int:
    """Milliseconds for an RFC 3339 date-time (``2024-01-02T03:04:05.678Z``);
    :class:`Internal` when the provider sent something else."""
    try:
        parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError) as e:
        raise Internal(f"provider sent an unreadable time {text!r}: {e}") from e
    if parsed.tzinfo is None:
        raise Internal(f"provider sent a time without offset {text!r}")
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_rfc3339(ms: int) -> str:
    """RFC 3339 with milliseconds and ``Z``, the form most APIs accept."""
    t = _EPOCH + _dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def now_ms() -> int:
    """The current wall-clock time."""
    return _time.time_ns() // 1_000_000
