"""A small blocking HTTP client over ``wasi:http``, brokered by the host.

Requests leave the sandbox only if the URL and method match a grant of the
plugin's manifest. Redirects are returned to you, never followed. Header
values may hold ``{{secret:NAME}}`` references (see :mod:`ward_sdk.secrets`).
"""

import json as _json
import urllib.parse
from typing import Any, Dict, List, Optional, Sequence, Tuple

from componentize_py_types import Err, Ok

from . import errors
from ._bindings import http_types as _t
from ._bindings import outgoing_handler as _handler
from ._bindings import streams as _streams

_METHODS = {
    "GET": _t.Method_Get,
    "HEAD": _t.Method_Head,
    "POST": _t.Method_Post,
    "PUT": _t.Method_Put,
    "PATCH": _t.Method_Patch,
    "DELETE": _t.Method_Delete,
}


class HttpError(Exception):
    """A request that produced no response."""

    def to_ward(self) -> errors.WardError:
        """The contract error for this failure."""
        return errors.Internal(str(self))


class Denied(HttpError):
    """Ward refused the request: no grant of the manifest covers this URL and
    method, or a secret reference is not bound to the matching grant. The
    host's egress log says which. A connector bug (manifest and code
    disagree), so it maps to ``internal``."""


class Invalid(HttpError):
    """The request could not be built (bad URL, header or method)."""


class Transport(HttpError):
    """Network, TLS or protocol failure, or a host limit; transient."""

    def to_ward(self) -> errors.WardError:
        return errors.Unavailable(str(self))


