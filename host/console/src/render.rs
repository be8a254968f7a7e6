//! The console's HTML, rendered on the server with `maud` (escaped by
//! construction). Every control has a visible label or an `aria-label`;
//! everything is reachable with Tab and works without script (htmx only
//! refreshes the status of an instance while its page is open).

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use ward_api::{EgressView, EventView, SinkView, rfc3339};
use ward_daemon::connect::Connected;
use ward_daemon::instances::Overview;
use ward_daemon::registry::{KnownVersion, LoadedPlugin, PendingPlugin};
use ward_daemon::usage::Usage;
use ward_manifest::{Change, ChangeKind};
use ward_store::Instance;

use crate::routes::EventFilters;
use crate::session::{CSRF_FIELD, Session};
use crate::wizard::{CONFIG_PREFIX, ConnectForm, Method};

/// The verdicts of a Test now, for display.
pub(crate) struct TestOutcome {
    checks: Vec<(String, bool, String)>,
    error: Option<String>,
}

impl TestOutcome {
    pub(crate) fn of(c: &Connected) -> TestOutcome {
        match &c.report {
            Ok(r) => TestOutcome {
                checks: r
                    .checks
                    .iter()
                    .map(|c| (c.name.clone(), c.ok, c.message.clone()))
                    .collect(),
                error: None,
            },
            Err(e) => TestOutcome {
                checks: Vec::new(),
                error: Some(e.to_string()),
            },
        }
    }
}

fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Ward" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/htmx.min.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Main" {
                        strong { "Ward" }
                        @if let Some(s) = session {
                            a href="/console/instances" { "Instances" }
                            a href="/console/connect" { "Connect" }
                            a href="/console/connectors" { "Connectors" }
                            a href="/console/sinks" { "Sinks" }
                            form.inline method="post" action="/console/sign-out" {
                                (csrf(s))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { h1 { (title) } (body) }
            }
        }
    }
}

fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(s.csrf); }
}

/// A button that posts a form with the session's CSRF token.
fn action(s: &Session, to: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(to) {
            (csrf(s))
            button type="submit" { (label) }
        }
    }
}

pub(crate) fn error(status: StatusCode, message: &str) -> Markup {
    layout(
        status.canonical_reason().unwrap_or("Error"),
        None,
        html! {
            p role="alert" { (message) }
            p { a href="/" { "Back to the console" } }
        },
    )
}

