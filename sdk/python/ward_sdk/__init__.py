"""Ward's Python SDK for connectors (contract ``ward:connector@0.2.0``,
world ``plugin``), built into a component with componentize-py.

A connector is a class with four methods, exported under the name
componentize-py looks for::

    import ward_sdk
    from ward_sdk import http, AuditPage, TestReport

    class Acme(ward_sdk.Connector):
        def test(self, instance): ...
        def fetch_audit(self, instance, since, cursor): ...
        def fetch_users(self, instance, cursor): ...

    Connector = ward_sdk.export(Acme)

Rules of the sandbox the SDK is shaped around:

- Calls are stateless: every call runs in a fresh instance. Carry state in
  the cursor you return.
- Secrets are never readable: write :func:`secret_ref` (``{{secret:NAME}}``)
  where the value goes; Ward substitutes it for granted URLs only.
- Only URLs your manifest grants are reachable; anything else raises
  :class:`http.Denied`.
- Raise the typed errors of :mod:`ward_sdk.errors`; the SDK hands the host
  the matching case of the contract's ``error`` variant.
"""

from typing import Dict, Optional

from componentize_py_types import Err

from . import errors, http, log, times
from ._bindings import ward_types as _t
from .errors import (
    Forbidden,
    Internal,
    InvalidConfig,
    RateLimited,
    Unauthorized,
    Unavailable,
    WardError,
)
from .secrets import bearer, secret_ref

# The contract's records and enums, as the host reads them.
Actor = _t.Actor
ActorKind = _t.ActorKind
AuditPage = _t.AuditPage
AuthKind = _t.AuthKind
Check = _t.Check
Event = _t.Event
Outcome = _t.Outcome
Target = _t.Target
TestReport = _t.TestReport
User = _t.User
UserPage = _t.UserPage

__all__ = [
    "Actor", "ActorKind", "AuditPage", "AuthKind", "Check", "Connector", "Event",
    "Forbidden", "Instance", "Internal", "InvalidConfig", "Outcome", "RateLimited",
    "Target", "TestReport", "Unauthorized", "Unavailable", "User", "UserPage",
    "WardError", "bearer", "errors", "export", "http", "log", "secret_ref", "times",
]


class Instance:
    """What a call knows about the instance it is made for: its validated
    configuration (values already match the manifest's patterns, so they
    are safe in a URL) and how it authenticates."""

    def __init__(self, config: Dict[str, str], auth: Optional["AuthKind"]):
        self.config = config
        self.auth = auth

    def get(self, name: str) -> Optional[str]:
        """The value of a configuration field, if set."""
        return self.config.get(name)

    def require(self, name: str) -> str:
        """The value of a required field; :class:`InvalidConfig` naming it otherwise."""
        value = self.config.get(name)
        if not value:
            raise InvalidConfig(f"configuration field `{name}` is missing; set it on the instance")
        return value


class Connector:
    """Base class of a connector. Override :meth:`test`,
    :meth:`fetch_audit` and :meth:`fetch_users`; :meth:`auth_url` only for
    an OAuth connector. Times are milliseconds since the epoch (UTC)."""

    def auth_url(self, instance: Instance, redirect_uri: str, state: str) -> str:
        """The provider's OAuth2 authorization URL."""
        raise InvalidConfig("this connector does not use OAuth; connect it with an API token")

    def test(self, instance: Instance) -> "TestReport":
        """Named prerequisite checks ("Test now")."""
        raise Internal("the connector does not implement test")

    def fetch_audit(self, instance: Instance, since: int, cursor: Optional[str]) -> "AuditPage":
        """One page of audit events from ``cursor`` (``None``: start at ``since``)."""
        raise Internal("the connector does not implement fetch_audit")

    def fetch_users(self, instance: Instance, cursor: Optional[str]) -> "UserPage":
        """One page of users from ``cursor`` (``None``: first page)."""
        raise Internal("the connector does not implement fetch_users")


def _call(method, instance, *args):
    """Runs a connector method, turning every exception into the contract's error."""
    wrapped = Instance({e.name: e.value for e in instance.config}, instance.auth)
    try:
        return method(wrapped, *args)
    except http.HttpError as e:
        raise Err(errors.to_wit(e.to_ward())) from None
    except Exception as e:  # every failure reaches the host as a typed error
        raise Err(errors.to_wit(e)) from None


def export(cls: type) -> type:
    """The class componentize-py instantiates for the ``connector`` export,
    wrapping a :class:`Connector` subclass: assign it to a module-level
    ``Connector`` in the app module."""

    class Export:
        def __init__(self) -> None:
            self._inner = cls()

        def auth_url(self, instance, redirect_uri: str, state: str) -> str:
            return _call(self._inner.auth_url, instance, redirect_uri, state)

        def test(self, instance):
            return _call(self._inner.test, instance)

        def fetch_audit(self, instance, since: int, cursor: Optional[str]):
            return _call(self._inner.fetch_audit, instance, since, cursor)

        def fetch_users(self, instance, cursor: Optional[str]):
            return _call(self._inner.fetch_users, instance, cursor)

    Export.__name__ = "Connector"
    Export.__qualname__ = "Connector"
    return Export
