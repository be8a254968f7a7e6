//! Reading `/api/v2/audit_logs` without losing or repeating events.
//!
//! Zendesk's audit log has no polling mode: a listing is bounded by
//! `filter[created_at][]` (start, end), sorted by `created_at` ascending and
//! paged with opaque cursors (`meta.has_more`, `meta.after_cursor`,
//! `links.next`) whose query keeps the end fixed. So reading is done in
//! *windows*: the first call of a window asks for [start, now], the next
//! calls follow `links.next` until `has_more` is false, and the following
//! poll opens a new window.
//!
//! A new window starts at the `created_at` of the newest event already
//! delivered, not one second later: `created_at` has one-second resolution
//! and events of that second may still be written after the window closed.
//! The ids delivered at that second travel in the cursor and are skipped, so
//! the overlap costs one second of events, not a re-read. (The host also
//! drops duplicate ids; this keeps it from having to.) A window that finds
//! nothing leaves the start where it was.
//!
//! Zendesk also makes some records visible *late*: a record can appear
//! after a poll already read past its `created_at` (the audit log has no
//! persistence-order mode). So every new window re-reads a lookback period
//! before `from` (config `lookback_minutes`, default 5, 0 turns it off,
//! never before the backfill start): the late record is delivered then,
//! while the records read before are delivered again and dropped by the
//! host's unique key (the id set above only covers `from`'s second, so
//! it never hides a late record).
//!
//! The cursor is this connector's JSON, stored by the host and handed back
//! verbatim. It names the subdomain it belongs to and holds only links to
//! that account's audit log endpoint; anything else is refused.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use ward_sdk::http::with_query;
use ward_sdk::time::{format_rfc3339, now, parse_rfc3339};
use ward_sdk::{
    Actor, ActorKind, AuditPage, Config, Error, Event, Outcome, Result, Target, Timestamp,
};

use crate::api::{self, body, error_for, get, is_own_link, origin, subdomain};

/// Zendesk's largest audit log page.
pub(crate) const PAGE_SIZE: &str = "100";
/// Bound on the ids remembered for the newest second. Past it (a bulk
/// change writing thousands of records in one second) the next window
/// re-delivers the rest of that second and the host's unique key drops them.
const MAX_SEEN: usize = 1000;
/// Minutes re-read before the newest record on each poll, unless the
/// instance sets `lookback_minutes`.
pub(crate) const DEFAULT_LOOKBACK_MINUTES: i64 = 5;
const VERSION: u8 = 1;

/// Where reading continues (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditCursor {
    /// Format version.
    v: u8,
    /// The account the cursor belongs to.
    subdomain: String,
    /// Start of the next window (`2024-01-02T03:04:05Z`): the `created_at`
    /// of the newest event delivered, or the backfill start.
    from: String,
    /// The backfill start: no window opens before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    floor: Option<String>,
    /// Ids of delivered events created at `from`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    seen: Vec<u64>,
    /// Inside a window: Zendesk's `links.next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    /// The account's display name, shown for Zendesk's own (system) actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<String>,
}

/// Unix seconds as Zendesk writes them: `2024-01-02T03:04:05Z`.
pub(crate) fn iso_secs(secs: i64) -> String {
    let text = format_rfc3339(secs.saturating_mul(1000));
    match text.strip_suffix(".000Z") {
        Some(t) => format!("{t}Z"),
        None => text,
    }
}

fn secs_of(text: &str) -> Result<i64> {
    Ok(parse_rfc3339(text)?.div_euclid(1000))
}

fn bad_cursor(why: impl std::fmt::Display) -> Error {
    Error::internal(format!(
        "the stored audit cursor is not one this Zendesk connector wrote ({why}); reset the instance's audit cursor to read again from the backfill window"
    ))
}

impl AuditCursor {
    fn start(config: &Config, since: Timestamp) -> Result<AuditCursor> {
        Ok(AuditCursor {
            v: VERSION,
            subdomain: subdomain(config)?.to_string(),
            from: iso_secs(since.div_euclid(1000)),
            floor: Some(iso_secs(since.div_euclid(1000))),
            seen: Vec::new(),
            next: None,
            account: None,
        })
    }