pub(crate) fn sign_in(csrf_token: &str, problem: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(p) = problem { p.bad role="alert" { (p) } }
            p { "Sign in with the operator's API secrets (the `user` and `organization` values of "
                code { "<data_dir>/api-secrets.toml" } "), or open the one-time link the daemon printed at start-up. "
                "An instance's Element token does not open the console." }
            form method="post" action="/console/sign-in" {
                input type="hidden" name=(CSRF_FIELD) value=(csrf_token);
                label for="user" { "User secret" }
                input #user type="password" name="user" autocomplete="off" required;
                label for="organization" { "Organization secret" }
                input #organization type="password" name="organization" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

fn state_badge(o: &Overview) -> Markup {
    let state = if o.disabled {
        "disabled"
    } else {
        o.instance.status.as_str()
    };
    html! { span class={"state " (state)} { (state) } }
}

fn when(ms: Option<i64>) -> String {
    ms.map(rfc3339).unwrap_or_else(|| "never".to_owned())
}

fn lag(o: &Overview) -> String {
    o.lag_secs
        .map(|s| format!("{s} s"))
        .unwrap_or_else(|| "–".to_owned())
}

pub(crate) fn instances(session: &Session, all: &[Overview]) -> Markup {
    layout(
        "Instances",
        Some(session),
        html! {
            @if all.is_empty() {
                p { "No instance yet: " a href="/console/connect" { "connect one" } " (or use " code { "POST /instances" } " or " code { "ward connect" } ")." }
            } @else {
                table {
                    caption { "Connected instances" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Connector" } th scope="col" { "State" }
                        th scope="col" { "Phase" } th scope="col" { "Lag" } th scope="col" { "Last success" }
                        th scope="col" { "Events stored" }
                    } }
                    tbody {
                        @for o in all {
                            tr {
                                td { a href={"/console/instances/" (o.instance.id)} { (o.instance.name) } }
                                td { (o.instance.plugin_key) " " (o.instance.plugin_version) }
                                td { (state_badge(o)) }
                                td { (o.phase) }
                                td { (lag(o)) }
                                td { (when(o.instance.last_success_ms)) }
                                td { (o.events_stored) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The live part of an instance page (refreshed by htmx every 5 s).
pub(crate) fn status(o: &Overview) -> Markup {
    let id = &o.instance.id;
    html! {
        dl #status hx-get={"/console/instances/" (id) "/status"} hx-trigger="every 5s" hx-swap="outerHTML" aria-live="polite" {
            dt { "State" } dd { (state_badge(o)) }
            @if let Some(m) = &o.instance.status_message { dt { "Message" } dd { (m) } }
            dt { "Phase" } dd { (o.phase) }
            dt { "Lag" } dd { (lag(o)) }
            dt { "Last success" } dd { (when(o.instance.last_success_ms)) }
            dt { "Events stored" } dd { (o.events_stored) }
            dt { "Credential age" } dd {
                (o.credential_age_days.map(|d| format!("{d} days")).unwrap_or_else(|| "–".to_owned()))
                @if let Some(w) = &o.credential_warning { " " strong.bad { (w) } }
            }
            dt { "Requests per minute" } dd { (o.requests_per_minute) }
        }
    }
}

pub(crate) fn instance(
    session: &Session,
    o: &Overview,
    test: Option<&TestOutcome>,
    notice: Option<&str>,
) -> Markup {
    let id = &o.instance.id;
    let base = format!("/console/instances/{id}");
    layout(
        &o.instance.name,
        Some(session),
        html! {
            @if let Some(n) = notice { p.ok role="status" { (n) } }
            p { (o.instance.plugin_key) " " (o.instance.plugin_version) " · instance " code { (id) } }
            (status(o))
            nav aria-label="Instance" {
                a href={(base) "/events"} { "Events" }
                a href={(base) "/egress"} { "Egress" }
            }
            div.actions {
                (action(session, &format!("{base}/test"), "Test now"))
                @if o.disabled {
                    (action(session, &format!("{base}/enable"), "Enable"))
                } @else {
                    (action(session, &format!("{base}/disable"), "Disable"))
                }
                a.button href={(base) "/reconnect"} { "Reconnect / rotate…" }
                a.button href={(base) "/delete"} { "Delete…" }
            }
            @if let Some(t) = test { (checks(t)) }
            section aria-labelledby="rate" {
                h2 #rate { "Rate" }
                form method="post" action={(base) "/rate"} {
                    (csrf(session))
                    label for="rpm" { "Requests per minute (0 restores the connector's default)" }
                    input #rpm type="number" name="requests_per_minute" min="0" max="100000" required value=(o.requests_per_minute);
                    " "
                    button type="submit" { "Save rate" }
                }
            }
        },
    )
}

/// The verdicts of a Test now, each check with its message (which says
/// what to fix when it failed).
fn checks(t: &TestOutcome) -> Markup {
    html! {
        section aria-labelledby="checks" {
            h2 #checks { "Test now" }
            @if let Some(e) = &t.error { p.bad role="alert" { "The test could not run: " (e) } }
            ul.checks {
                @for (name, ok, message) in &t.checks {
                    li class=(if *ok { "ok" } else { "bad" }) {
                        strong { (name) } ": " (if *ok { "passed" } else { "failed" }) " — " (message)
                    }
                }
            }
        }
    }
}

/// The wizard's first step.
pub(crate) fn choose_provider(session: &Session, loaded: &[LoadedPlugin]) -> Markup {
    layout(
        "Connect a provider",
        Some(session),
        html! {
            p { "Choose the provider and how to connect it. Ward then checks the prerequisites (Test now) and starts the backfill." }
            ul.providers {
                @for p in loaded {
                    @let m = p.plugin.manifest();
                    li {
                        strong { (m.name) } " (" code { (m.key) } " " (m.version) ", " (m.vendor) "): "
                        @for method in crate::wizard::methods(m) {
                            a.button href={"/console/connect/" (m.key) "?method=" (method.as_str())}
                                aria-label={(m.name) ": " (method.label())} { (method.label()) }
                            " "
                        }
                    }
                }
            }
        },
    )
}

fn config_input(i: &crate::wizard::Input) -> Markup {
    let f = &i.field;
    let id = format!("cfg-{}", f.name);
    let label = if f.label.is_empty() {
        f.name.as_str()
    } else {
        f.label.as_str()
    };
    let required = f.required && f.default.is_none();
    // A tenant field also takes a pasted address, which its pattern (for the
    // bare name) would refuse: the server normalises and checks it.
    let pattern = (!f.pattern.is_empty() && f.tenant.is_none()).then_some(f.pattern.as_str());
    let help = format!("{id}-help");
    html! {
        label for=(id) { (label) @if required { " (required)" } }
        @if f.values.is_empty() {
            input id=(id) type="text" name={(CONFIG_PREFIX) (f.name)} value=(i.value)
                required[required] pattern=[pattern] aria-describedby=(help);
        } @else {
            select id=(id) name={(CONFIG_PREFIX) (f.name)} aria-describedby=(help) {
                @for v in &f.values { option value=(v) selected[*v == i.value] { (v) } }
            }
        }
        @if !f.description.is_empty() { small id=(help) { (f.description) } }
    }
}

/// The wizard's form (new instance or reconnect), with the problem of the
/// last attempt.
pub(crate) fn connect(session: &Session, f: &ConnectForm, problem: Option<&str>) -> Markup {
    let title = match &f.instance {
        Some((_, name)) => format!("Reconnect {name}"),
        None => format!("Connect {}", f.provider),
    };
    let other: Vec<Method> = f
        .methods
        .iter()
        .copied()
        .filter(|m| *m != f.method)
        .collect();
    let other_href = |m: Method| match &f.instance {
        Some((id, _)) => format!("/console/instances/{id}/reconnect?method={}", m.as_str()),
        None => format!("/console/connect/{}?method={}", f.key, m.as_str()),
    };
    layout(
        &title,
        Some(session),
        html! {
            @if let Some(p) = problem { p.bad #problem role="alert" { (p) } }
            @for m in &other { p { "Or " a href=(other_href(*m)) { (m.label()) } "." } }
            form.wizard method="post" action=(f.action()) {
                (csrf(session))
                @if f.instance.is_none() {
                    fieldset {
                        legend { "Configuration" }
                        label for="name" { "Display name" }
                        input #name type="text" name="name" value=(f.name) placeholder=(f.provider);
                        @for i in &f.inputs { (config_input(i)) }
                    }
                }
                @match f.method {
                    Method::Token => {
                        fieldset {
                            legend { "API token" }
                            label for="api_token" { "API token (required)" }
                            input #api_token type="password" name="api_token" autocomplete="off" required;
                            small { "Stored encrypted by Ward and sent only as the connector's manifest allows; the connector never reads it." }
                        }
                        button type="submit" { @if f.instance.is_some() { "Store new token and test" } @else { "Connect and test" } }
                    }
                    Method::Oauth => {
                        fieldset {
                            legend { "OAuth client" }
                            label for="client_id" { "OAuth client id (required)" }
                            input #client_id type="text" name="client_id" value=(f.client_id) autocomplete="off" required;
                            label for="client_secret" { "OAuth client secret (required)" }
                            input #client_secret type="password" name="client_secret" autocomplete="off" required;
                            small { "Register " code { "<console>/oauth/callback" } " (Ward's callback) as a redirect URI of this client at the provider." }
                        }
                        button type="submit" { "Connect with OAuth" }
                    }
                }
            }
        },
    )
}

/// A new instance: its Test now checks and its `Element` token (shown once).
pub(crate) fn connected(session: &Session, o: &Overview, t: &TestOutcome, token: &str) -> Markup {
    let id = &o.instance.id;
    layout(
        &format!("Connected {}", o.instance.name),
        Some(session),
        html! {
            p role="status" { "Instance " code { (id) } " created; the backfill starts when every check passes." }
            (checks(t))
            (status(o))
            details {
                summary { "Element token for the REST API (shown once)" }
                code.token { (token) }
            }
            p { a.button href={"/console/instances/" (id)} { "Open the instance" } " "
                a href={"/console/instances/" (id) "/events"} { "Events" } }
        },
    )
}

/// The provider sent the browser back with a code: continue, same-site, to
/// the console (which then has the session cookie).
pub(crate) fn consent_returned(next: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content={"0; url=" (next)};
                title { "Consent received · Ward" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body { main #main {
                h1 { "Consent received" }
                p { "Ward recorded the provider's answer. " a #continue href=(next) { "Continue in the console" } "." }
            } }
        }
    }
}

/// The consent did not come back usable (declined, unknown or used state).
pub(crate) fn consent_failed(message: &str) -> Markup {
    layout(
        "Consent not completed",
        None,
        html! {
            p.bad role="alert" { (message) }
            p { "No instance was created. " a href="/console/connect" { "Start again" } "." }
        },
    )
}

/// The permission changes between two versions of a connector.
pub(crate) fn diff(
    session: &Session,
    key: &str,
    versions: &[KnownVersion],
    from: &KnownVersion,
    to: &KnownVersion,
    changes: &[Change],
) -> Markup {
    let option = |v: &KnownVersion, chosen: &KnownVersion| {
        html! { option value=(v.digest) selected[v.digest == chosen.digest] {
            (v.version) " (" (v.status) ", " (v.digest.get(..12).unwrap_or(&v.digest)) "…)"
        } }
    };
    layout(
        &format!("Permissions of {key}: {} → {}", from.version, to.version),
        Some(session),
        html! {
            form method="get" action={"/console/connectors/" (key) "/diff"} aria-label="Versions to compare" {
                label for="from" { "From" }
                select #from name="from" { @for v in versions { (option(v, from)) } }
                label for="to" { "To" }
                select #to name="to" { @for v in versions { (option(v, to)) } }
                " " button type="submit" { "Compare" }
            }
            @if changes.is_empty() {
                p { "No permission changes." }
            } @else {
                table {
                    caption { "Changes, widenings first" }
                    thead { tr { th scope="col" { "Change" } th scope="col" { "Subject" } th scope="col" { "Detail" } } }
                    tbody {
                        @for c in changes {
                            @let (class, word) = match c.kind {
                                ChangeKind::Widening => ("bad", "widened"),
                                ChangeKind::Narrowing => ("ok", "narrowed"),
                                ChangeKind::Neutral => ("", "changed"),
                            };
                            tr class=(class) { td { (word) } td { code { (c.subject) } } td { (c.detail) } }
                        }
                    }
                }
            }
            p { a href="/console/connectors" { "Back to the connectors" } }
        },
    )
}

pub(crate) fn confirm_delete(session: &Session, i: &Instance) -> Markup {
    layout(
        "Delete instance",
        Some(session),
        html! {
            p role="alert" { "Delete " strong { (i.name) } " (" code { (i.id) } ") with its credentials, cursors, events, users and egress log? This cannot be undone." }
            (action(session, &format!("/console/instances/{}/delete", i.id), "Delete for good"))
            a href={"/console/instances/" (i.id)} { "Keep it" }
        },
    )
}

fn filter_query(f: &EventFilters, cursor: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("from", &f.from),
        ("to", &f.to),
        ("action", &f.action),
        ("actor", &f.actor),
        ("outcome", &f.outcome),
    ] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    if let Some(c) = cursor {
        q.append_pair("cursor", c);
    }
    q.finish()
}

pub(crate) fn events(
    session: &Session,
    i: &Instance,
    f: &EventFilters,
    events: &[EventView],
    next: Option<&str>,
) -> Markup {
    let base = format!("/console/instances/{}", i.id);
    layout(
        &format!("Events of {}", i.name),
        Some(session),
        html! {
            form method="get" action={(base) "/events"} aria-label="Filter events" {
                label for="from" { "From (UTC)" } input #from type="datetime-local" name="from" value=(f.from);
                label for="to" { "To (UTC)" } input #to type="datetime-local" name="to" value=(f.to);
                label for="action" { "Action" } input #action type="text" name="action" value=(f.action);
                label for="actor" { "Actor" } input #actor type="text" name="actor" value=(f.actor);
                label for="outcome" { "Outcome" }
                select #outcome name="outcome" {
                    @for o in ["", "success", "failure", "unknown"] {
                        option value=(o) selected[f.outcome == o] { (if o.is_empty() { "any" } else { o }) }
                    }
                }
                button type="submit" { "Filter" }
            }
            p { a href={(base) "/events.ndjson?" (filter_query(f, None))} download { "Export this filter as NDJSON" } }
            table {
                caption { "Events, newest first" }
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Action" } th scope="col" { "Actor" }
                    th scope="col" { "Outcome" } th scope="col" { "IP" } th scope="col" { "Raw" }
                } }
                tbody {
                    @for e in events {
                        tr {
                            td { (e.time) } td { (e.action) }
                            td { (e.actor.email.as_deref().or(e.actor.name.as_deref()).or(e.actor.id.as_deref()).unwrap_or("–")) }
                            td { (e.outcome) } td { (e.ip.as_deref().unwrap_or("–")) }
                            td { a href={(base) "/event?time_ms=" (e.time_ms) "&event_id=" (url::form_urlencoded::byte_serialize(e.event_id.as_bytes()).collect::<String>())}
                                aria-label={"Raw JSON of event " (e.event_id)} { "JSON" } }
                        }
                    }
                }
            }
            @if events.is_empty() { p { "No event matches." } }
            @if let Some(c) = next {
                p { a rel="next" href={(base) "/events?" (filter_query(f, Some(c)))} { "Older events" } }
            }
        },
    )
}

pub(crate) fn event(session: &Session, i: &Instance, e: &EventView) -> Markup {
    let pretty = serde_json::to_string_pretty(e).unwrap_or_default();
    layout(
        &format!("Event {}", e.event_id),
        Some(session),
        html! {
            p { a href={"/console/instances/" (i.id) "/events"} { "Back to the events of " (i.name) } }
            pre tabindex="0" aria-label="Event as JSON" { code { (pretty) } }
        },
    )
}

pub(crate) fn egress(
    session: &Session,
    i: &Instance,
    rows: &[EgressView],
    denied_only: bool,
) -> Markup {
    let base = format!("/console/instances/{}/egress", i.id);
    layout(
        &format!("Egress of {}", i.name),
        Some(session),
        html! {
            p {
                @if denied_only { a href=(base) { "Show every request" } }
                @else { a href={(base) "?denied=1"} { "Show denials only" } }
            }
            table {
                caption { "Requests the plugin made or tried, newest first (last 1000)" }
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Call" } th scope="col" { "Method" }
                    th scope="col" { "URL" } th scope="col" { "Verdict" } th scope="col" { "Grant or reason" } th scope="col" { "Status" }
                } }
                tbody {
                    @for r in rows {
                        tr class=(if r.allowed { "ok" } else { "bad" }) {
                            td { (r.at) } td { (r.call) } td { (r.method) } td { code { (r.url) } }
                            td { (if r.allowed { "allowed" } else { "denied" }) }
                            td { (r.grant.as_deref().or(r.reason.as_deref()).unwrap_or("–")) }
                            td { (r.status.map(|s| s.to_string()).unwrap_or_else(|| "–".to_owned())) }
                        }
                    }
                }
            }
            @if rows.is_empty() { p { "Nothing recorded." } }
        },
    )
}

pub(crate) fn sinks(session: &Session, sinks: &[SinkView]) -> Markup {
    layout(
        "Sinks",
        Some(session),
        html! {
            @if sinks.is_empty() {
                p { "No sink is configured: add a " code { "[[sinks]]" } " table to ward.toml (see the README, Sending events to a SIEM)." }
            } @else {
                table {
                    caption { "Delivery of stored events, at least once, per sink" }
                    thead { tr {
                        th scope="col" { "Sink" } th scope="col" { "Type" } th scope="col" { "Format" }
                        th scope="col" { "Target" } th scope="col" { "State" } th scope="col" { "Delivered" }
                        th scope="col" { "Lag (events)" } th scope="col" { "Lag (s)" }
                        th scope="col" { "Last success" } th scope="col" { "Last error" } th scope="col" { "Action" }
                    } }
                    tbody {
                        @for s in sinks {
                            tr {
                                td { (s.name) } td { (s.kind) } td { (s.format) } td { code { (s.target) } }
                                td { (s.state) } td { (s.delivered) } td { (s.lag_events) } td { (s.lag_seconds) }
                                td { (when(s.last_success_at)) }
                                td { @if let Some(e) = &s.last_error { span role="alert" { (e) } " (" (when(s.last_error_at)) ")" } }
                                td { @if s.state == "dead_letter" {
                                    (action(session, &format!("/console/sinks/{}/resume", s.name), "Resume"))
                                } }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub(crate) fn connectors(
    session: &Session,
    loaded: &[LoadedPlugin],
    pending: &[PendingPlugin],
) -> Markup {
    layout(
        "Connectors",
        Some(session),
        html! {
            @for p in loaded {
                @let m = p.plugin.manifest();
                section aria-label=(m.name) {
                    h2 { (m.name) " " (m.version) }
                    p { "Key " code { (m.key) } " · vendor " (m.vendor) " · signature " (p.signature.to_string())
                        " · " a href={"/console/connectors/" (m.key) "/usage"} { "Declared vs used" }
                        " · " a href={"/console/connectors/" (m.key) "/diff"} { "Versions and diff" } }
                    details {
                        summary { "Effective permissions (manifest ∩ operator policy)" }
                        pre tabindex="0" { code { (serde_json::to_string_pretty(&p.effective).unwrap_or_default()) } }
                    }
                }
            }
            @if !pending.is_empty() {
                h2 { "Held for approval" }
                ul {
                    @for p in pending {
                        li { strong { (p.key) " " (p.version) } " asks for more than approved: " (p.widenings.join("; "))
                            " (digest " code { (p.digest) } "; "
                            a href={"/console/connectors/" (p.key) "/diff?to=" (p.digest)} { "the whole difference" } "). "
                            form.inline method="post" action={"/console/connectors/" (p.key) "/approve"} {
                                (csrf(session))
                                input type="hidden" name="digest" value=(p.digest);
                                button type="submit" aria-label={"Approve " (p.key) " " (p.version)} { "Approve" }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub(crate) fn usage(session: &Session, u: &Usage) -> Markup {
    layout(
        &format!("Declared vs used: {}", u.key),
        Some(session),
        html! {
            p { "The last " (u.days) " days of the egress log (the newest 1000 requests of each instance): "
                (u.requests) " requests by " (u.instances) " instance(s), " (u.denied) " denied." }
            table {
                caption { "Effective grants and their use" }
                thead { tr {
                    th scope="col" { "Grant" } th scope="col" { "Methods allowed" } th scope="col" { "Methods used" }
                    th scope="col" { "Requests" } th scope="col" { "Paths used" }
                } }
                tbody {
                    @for g in &u.grants {
                        tr class=(if g.requests == 0 { "bad" } else { "ok" }) {
                            td { code { (g.url) } }
                            td { (g.methods.join(", ")) }
                            td { (if g.methods_used.is_empty() { "never used".to_owned() } else { g.methods_used.join(", ") }) }
                            td { (g.requests) }
                            td { (g.paths_used.join(" ")) }
                        }
                    }
                }
            }
            p { "Secrets never sent: " (if u.unused_secrets.is_empty() { "none".to_owned() } else { u.unused_secrets.join(", ") }) }
            h2 { "Narrowing policy for ward.toml" }
            pre tabindex="0" aria-label="Policy snippet" { code { (u.snippet) } }
        },
    )
}
