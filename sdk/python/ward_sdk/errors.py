"""Typed errors, one class per case of the contract's ``error`` variant.

Raise them from a connector method; the SDK hands the host the matching
case. Any other exception reaches the host as ``internal`` with its type and
message. Messages are shown to the operator: say what failed and what to do
next.
"""

from typing import Optional


class WardError(Exception):
    """Base of the typed errors; ``message`` is shown to the operator."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Unauthorized(WardError):
    """Credentials were rejected: the instance needs reconnecting."""


class Forbidden(WardError):
    """Credentials are valid but a role, plan or scope is missing."""


class RateLimited(WardError):
    """The provider throttled the call: the host retries after ``retry_after_ms``."""

    def __init__(self, message: str, retry_after_ms: int):
        super().__init__(message)
        self.retry_after_ms = max(0, int(retry_after_ms))


class InvalidConfig(WardError):
    """The instance configuration cannot work (bad subdomain, missing field)."""


class Unavailable(WardError):
    """A transient failure (5xx, timeout): the host retries with backoff."""


class Internal(WardError):
    """A connector bug or a response it cannot understand."""


#: Wait used when a 429 carries no ``Retry-After``.
DEFAULT_RETRY_AFTER_MS = 60_000


def from_status(
    status: int,
    what: str,
    excerpt: str = "",
    retry_after_ms: Optional[int] = None,
) -> WardError:
    """The error for a non-2xx ``status`` of the request described by ``what``
    (e.g. ``"reading the System Log"``): 401 unauthorized, 403 forbidden,
    429 rate-limited, 5xx unavailable, anything else internal. Override a
    case by checking the status before calling this."""
    detail = f" ({excerpt})" if excerpt else ""
    if status == 401:
        return Unauthorized(
            f"{what}: the provider rejected the credentials (401){detail}; reconnect the instance"
        )
    if status == 403:
        return Forbidden(
            f"{what}: the credentials lack a role, plan or scope (403){detail}; "
            "grant it or reconnect with an account that has it"
        )
    if status == 429:
        wait = DEFAULT_RETRY_AFTER_MS if retry_after_ms is None else retry_after_ms
        return RateLimited(f"{what}: rate limited by the provider (429){detail}", wait)
    if 500 <= status <= 599:
        return Unavailable(f"{what}: the provider answered {status}{detail}; retrying later")
    return Internal(f"{what}: unexpected status {status}{detail}")


def to_wit(error: BaseException):
    """The contract's error value for ``error`` (any exception)."""
    from ._bindings import ward_types as t

    if isinstance(error, Unauthorized):
        return t.Error_Unauthorized(error.message)
    if isinstance(error, Forbidden):
        return t.Error_Forbidden(error.message)
    if isinstance(error, RateLimited):
        return t.Error_RateLimited(t.RateLimit(error.retry_after_ms, error.message))
    if isinstance(error, InvalidConfig):
        return t.Error_InvalidConfig(error.message)
    if isinstance(error, Unavailable):
        return t.Error_Unavailable(error.message)
    if isinstance(error, WardError):
        return t.Error_Internal(error.message)
    return t.Error_Internal(f"connector raised {type(error).__name__}: {error}")