    /// Reads and checks a stored cursor.
    pub(crate) fn parse(config: &Config, text: &str) -> Result<AuditCursor> {
        let cursor: AuditCursor = serde_json::from_str(text).map_err(bad_cursor)?;
        if cursor.v != VERSION {
            return Err(bad_cursor(format!("format version {}", cursor.v)));
        }
        let expected = subdomain(config)?;
        if cursor.subdomain != expected {
            return Err(Error::invalid_config(format!(
                "the stored audit cursor belongs to {}.zendesk.com, but this instance reads {expected}.zendesk.com: create a new instance for the other account, or reset this instance's audit cursor",
                cursor.subdomain
            )));
        }
        secs_of(&cursor.from).map_err(|_| bad_cursor(format!("start {:?}", cursor.from)))?;
        if let Some(floor) = &cursor.floor {
            secs_of(floor).map_err(|_| bad_cursor(format!("floor {floor:?}")))?;
        }
        if let Some(next) = &cursor.next
            && !is_own_link(config, next, "audit_logs")?
        {
            return Err(bad_cursor("its next link is not this account's audit log"));
        }
        Ok(cursor)
    }

    fn encode(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| Error::internal(format!("cannot encode the audit cursor: {e}")))
    }

    /// Notes a delivered (or skipped) event so the next window can start at
    /// its second.
    fn advance(&mut self, created: i64, id: u64) -> Result<()> {
        let from = secs_of(&self.from)?;
        if created > from {
            self.from = iso_secs(created);
            self.seen = vec![id];
        } else if created == from && !self.seen.contains(&id) && self.seen.len() < MAX_SEEN {
            self.seen.push(id);
        }
        Ok(())
    }

    fn already_delivered(&self, created: i64, id: u64) -> Result<bool> {
        Ok(created == secs_of(&self.from)? && self.seen.contains(&id))
    }

    /// Where the next window opens: `lookback_secs` before `from`, not
    /// before the backfill start.
    fn window_start(&self, lookback_secs: i64) -> Result<i64> {
        let start = secs_of(&self.from)?.saturating_sub(lookback_secs.max(0));
        Ok(match &self.floor {
            Some(floor) => start.max(secs_of(floor)?),
            None => start,
        })
    }
}

/// The instance's lookback (`lookback_minutes`) in seconds.
pub(crate) fn lookback_secs(config: &Config) -> Result<i64> {
    let minutes = match config.get("lookback_minutes") {
        None | Some("") => DEFAULT_LOOKBACK_MINUTES,
        Some(text) => text.parse::<i64>().map_err(|_| {
            Error::invalid_config(format!(
                "lookback_minutes must be a whole number of minutes, got {text:?}"
            ))
        })?,
    };
    Ok(minutes.saturating_mul(60))
}

/// The request opening a window [from, until].
fn window_url(config: &Config, from: i64, until: i64) -> Result<String> {
    with_query(
        &format!("{}/api/v2/audit_logs", origin(config)?),
        &[
            ("filter[created_at][]", &iso_secs(from)),
            ("filter[created_at][]", &iso_secs(until.max(from))),
            ("sort", "created_at"),
            ("page[size]", PAGE_SIZE),
        ],
    )
}