class Response:
    """A complete response: ``status``, ``headers`` (lower-case names, in
    order) and ``body`` (bytes, capped by the host)."""

    def __init__(self, status: int, headers: List[Tuple[str, str]], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> Optional[str]:
        """The first value of a header (case-insensitive)."""
        for value in self.header_all(name):
            return value
        return None

    def header_all(self, name: str) -> List[str]:
        """Every value of a header, in order (e.g. several ``Link`` lines)."""
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def text(self) -> str:
        """The body as text (invalid UTF-8 replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; :class:`~ward_sdk.errors.Internal` otherwise."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise errors.Internal(
                f"provider returned a body that is not JSON (status {self.status}): {e}"
            ) from e

    def link(self, rel: str) -> Optional[str]:
        """The URL of the ``Link`` entry with ``rel="<rel>"``, across every
        ``Link`` header line."""
        for value in self.header_all("link"):
            for url, r in parse_link_header(value):
                if r == rel:
                    return url
        return None

    def retry_after_ms(self) -> Optional[int]:
        """``Retry-After`` in milliseconds (seconds form only)."""
        value = self.header("retry-after")
        if value is None:
            return None
        try:
            seconds = float(value.strip())
        except ValueError:
            return None
        if seconds != seconds or seconds < 0 or seconds == float("inf"):
            return None
        return int(seconds * 1000)

    def excerpt(self) -> str:
        """A short single-line excerpt of the body, for error messages."""
        return " ".join(self.text().split())[:300]

    def raise_for_status(self, what: str) -> "Response":
        """Returns the response if it is 2xx, else raises the typed error
        for its status (:func:`ward_sdk.errors.from_status`)."""
        if self.is_success():
            return self
        raise errors.from_status(self.status, what, self.excerpt(), self.retry_after_ms())


def parse_link_header(value: str) -> List[Tuple[str, str]]:
    """``(url, rel)`` pairs of one ``Link`` header value; commas inside
    ``<…>`` do not split."""
    parts, depth, start = [], False, 0
    for i, c in enumerate(value):
        if c == "<":
            depth = True
        elif c == ">":
            depth = False
        elif c == "," and not depth:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    out = []
    for part in parts:
        part = part.strip()
        end = part.find(">")
        if not part.startswith("<") or end < 0:
            continue
        url = part[1:end]
        for param in part[end + 1 :].split(";"):
            param = param.strip()
            if param.startswith("rel="):
                for rel in param[4:].strip('"').split():
                    out.append((url, rel))
    return out


def with_query(base: str, params: Sequence[Tuple[str, str]]) -> str:
    """``base`` with the query parameters appended, percent-encoded."""
    sep = "&" if "?" in base else "?"
    return base + sep + urllib.parse.urlencode(list(params)) if params else base


def get(url: str, headers: Optional[Dict[str, str]] = None) -> Response:
    """A GET request."""
    return send("GET", url, headers)


def post(
    url: str,
    headers: Optional[Dict[str, str]] = None,
    body: bytes = b"",
    json: Any = None,
) -> Response:
    """A POST request; ``json`` sets a JSON body and its content type."""
    return send("POST", url, headers, body, json)


def send(
    method: str,
    url: str,
    headers: Optional[Dict[str, str]] = None,
    body: bytes = b"",
    json: Any = None,
) -> Response:
    """Sends a request through the host and reads the whole response.
    Raises :class:`Denied`, :class:`Invalid` or :class:`Transport` when no
    response came back (``except HttpError as e: raise e.to_ward()``, or let
    the SDK map it)."""
    entries = [(k.lower(), v.encode()) for k, v in (headers or {}).items()]
    if json is not None:
        body = _json.dumps(json, separators=(",", ":")).encode()
        entries.append(("content-type", b"application/json"))
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise Invalid(f"{url}: not an absolute http(s) URL")
    kind = _METHODS.get(method.upper())
    if kind is None:
        raise Invalid(f"{method}: unsupported method")
    authority = parsed.netloc.rpartition("@")[2]
    host = authority if parsed.port else f"{authority}:{443 if parsed.scheme == 'https' else 80}"
    path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    try:
        fields = _t.Fields.from_list(entries)
    except Err as e:
        raise Invalid(f"header rejected for {url}: {e.value}") from None
    request = _t.OutgoingRequest(fields)
    try:
        request.set_method(kind())
        request.set_scheme(_t.Scheme_Https() if parsed.scheme == "https" else _t.Scheme_Http())
        request.set_authority(authority)
        request.set_path_with_query(path)
        outgoing = request.body()
    except Err:
        raise Invalid(f"request rejected for {url}") from None
    try:
        future = _handler.handle(request, None)
    except Err as e:
        raise _transport(e.value, host) from None
    # Child resources are dropped (`with`) before their parents finish.
    with outgoing.write() as stream:
        for i in range(0, len(body), 4096):
            try:
                stream.blocking_write_and_flush(body[i : i + 4096])
            except Err as e:
                raise Transport(f"writing the request body to {host}: {e.value}") from None
    try:
        _t.OutgoingBody.finish(outgoing, None)
    except Err as e:
        raise _transport(e.value, host) from None

    with future.subscribe() as pollable:
        pollable.block()
    result = future.get()
    if result is None or isinstance(result, Err) or isinstance(result.value, Err):
        if result is not None and isinstance(result, Ok):
            raise _transport(result.value.value, host)
        raise Transport(f"{host}: the response future was in a bad state")
    response = result.value.value
    status = response.status()
    received = [(k, v.decode("utf-8", errors="replace")) for k, v in response.headers().entries()]
    incoming = response.consume()
    chunks = []
    with incoming.stream() as reader:
        while True:
            try:
                chunks.append(reader.blocking_read(64 * 1024))
            except Err as e:
                if isinstance(e.value, _streams.StreamError_Closed):
                    break
                raise Transport(f"reading the response body from {host}: {e.value}") from None
    _t.IncomingBody.finish(incoming)
    return Response(status, received, b"".join(chunks))


def _transport(code: Any, host: str) -> HttpError:
    """A failure code in words naming ``host`` and what to check."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    if name == "HttpRequestDenied":
        return Denied(
            f"request to {host} denied by Ward's sandbox (not covered by the plugin's HTTP grants)"
        )
    hints = {
        "ConnectionRefused": "connection refused; check the configured domain",
        "ConnectionTimeout": "connecting timed out; check the domain and the network path",
        "DnsError": "cannot resolve the host; check the configured domain",
        "DnsTimeout": "cannot resolve the host; check the configured domain",
        "DestinationIpProhibited": "resolves to an address Ward refuses to reach",
        "TlsCertificateError": "TLS failed (certificate not trusted)",
        "HttpResponseTimeout": "did not answer in time; try again later",
    }
    return Transport(f"{host}: {hints.get(name, name)}")


