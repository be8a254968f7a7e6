//! The Audit Reporting API v2 stream: the cursor Ward stores, content-derived
//! event ids, and Egnyte's events mapped to Ward's event model.
use super::*;

/// The audit cursor Ward stores for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamCursor {
    /// No Egnyte cursor yet: (re)start the stream at this time.
    From(Timestamp),
    /// Continue at Egnyte's `nextCursor`. `newest` is the newest event time
    /// seen so far: where the stream restarts if Egnyte refuses the cursor.
    Next { newest: Timestamp, cursor: String },
}

/// Printable ASCII without spaces: base64 and base64url cursors (all Egnyte
/// sends) fit, and nothing that could break a JSON body or a log line.
pub(crate) fn cursor_text_ok(cursor: &str) -> bool {
    !cursor.is_empty()
        && cursor.len() <= MAX_CURSOR_LEN
        && cursor.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

impl StreamCursor {
    pub(crate) fn encode(&self) -> String {
        match self {
            StreamCursor::From(t) => format!("{CURSOR_PREFIX}from:{t}"),
            StreamCursor::Next { newest, cursor } => {
                format!("{CURSOR_PREFIX}next:{newest}:{cursor}")
            }
        }
    }

    pub(crate) fn parse(text: &str) -> Result<StreamCursor> {
        let bad = |why: &str| {
            let shown: String = text.chars().take(48).collect();
            Error::internal(format!(
                "stored audit cursor {shown:?} was not written by this connector ({why}); reset the instance's audit cursor so it reads the last 7 days again"
            ))
        };
        let rest = text
            .strip_prefix(CURSOR_PREFIX)
            .ok_or_else(|| bad("unknown prefix"))?;
        if let Some(t) = rest.strip_prefix("from:") {
            return t
                .parse::<Timestamp>()
                .map(StreamCursor::From)
                .map_err(|_| bad("unreadable time"));
        }
        let next = rest
            .strip_prefix("next:")
            .ok_or_else(|| bad("unknown kind"))?;
        let (newest, cursor) = next
            .split_once(':')
            .ok_or_else(|| bad("no Egnyte cursor"))?;
        let newest = newest
            .parse::<Timestamp>()
            .map_err(|_| bad("unreadable time"))?;
        if !cursor_text_ok(cursor) {
            return Err(bad(
                "the Egnyte cursor is empty, too long or has unexpected characters",
            ));
        }
        Ok(StreamCursor::Next {
            newest,
            cursor: cursor.to_string(),
        })
    }
}

/// `startDate` as Egnyte's SDK writes it: UTC to the second.
pub(crate) fn start_date(ms: Timestamp) -> String {
    format_rfc3339(ms - ms.rem_euclid(1000)).replace(".000Z", "Z")
}

/// The first call of a stream: from `from`, kept inside Egnyte's 7-day window.
pub(crate) fn stream_from(
    url: &str,
    from: Timestamp,
    now: Timestamp,
) -> Result<(Response, Timestamp)> {
    let floor = now - STREAM_WINDOW_MS + WINDOW_MARGIN_MS;
    let start = from.max(floor).min(now);
    let body = json!({ "startDate": start_date(start), "auditType": AUDIT_TYPES });
    Ok((post_json(url, &body)?, start))
}

#[derive(Deserialize)]
pub(crate) struct StreamPage<'a> {
    #[serde(rename = "nextCursor", default)]
    next_cursor: Option<String>,
    #[serde(default, borrow)]
    events: Option<Vec<&'a RawValue>>,
    #[serde(rename = "moreEvents", default)]
    more_events: bool,
}

/// A stable id for an event without one: SHA-256 over its canonical JSON.
pub(crate) fn event_id(value: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    let mut id = String::with_capacity(35);
    id.push_str("eg-");
    for b in digest.iter().take(16) {
        let _ = write!(id, "{b:02x}");
    }
    id
}

/// Keys sorted at every level, no whitespace, strings and numbers as
/// serde_json writes them: the same event always gives the same text,
/// whatever key order or spacing Egnyte used.
pub(crate) fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A non-empty string field; Egnyte writes `"N/A"` for an absent path.
pub(crate) fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "N/A")
}