#[derive(Deserialize)]
struct Listing {
    audit_logs: Vec<Box<RawValue>>,
    #[serde(default)]
    meta: Option<Meta>,
    #[serde(default)]
    links: Option<Links>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Meta {
    pub has_more: bool,
    pub after_cursor: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Links {
    pub next: Option<String>,
}

/// Where the listing continues when `has_more` is true: `links.next`, or
/// the request with `page[after]` set when Zendesk left the link out.
pub(crate) fn next_link(
    config: &Config,
    current: &str,
    meta: &Meta,
    links: Option<&Links>,
    resource: &str,
) -> Result<String> {
    if let Some(next) = links.and_then(|l| l.next.as_deref()) {
        if is_own_link(config, next, resource)? {
            return Ok(next.to_string());
        }
        return Err(Error::internal(format!(
            "Zendesk's next link for {resource} points elsewhere ({next}); refusing to follow it"
        )));
    }
    let Some(after) = meta.after_cursor.as_deref() else {
        return Err(Error::internal(format!(
            "Zendesk said {resource} has more pages but gave neither links.next nor meta.after_cursor"
        )));
    };
    let mut url = ward_sdk::Url::parse(current)
        .map_err(|e| Error::internal(format!("cannot rebuild the {resource} link: {e}")))?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "page[after]" && k != "page[before]")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("page[after]", after);
    Ok(url.to_string())
}

#[derive(Deserialize)]
struct AuditLog {
    id: u64,
    created_at: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    actor_id: Option<i64>,
    #[serde(default)]
    actor_name: Option<String>,
    #[serde(default)]
    source_id: Option<Value>,
    #[serde(default)]
    source_type: Option<String>,
    #[serde(default)]
    source_label: Option<String>,
    #[serde(default)]
    ip_address: Option<String>,
}

fn scalar(value: Option<Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One audit log record as a contract event. `account` names the actor of
/// Zendesk's own changes, which carry no user (`actor_id` -1 or absent).
pub(crate) fn map_event(raw: &RawValue, account: &str) -> Result<(Event, i64, u64)> {
    let log: AuditLog = serde_json::from_str(raw.get()).map_err(|e| {
        Error::internal(format!(
            "a Zendesk audit log record has an unexpected shape ({e}): {}",
            raw.get().chars().take(200).collect::<String>()
        ))
    })?;
    let time = parse_rfc3339(&log.created_at)?;
    let action = log.action.clone().unwrap_or_else(|| "unknown".to_string());
    let outcome = match action.as_str() {
        // The audit log records changes that were made.
        "create" | "update" | "destroy" | "exported" | "login" => Outcome::Success,
        _ => Outcome::Unknown,
    };
    let actor = match log.actor_id {
        Some(id) if id > 0 => Actor {
            id: Some(id.to_string()),
            kind: ActorKind::User,
            name: log.actor_name.clone(),
            email: None,
        },
        system => Actor {
            id: system.map(|id| id.to_string()),
            kind: ActorKind::System,
            name: Some(account.to_string()),
            email: None,
        },
    };
    let source_id = scalar(log.source_id);
    let targets = if source_id.is_some() || log.source_type.is_some() || log.source_label.is_some()
    {
        vec![Target {
            id: source_id,
            kind: log.source_type.clone(),
            name: log.source_label,
        }]
    } else {
        Vec::new()
    };
    let event = Event {
        id: log.id.to_string(),
        time,
        action: match &log.source_type {
            Some(t) => format!("{t}.{action}"),
            None => action,
        },
        actor,
        targets,
        ip: log.ip_address.filter(|ip| !ip.is_empty()),
        user_agent: None,
        outcome,
        raw: raw.get().to_string(),
    };
    Ok((event, time.div_euclid(1000), log.id))
}

/// The account's display name: the default brand's name when readable,
/// else the subdomain. OAuth tokens never can read it: brands need the
/// global `read` scope, which this connector does not ask for. Throttling,
/// outages and rejected credentials are errors like on any other request,
/// so the host waits or retries.
pub(crate) fn account_name(config: &Config) -> Result<String> {
    if api::oauth_mode(config) {
        return Ok(subdomain(config)?.to_string());
    }
    let response = get(config, &format!("{}/api/v2/brands", origin(config)?))?;
    match response.status {
        200..=299 => {}
        401 | 429 | 500..=599 => {
            return Err(error_for(config, &response, "reading the account's name"));
        }
        _ => return Ok(subdomain(config)?.to_string()),
    }
    #[derive(Deserialize)]
    struct Brands {
        brands: Vec<Brand>,
    }
    #[derive(Deserialize)]
    struct Brand {
        name: String,
        #[serde(default)]
        default: bool,
    }
    let name = serde_json::from_slice::<Brands>(&response.body)
        .ok()
        .and_then(|b| {
            let default = b.brands.iter().position(|b| b.default).unwrap_or(0);
            b.brands.into_iter().nth(default).map(|b| b.name)
        })
        .filter(|n| !n.trim().is_empty());
    match name {
        Some(n) => Ok(n),
        None => Ok(subdomain(config)?.to_string()),
    }
}

/// `fetch-audit`: one page of the current window, or the first page of a
/// new one.
pub(crate) fn fetch(
    config: &Config,
    since: Timestamp,
    cursor: Option<String>,
) -> Result<AuditPage> {
    let mut cursor = match cursor {
        Some(text) => AuditCursor::parse(config, &text)?,
        None => AuditCursor::start(config, since)?,
    };
    if cursor.account.is_none() {
        cursor.account = Some(account_name(config)?);
    }
    let lookback = lookback_secs(config)?;
    let open_window = |c: &AuditCursor| -> Result<String> {
        window_url(config, c.window_start(lookback)?, now().div_euclid(1000))
    };
    let mut url = match &cursor.next {
        Some(next) => next.clone(),
        None => open_window(&cursor)?,
    };
    let mut response = get(config, &url)?;
    if matches!(response.status, 400 | 422) && cursor.next.is_some() {
        // Zendesk no longer accepts the window's page cursor (expired after
        // a long outage, say). Everything up to `from` was committed, so a
        // new window from there loses nothing.
        ward_sdk::log::warn(&format!(
            "Zendesk refused the stored page link ({}): reopening the window at {}",
            api::detail(&response),
            cursor.from
        ));
        url = open_window(&cursor)?;
        response = get(config, &url)?;
    }
    if !response.is_success() {
        return Err(error_for(config, &response, "reading the audit log"));
    }
    let listing: Listing = body(&response, "the audit log listing")?;
    let account = cursor
        .account
        .clone()
        .unwrap_or_else(|| config.get("subdomain").unwrap_or("Zendesk").to_string());
    let mut events = Vec::with_capacity(listing.audit_logs.len());
    for raw in &listing.audit_logs {
        let (event, created, id) = map_event(raw, &account)?;
        if !cursor.already_delivered(created, id)? {
            events.push(event);
        }
        cursor.advance(created, id)?;
    }
    let meta = listing.meta.unwrap_or_default();
    cursor.next = if meta.has_more {
        Some(next_link(
            config,
            &url,
            &meta,
            listing.links.as_ref(),
            "audit_logs",
        )?)
    } else {
        None
    };
    Ok(AuditPage {
        more: cursor.next.is_some(),
        cursor: cursor.encode()?,
        events,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> Config {
        Config::from_pairs([("subdomain", "acme")])
    }

    // The OAS example record.
    const RECORD: &str = r#"{"action":"update","action_label":"Updated","actor_id":1234,"actor_name":"Sameer Patel","change_description":"Role changed from Administrator to End User","created_at":"2012-03-05T11:32:44Z","id":498483,"ip_address":"209.119.38.228","source_id":3456,"source_label":"John Doe","source_type":"user","url":"https://company.zendesk.com/api/v2/audit_logs/498483.json"}"#;

    #[test]
    fn maps_the_documented_record() {
        let raw: Box<RawValue> = serde_json::from_str(RECORD).unwrap();
        let (e, created, id) = map_event(&raw, "Acme").unwrap();
        assert_eq!((e.id.as_str(), id), ("498483", 498_483));
        assert_eq!(created, 1_330_947_164);
        assert_eq!(e.time, 1_330_947_164_000);
        assert_eq!(e.action, "user.update");
        assert!(matches!(e.actor.kind, ActorKind::User));
        assert_eq!(e.actor.id.as_deref(), Some("1234"));
        assert_eq!(e.actor.name.as_deref(), Some("Sameer Patel"));
        assert_eq!(e.targets[0].id.as_deref(), Some("3456"));
        assert_eq!(e.targets[0].kind.as_deref(), Some("user"));
        assert_eq!(e.targets[0].name.as_deref(), Some("John Doe"));
        assert_eq!(e.ip.as_deref(), Some("209.119.38.228"));
        assert!(matches!(e.outcome, Outcome::Success));
        assert_eq!(e.raw, RECORD);
    }

    #[test]
    fn system_actor_takes_the_account_name() {
        let raw: Box<RawValue> = serde_json::from_str(
            r#"{"id":7,"created_at":"2024-01-01T00:00:00Z","action":"update","actor_id":-1,"actor_name":"Zendesk","source_type":"account_setting","source_label":"Require Two Factor","source_id":null,"ip_address":null}"#,
        )
        .unwrap();
        let (e, _, _) = map_event(&raw, "Acme Support").unwrap();
        assert!(matches!(e.actor.kind, ActorKind::System));
        assert_eq!(e.actor.name.as_deref(), Some("Acme Support"));
        assert_eq!(e.actor.id.as_deref(), Some("-1"));
        assert_eq!(e.ip, None);
        assert_eq!(e.targets[0].id, None);
        let bad: Box<RawValue> = serde_json::from_str(r#"{"id":"x"}"#).unwrap();
        assert!(matches!(map_event(&bad, "A"), Err(Error::Internal(_))));
    }

    #[test]
    fn windows_restart_at_the_newest_second_and_skip_what_was_seen() {
        let mut c = AuditCursor::start(&config(), 1_700_000_000_500).unwrap();
        assert_eq!(c.from, "2023-11-14T22:13:20Z");
        c.advance(1_700_000_005, 10).unwrap();
        c.advance(1_700_000_005, 11).unwrap();
        c.advance(1_700_000_004, 9).unwrap();
        assert_eq!(c.from, "2023-11-14T22:13:25Z");
        assert_eq!(c.seen, vec![10, 11]);
        assert!(c.already_delivered(1_700_000_005, 10).unwrap());
        assert!(!c.already_delivered(1_700_000_005, 12).unwrap());
        assert!(!c.already_delivered(1_700_000_006, 10).unwrap());
        c.advance(1_700_000_006, 12).unwrap();
        assert_eq!(c.seen, vec![12]);
        let url = window_url(&config(), 1_700_000_006, 1_700_000_100).unwrap();
        assert_eq!(
            url,
            "https://acme.zendesk.com/api/v2/audit_logs?filter%5Bcreated_at%5D%5B%5D=2023-11-14T22%3A13%3A26Z&filter%5Bcreated_at%5D%5B%5D=2023-11-14T22%3A15%3A00Z&sort=created_at&page%5Bsize%5D=100"
        );
    }

    #[test]
    fn windows_reopen_a_lookback_before_the_newest_second_but_not_before_the_floor() {
        let mut c = AuditCursor::start(&config(), 1_700_000_000_000).unwrap();
        // Nothing read yet: the window opens at the backfill start.
        assert_eq!(c.window_start(300).unwrap(), 1_700_000_000);
        c.advance(1_700_001_000, 10).unwrap();
        assert_eq!(c.window_start(300).unwrap(), 1_700_000_700);
        assert_eq!(c.window_start(0).unwrap(), 1_700_001_000);
        // A record published late, created before `from`, is neither
        // skipped nor does it move the window back.
        assert!(!c.already_delivered(1_700_000_900, 11).unwrap());
        c.advance(1_700_000_900, 11).unwrap();
        assert_eq!(c.from, iso_secs(1_700_001_000));
        assert_eq!(c.seen, vec![10]);
        assert_eq!(lookback_secs(&config()).unwrap(), 300);
        let set = Config::from_pairs([("subdomain", "acme"), ("lookback_minutes", "15")]);
        assert_eq!(lookback_secs(&set).unwrap(), 900);
    }

    #[test]
    fn cursors_round_trip_and_are_checked() {
        let mut c = AuditCursor::start(&config(), 0).unwrap();
        c.next = Some("https://acme.zendesk.com/api/v2/audit_logs?page%5Bafter%5D=abc".into());
        c.account = Some("Acme".into());
        let text = c.encode().unwrap();
        assert_eq!(AuditCursor::parse(&config(), &text).unwrap(), c);

        let other = Config::from_pairs([("subdomain", "other")]);
        assert!(matches!(
            AuditCursor::parse(&other, &text),
            Err(Error::InvalidConfig(m)) if m.contains("acme.zendesk.com")
        ));
        for bad in [
            "",
            "https://acme.zendesk.com/api/v2/audit_logs?page[after]=x",
            "{\"v\":1}",
            r#"{"v":2,"subdomain":"acme","from":"2024-01-01T00:00:00Z"}"#,
            r#"{"v":1,"subdomain":"acme","from":"yesterday"}"#,
            r#"{"v":1,"subdomain":"acme","from":"2024-01-01T00:00:00Z","next":"https://evil.example/api/v2/audit_logs"}"#,
            r#"{"v":1,"subdomain":"acme","from":"2024-01-01T00:00:00Z","extra":1}"#,
        ] {
            assert!(
                matches!(AuditCursor::parse(&config(), bad), Err(Error::Internal(m)) if m.contains("reset")),
                "{bad}"
            );
        }
    }

    #[test]
    fn next_link_falls_back_to_after_cursor() {
        let current = "https://acme.zendesk.com/api/v2/audit_logs?sort=created_at&page%5Bsize%5D=100&page%5Bafter%5D=old";
        let meta = Meta {
            has_more: true,
            after_cursor: Some("new=".into()),
        };
        let url = next_link(&config(), current, &meta, None, "audit_logs").unwrap();
        assert_eq!(
            url,
            "https://acme.zendesk.com/api/v2/audit_logs?sort=created_at&page%5Bsize%5D=100&page%5Bafter%5D=new%3D"
        );
        let links = Links {
            next: Some("https://evil.example/api/v2/audit_logs".into()),
        };
        assert!(next_link(&config(), current, &meta, Some(&links), "audit_logs").is_err());
        let none = Meta::default();
        assert!(next_link(&config(), current, &none, None, "audit_logs").is_err());
    }
}
