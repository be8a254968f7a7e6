//! "Test now": the connected user, its role, the plan's audit reporting and
//! the token's scopes.
use super::*;

/// What `GET /pubapi/v1/userinfo` returns.
#[derive(Deserialize)]
pub(crate) struct UserInfo {
    id: Value,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
}

/// The connected user's role, from `userType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Admin,
    Power,
    Standard,
    Unknown,
}

/// What the audit probe of "Test now" found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuditAccess {
    Readable,
    Throttled,
    NoPlan(String),
    RoleDenied(String),
    Unknown,
}

pub(crate) fn run(config: &Config) -> Result<TestReport> {
    let base = base(config)?;
    let mut checks = Vec::new();

    let me = get(&format!("{base}/pubapi/v1/userinfo"))?;
    if !me.is_success() {
        return Err(error_for(&me, "reading the connected user"));
    }
    let me: UserInfo = me.json()?;
    let user_id = match &me.id {
        Value::Number(n) => n.to_string(),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => return Err(Error::internal("Egnyte userinfo has no user id")),
    };
    let full_name = [me.first_name.as_deref(), me.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let principal = me
        .username
        .clone()
        .or_else(|| (!full_name.is_empty()).then(|| full_name.clone()));
    let who = principal.clone().unwrap_or_else(|| user_id.clone());
    checks.push(Check::pass(
        CREDENTIALS_VALID,
        format!("OAuth access token accepted (acts as {who})"),
    ));

    let mut missing = Vec::new();
    let user = get(&format!("{base}/pubapi/v2/users/{user_id}"))?;
    let role = if user.is_success() {
        let v: Value = user.json()?;
        match text(&v, "userType") {
            Some("admin") => Role::Admin,
            Some("power") => Role::Power,
            Some("standard") => Role::Standard,
            _ => Role::Unknown,
        }
    } else if user.status == 404 {
        // The directory does not list the token's user (e.g. a
        // service account): the audit probe decides.
        Role::Unknown
    } else if user.status == 403 && gateway(&user).is_none() {
        match denial(&detail(&user)) {
            Denial::Scope => {
                missing.push("Egnyte.user");
                Role::Unknown
            }
            // Only administrators and power users may read users.
            _ => Role::Standard,
        }
    } else {
        return Err(error_for(&user, "reading the connected user's role"));
    };

    let probe = post_json(
        &format!("{base}/pubapi/v2/audit/stream"),
        &json!({
            "startDate": start_date(now() - PROBE_WINDOW_MS),
            "auditType": ["FILE_AUDIT"],
        }),
    )?;
    let audit = if probe.is_success() {
        AuditAccess::Readable
    } else if probe.status == 429 {
        // Throttled past authorization: the plan and role are fine.
        AuditAccess::Throttled
    } else if probe.status == 403 && gateway(&probe).is_none() {
        let d = detail(&probe);
        match denial(&d) {
            Denial::Scope => {
                missing.push("Egnyte.audit");
                AuditAccess::Unknown
            }
            Denial::Plan => AuditAccess::NoPlan(d),
            Denial::Role => AuditAccess::RoleDenied(d),
            // Administrators may always run reports: a silent 403 for
            // one is the plan.
            Denial::Unknown if role == Role::Admin => AuditAccess::NoPlan(d),
            Denial::Unknown => AuditAccess::RoleDenied(d),
        }
    } else {
        return Err(error_for(&probe, "probing the Audit Reporting API"));
    };

    let needs =
        "Egnyte's audit reporting needs an administrator, or a power user allowed to run reports";
    let role_check = match (role, &audit) {
        (Role::Admin, _) => Some(Check::pass(
            ADMIN_ROLE,
            format!("{who} is an Egnyte administrator"),
        )),
        (Role::Power, AuditAccess::Readable | AuditAccess::Throttled) => Some(Check::pass(
            ADMIN_ROLE,
            format!("{who} is a power user allowed to run reports"),
        )),
        (Role::Power, AuditAccess::RoleDenied(d)) => Some(Check::fail(
            ADMIN_ROLE,
            format!(
                "{who} is a power user without permission to run reports (Egnyte said: {d}): an Egnyte administrator must allow this power user to run reports, or reconnect as an administrator; then Test now"
            ),
        )),
        (Role::Standard, _) => Some(Check::fail(
            ADMIN_ROLE,
            format!("{who} is a standard user; {needs}: reconnect as such a user"),
        )),
        (Role::Unknown, AuditAccess::Readable | AuditAccess::Throttled) => Some(Check::pass(
            ADMIN_ROLE,
            format!("{who} may run reports (the Audit Reporting API answered)"),
        )),
        (Role::Unknown, AuditAccess::RoleDenied(d)) => Some(Check::fail(
            ADMIN_ROLE,
            format!("Egnyte refused {who} audit reports ({d}); {needs}: reconnect as such a user"),
        )),
        // The plan or a scope is missing: the role cannot be judged yet.
        _ => None,
    };
    checks.extend(role_check);
    match &audit {
        AuditAccess::Readable => checks.push(Check::pass(
            PLAN_INCLUDES_AUDIT,
            "audit reporting is available (the Audit Reporting API v2 answered)",
        )),
        AuditAccess::Throttled => checks.push(Check::pass(
            PLAN_INCLUDES_AUDIT,
            "audit reporting is available (the Audit Reporting API v2 answered; rate limited right now)",
        )),
        AuditAccess::NoPlan(d) => checks.push(Check::fail(
            PLAN_INCLUDES_AUDIT,
            format!(
                "this Egnyte domain's plan does not include audit reporting (the Audit Reporting API answered 403: {d}): ask the account owner to add audit reporting to the plan, then Test now"
            ),
        )),
        AuditAccess::RoleDenied(_) | AuditAccess::Unknown => {}
    }
    if missing.is_empty() {
        checks.push(Check::pass(
            SCOPE_PRESENT,
            "token carries Egnyte.audit and Egnyte.user",
        ));
    } else {
        checks.push(Check::fail(
            SCOPE_PRESENT,
            format!(
                "the token lacks {}: allow it for the application's key at developers.egnyte.com and grant it on Egnyte's consent screen, then reconnect",
                missing.join(" and ")
            ),
        ));
    }
    Ok(TestReport {
        checks,
        account_name: config.get("domain").map(|d| format!("{d}.egnyte.com")),
        principal,
    })
}