/// An id that Egnyte sends as a number in one place and a string in another.
pub(crate) fn id_text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A boolean Egnyte sends as `true` or as `"true"`.
pub(crate) fn flag(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Splits Egnyte's `"Jack Smith ( jsmith@company.com )"` into name and
/// e-mail; a bare e-mail or name is kept as it is.
pub(crate) fn split_person(text: &str) -> (Option<String>, Option<String>) {
    let text = text.trim();
    if let Some(inner) = text.strip_suffix(')')
        && let Some(open) = inner.rfind('(')
    {
        let name = inner[..open].trim();
        let email = inner[open + 1..].trim();
        if email.contains('@') {
            return (
                (!name.is_empty()).then(|| name.to_string()),
                Some(email.to_string()),
            );
        }
    }
    if text.contains('@') && !text.contains(' ') {
        return (None, Some(text.to_string()));
    }
    ((!text.is_empty()).then(|| text.to_string()), None)
}

pub(crate) fn path_target(path: &str, action: &str) -> Target {
    let folder = action.to_ascii_lowercase().contains("folder") || path.ends_with('/');
    Target {
        id: None,
        kind: Some(if folder { "folder" } else { "file" }.to_string()),
        name: Some(path.to_string()),
    }
}

pub(crate) fn person_target(text: &str, kind: &str) -> Target {
    let (name, email) = split_person(text);
    Target {
        id: email.clone(),
        kind: Some(kind.to_string()),
        name: name.or(email),
    }
}

pub(crate) fn map_event(value: &Value, raw: &str, id: String) -> Result<Event> {
    // Epoch milliseconds, as in Egnyte's example; a quoted number or an ISO
    // date is accepted too rather than losing the event.
    let time = match value.get("date") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| parse_rfc3339(s.trim()).ok()),
        _ => None,
    }
    .ok_or_else(|| {
        Error::internal("Egnyte audit event has no readable `date` (epoch milliseconds)")
    })?;
    let source = text(value, "auditSource").unwrap_or("UNKNOWN_AUDIT");
    let action = text(value, "action").unwrap_or("unknown");
    let family = source
        .strip_suffix("_AUDIT")
        .unwrap_or(source)
        .to_ascii_lowercase();
    // File and login events name the user (with `userId`); user, group and
    // permission events name the `actor` who changed something.
    let (who, actor_id) = match text(value, "user") {
        Some(user) => (Some(user), id_text(value, "userId")),
        None => (text(value, "actor"), id_text(value, "actorId")),
    };
    let actor = match who {
        Some(who) => {
            let (name, email) = split_person(who);
            Actor {
                id: actor_id,
                kind: ActorKind::User,
                name,
                email,
            }
        }
        None => Actor {
            id: actor_id,
            kind: ActorKind::Unknown,
            name: None,
            email: None,
        },
    };
    let mut targets = Vec::new();
    for key in ["sourcePath", "targetPath", "folder"] {
        if let Some(path) = text(value, key) {
            targets.push(path_target(path, action));
        }
    }
    if let Some(subject) = text(value, "subject") {
        targets.push(person_target(subject, "user"));
    }
    if let Some(group) = text(value, "group") {
        targets.push(Target {
            id: None,
            kind: Some("group".to_string()),
            name: Some(group.to_string()),
        });
    }
    let info =
        format!("{action} {}", text(value, "actionInfo").unwrap_or_default()).to_ascii_lowercase();
    // An audit record says the action happened, unless it says it failed.
    let outcome = if ["fail", "denied", "invalid", "blocked"]
        .iter()
        .any(|w| info.contains(w))
    {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    Ok(Event {
        id,
        time,
        action: format!("{family}.{action}"),
        actor,
        targets,
        ip: text(value, "ipAddress").map(str::to_string),
        // Egnyte names the client channel ("Web UI", "Desktop App"), not a
        // user-agent string; it is the closest thing it reports.
        user_agent: text(value, "access")
            .or_else(|| text(value, "source"))
            .map(str::to_string),
        outcome,
        raw: raw.to_string(),
    })
}

pub(crate) fn map_events(raw: &[&RawValue]) -> Result<Vec<Event>> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    raw.iter()
        .map(|r| {
            let value: Value = serde_json::from_str(r.get()).map_err(|e| {
                Error::internal(format!("Egnyte audit event is not valid JSON: {e}"))
            })?;
            let base = event_id(&value);
            let count = seen.entry(base.clone()).or_insert(0);
            *count += 1;
            let id = if *count == 1 {
                base
            } else {
                format!("{base}-{count}")
            };
            map_event(&value, r.get(), id)
        })
        .collect()
}

pub(crate) fn fetch(
    config: &Config,
    since: Timestamp,
    cursor: Option<String>,
) -> Result<AuditPage> {
    let now = now();
    let url = format!("{}/pubapi/v2/audit/stream", base(config)?);
    let state = match cursor {
        Some(c) => StreamCursor::parse(&c)?,
        None => StreamCursor::From(since),
    };
    let (response, floor) = match &state {
        StreamCursor::From(from) => stream_from(&url, *from, now)?,
        StreamCursor::Next { newest, cursor } => {
            let response = post_json(&url, &json!({ "nextCursor": cursor }))?;
            if response.status == 400 && gateway(&response).is_none() {
                // Egnyte refused the cursor (expired after a long pause,
                // or invalidated): start again from the newest event we
                // stored. Re-read events get the same ids, so the store
                // keeps them once.
                ward_sdk::log::warn(&format!(
                    "Egnyte refused the stored stream cursor ({}); restarting from the newest stored event",
                    detail(&response)
                ));
                stream_from(&url, *newest, now)?
            } else {
                (response, *newest)
            }
        }
    };
    if !response.is_success() {
        return Err(error_for(&response, "reading the audit stream"));
    }
    let page: StreamPage<'_> = serde_json::from_slice(&response.body).map_err(|e| {
        Error::internal(format!(
            "Egnyte's audit stream answered with an unexpected body: {e}"
        ))
    })?;
    let raw = page.events.unwrap_or_default();
    let events = map_events(&raw)?;
    let newest = events.iter().map(|e| e.time).fold(floor, Timestamp::max);
    let next = match page.next_cursor {
        Some(cursor) if cursor_text_ok(&cursor) => StreamCursor::Next { newest, cursor },
        Some(_) => {
            return Err(Error::internal(
                "Egnyte's audit stream returned a nextCursor that is empty, over 4096 characters or not printable ASCII",
            ));
        }
        // No cursor to continue from: the next call restarts from the
        // newest event (overlap is deduplicated by id).
        None => StreamCursor::From(newest),
    };
    Ok(AuditPage {
        // An empty page with moreEvents=true would make the host spin.
        more: page.more_events && !events.is_empty(),
        events,
        cursor: next.encode(),
    })
}
