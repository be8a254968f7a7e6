"""Okta System Log and users with an API token, in Python.

The worked example of ``ward_sdk``: polling-link cursors (Okta's ``next``
link is the cursor), typed errors from statuses, the token by reference.
"""

import json
from typing import Optional

import ward_sdk
from ward_sdk import (
    Actor,
    ActorKind,
    AuditPage,
    Check,
    Event,
    Outcome,
    Target,
    TestReport,
    User,
    UserPage,
    http,
    times,
)

LOG_LIMIT = 100
USER_LIMIT = 200
OUTCOMES = {"SUCCESS": Outcome.SUCCESS, "ALLOW": Outcome.SUCCESS, "FAILURE": Outcome.FAILURE, "DENY": Outcome.FAILURE}
ACTOR_KINDS = {"User": ActorKind.USER, "PublicClientApp": ActorKind.SERVICE, "SystemPrincipal": ActorKind.SYSTEM}


def base(instance: ward_sdk.Instance) -> str:
    return f"https://{instance.require('domain')}.okta.com/api/v1"


def get(instance: ward_sdk.Instance, url: str, what: str) -> http.Response:
    """GET with the token by reference; a typed error for any non-2xx."""
    if not url.startswith(base(instance) + "/"):
        raise ward_sdk.Internal(f"stored cursor {url!r} is not under this org's API; reset the cursor")
    headers = {"authorization": "SSWS " + ward_sdk.secret_ref("api_token"), "accept": "application/json"}
    return http.get(url, headers).raise_for_status(what)


def compact(value) -> str:
    """The provider's JSON for `raw`, without whitespace."""
    return json.dumps(value, separators=(",", ":"))


def text(value) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def to_event(raw: dict, source: str) -> Event:
    actor = raw.get("actor") or {}
    client = raw.get("client") or {}
    outcome = (raw.get("outcome") or {}).get("result")
    return Event(
        id=raw.get("uuid") or "",
        time=times.parse_rfc3339(raw.get("published") or ""),
        action=raw.get("eventType") or "unknown",
        actor=Actor(
            id=text(actor.get("id")),
            kind=ACTOR_KINDS.get(actor.get("type"), ActorKind.UNKNOWN),
            name=text(actor.get("displayName")),
            email=text(actor.get("alternateId")) if "@" in (actor.get("alternateId") or "") else None,
        ),
        targets=[
            Target(id=text(t.get("id")), kind=text(t.get("type")), name=text(t.get("displayName")))
            for t in raw.get("target") or []
        ],
        ip=text(client.get("ipAddress")),
        user_agent=text((client.get("userAgent") or {}).get("rawUserAgent")),
        outcome=OUTCOMES.get(outcome, Outcome.UNKNOWN),
        raw=source,
    )


class OktaLite(ward_sdk.Connector):
    def test(self, instance):
        me = get(instance, f"{base(instance)}/users/me", "reading the token's user").json()
        checks = [Check("credentials-valid", True, "the API token is accepted")]
        try:
            get(instance, f"{base(instance)}/logs?limit=1", "reading the System Log")
            checks.append(Check("system-log-readable", True, "the System Log is readable"))
        except ward_sdk.Forbidden as e:
            checks.append(Check("system-log-readable", False, e.message))
        login = (me.get("profile") or {}).get("login")
        return TestReport(checks=checks, account_name=instance.require("domain"), principal=text(login))

    def fetch_audit(self, instance, since, cursor):
        url = cursor or http.with_query(
            f"{base(instance)}/logs",
            [("since", times.format_rfc3339(since)), ("limit", str(LOG_LIMIT)), ("sortOrder", "ASCENDING")],
        )
        response = get(instance, url, "reading the System Log")
        body = response.json()
        if not isinstance(body, list):
            raise ward_sdk.Internal("the System Log answered something other than a list of events")
        events = [to_event(e, compact(e)) for e in body]
        # Polling mode always has a next link; without one, stay in place.
        following = response.link("next") or url
        return AuditPage(events=events, cursor=following, more=bool(events) and following != url)

    def fetch_users(self, instance, cursor):
        url = cursor or http.with_query(f"{base(instance)}/users", [("limit", str(USER_LIMIT))])
        response = get(instance, url, "listing users")
        users = []
        for u in response.json():
            profile = u.get("profile") or {}
            names = [n for n in (profile.get("firstName"), profile.get("lastName")) if n]
            users.append(
                User(
                    id=str(u.get("id") or ""),
                    email=text(profile.get("email")),
                    login=text(profile.get("login")),
                    name=" ".join(names) or None,
                    status=text(u.get("status")),
                    is_admin=False,
                    created=times.parse_rfc3339(u["created"]) if u.get("created") else None,
                    last_login=times.parse_rfc3339(u["lastLogin"]) if u.get("lastLogin") else None,
                    raw=compact(u),
                )
            )
        following = response.link("next")
        return UserPage(users=users, cursor=following, more=following is not None)


Connector = ward_sdk.export(OktaLite)
