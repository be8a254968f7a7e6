//! The users listing (`/pubapi/v2/users`, `startIndex`/`count`).
use super::*;

pub(crate) fn parse_users_cursor(cursor: &str) -> Result<usize> {
    cursor
        .strip_prefix(USERS_PREFIX)
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            let shown: String = cursor.chars().take(48).collect();
            Error::internal(format!(
                "stored users cursor {shown:?} was not written by this connector; reset the instance's users cursor to list users from the start"
            ))
        })
}

pub(crate) fn map_user(raw: &RawValue) -> Result<User> {
    let v: Value = serde_json::from_str(raw.get())
        .map_err(|e| Error::internal(format!("Egnyte user is not valid JSON: {e}")))?;
    let id = id_text(&v, "id").ok_or_else(|| Error::internal("Egnyte user without an `id`"))?;
    let name = v.get("name").and_then(|n| {
        text(n, "formatted").map(str::to_string).or_else(|| {
            let parts: Vec<&str> = [text(n, "givenName"), text(n, "familyName")]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
    });
    let status = match (flag(&v, "active"), flag(&v, "locked")) {
        (_, Some(true)) => Some("locked"),
        (Some(false), _) => Some("inactive"),
        (Some(true), _) => Some("active"),
        (None, _) => None,
    };
    Ok(User {
        id,
        email: text(&v, "email").map(str::to_string),
        login: text(&v, "userName").map(str::to_string),
        name,
        status: status.map(str::to_string),
        is_admin: text(&v, "userType") == Some("admin"),
        created: None,
        last_login: None,
        raw: raw.get().to_string(),
    })
}

pub(crate) fn fetch(config: &Config, cursor: Option<String>) -> Result<UserPage> {
    let start = match cursor {
        Some(c) => parse_users_cursor(&c)?,
        None => 1,
    };
    let url = with_query(
        &format!("{}/pubapi/v2/users", base(config)?),
        &[
            ("startIndex", &start.to_string()),
            ("count", &USER_PAGE.to_string()),
        ],
    )?;
    let response = get(&url)?;
    if !response.is_success() {
        return Err(error_for(&response, "listing users"));
    }
    // `resources` in Egnyte's Python and JS SDKs, `Resources` in its .NET
    // fixtures: accept any case.
    let page: HashMap<String, &RawValue> = serde_json::from_slice(&response.body).map_err(|e| {
        Error::internal(format!(
            "Egnyte's users listing answered with an unexpected body: {e}"
        ))
    })?;
    let field = |name: &str| {
        page.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let raw: Vec<&RawValue> = match field("resources") {
        Some(r) if r.get() != "null" => serde_json::from_str(r.get()).map_err(|e| {
            Error::internal(format!("Egnyte's users `resources` is not a list: {e}"))
        })?,
        _ => Vec::new(),
    };
    let total = field("totalResults").and_then(|t| {
        let v: Value = serde_json::from_str(t.get()).ok()?;
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    let users = raw
        .iter()
        .map(|r| map_user(r))
        .collect::<Result<Vec<_>>>()?;
    let next = start + raw.len();
    let more = !raw.is_empty()
        && match total {
            Some(total) => (next as u64) <= total,
            None => raw.len() >= USER_PAGE,
        };
    Ok(UserPage {
        users,
        cursor: more.then(|| format!("{USERS_PREFIX}{next}")),
        more,
    })
}
