"""The {{name}} connector (Python, ward_sdk, contract ward:connector@0.2.0).

TODO: replace the example API (https://{tenant}.api.example.com/v1/) with
your provider's, in ward.toml's [[http]] grant too, and record fixtures
from a real tenant with `ward plugin record`.
"""

import json

import ward_sdk
from ward_sdk import (
    Actor,
    ActorKind,
    AuditPage,
    Check,
    Event,
    Outcome,
    TestReport,
    User,
    UserPage,
    http,
    times,
)


def base(instance: ward_sdk.Instance) -> str:
    return f"https://{instance.require('tenant')}.api.example.com/v1"


def get(url: str, what: str) -> http.Response:
    # The token by reference: Ward substitutes it for granted URLs only.
    headers = {"authorization": ward_sdk.bearer("api_token"), "accept": "application/json"}
    return http.get(url, headers).raise_for_status(what)


class Impl(ward_sdk.Connector):
    def test(self, instance):
        me = get(f"{base(instance)}/me", "reading the token's user").json()
        # TODO: add a check per prerequisite (admin role, plan, scope).
        return TestReport(
            checks=[Check("credentials-valid", True, "the API token is accepted")],
            account_name=me.get("tenant"),
            principal=me.get("email"),
        )

    def fetch_audit(self, instance, since, cursor):
        # The cursor is the provider's `next` URL; the first call starts at `since`.
        url = cursor or http.with_query(f"{base(instance)}/audit", [("since", times.format_rfc3339(since))])
        body = get(url, "reading the audit log").json()
        events = [
            Event(
                id=e["id"],
                time=times.parse_rfc3339(e["time"]),
                action=e["action"],
                actor=Actor(
                    id=e.get("actor", {}).get("id"),
                    kind=ActorKind.USER,
                    name=None,
                    email=e.get("actor", {}).get("email"),
                ),
                targets=[],
                ip=e.get("ip"),
                user_agent=None,
                outcome=Outcome.UNKNOWN,
                raw=json.dumps(e, separators=(",", ":")),
            )
            for e in body.get("events", [])
        ]
        following = body.get("next") or url
        return AuditPage(events=events, cursor=following, more=bool(events) and following != url)

    def fetch_users(self, instance, cursor):
        body = get(cursor or f"{base(instance)}/users", "listing users").json()
        users = [
            User(
                id=u["id"],
                email=u.get("email"),
                login=u.get("email"),
                name=u.get("name"),
                status=None,
                is_admin=bool(u.get("admin")),
                created=None,
                last_login=None,
                raw=json.dumps(u, separators=(",", ":")),
            )
            for u in body.get("users", [])
        ]
        following = body.get("next")
        return UserPage(users=users, cursor=following, more=following is not None)


# componentize-py instantiates the module-level `Connector`.
Connector = ward_sdk.export(Impl)
