//! The account's generated data: users and audit log records.
//!
//! User objects follow the recorded List Users response (go-zendesk's
//! fixture): same fields, same order, same value shapes. Audit log records
//! follow the OpenAPI object and Panther's samples, whose field order (url,
//! id, action_label, actor_id, ...) looks copied from real responses, and
//! whose quirks are kept (`action: "create"` with `action_label:
//! "Updated"` on account settings). Zendesk's own changes carry
//! `actor_id: -1` and `actor_name: "Zendesk"` and no IP address.
//!
//! Every record is a pure function of `(seed, sequence number, created_at,
//! id)` and the directory, rendered the first time it is served.

use std::sync::OnceLock;

use serde::Serialize;

use crate::synth::{DAY_MS, Rng, iso_millis};

const FIRST: &[&str] = &[
    "Alma", "Bruno", "Celia", "Dmitri", "Esme", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kaia",
    "Lorenzo", "Mira", "Nils", "Odile", "Pavel", "Quinn", "Rania", "Stefan", "Thea", "Umar",
    "Vera", "Wanda", "Xavier", "Yara", "Zeno", "Anouk", "Basil", "Clara", "Dario",
];
const LAST: &[&str] = &[
    "Abara",
    "Bergstrom",
    "Castellanos",
    "Dahl",
    "Eriksen",
    "Fontaine",
    "Gallo",
    "Holm",
    "Ibarra",
    "Jovanovic",
    "Keller",
    "Laurent",
    "Moreau",
    "Nakamura",
    "Oyelaran",
    "Pires",
    "Quist",
    "Rahman",
    "Sorensen",
    "Torres",
    "Ueda",
    "Vidal",
    "Weber",
    "Yilmaz",
    "Zhou",
];
const ORGS: &[&str] = &[
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
];
const SETTINGS: &[&str] = &[
    "Require Two Factor",
    "Two-Factor authentication for all admins and agents",
    "Zendesk Support Mobile App Access",
    "Credit Card Redaction",
    "Account Assumption",
    "Allow admins to set passwords",
    "IP restrictions",
];
const RULES: &[&str] = &[
    "Trigger: Notify requester of received request",
    "Trigger: Notify assignee of assignment",
    "Automation: Close ticket 4 days after status is set to solved",
    "Automation: Request customer satisfaction rating",
    "View: Unassigned tickets",
    "Macro: Downgrade and inform",
];
const APPS: &[&str] = &["Slack", "Jira", "Salesforce", "Shopify", "Answer Bot"];
const TIME_ZONES: &[(&str, &str)] = &[
    ("Pacific Time (US & Canada)", "America/Los_Angeles"),
    ("Eastern Time (US & Canada)", "America/New_York"),
    ("London", "Europe/London"),
    ("Berlin", "Europe/Berlin"),
    ("Osaka", "Asia/Tokyo"),
    ("Sydney", "Australia/Sydney"),
];

/// Streams for [`Rng::for_item`].
mod stream {
    pub const USER: u64 = 301;
    pub const EVENT: u64 = 302;
    pub const EVENT_ID: u64 = 303;
    pub const TIE: u64 = 304;
}

/// `2021-05-28T18:39:50Z`: Zendesk timestamps have whole seconds.
pub(crate) fn iso_secs(secs: i64) -> String {
    let text = iso_millis(secs.saturating_mul(1000));
    match text.strip_suffix(".000Z") {
        Some(t) => format!("{t}Z"),
        None => text,
    }
}

/// One user of the account.
#[derive(Debug)]
pub(crate) struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub created_s: i64,
    pub last_login_s: Option<i64>,
    pub suspended: bool,
    pub organization_id: Option<u64>,
    pub two_factor: bool,
    pub time_zone: usize,
    pub ip: String,
}

#[derive(Serialize)]
struct UserJson<'a> {
    id: Option<u64>,
    url: Option<String>,
    name: &'a str,
    email: &'a str,
    created_at: Option<String>,
    updated_at: Option<String>,
    time_zone: &'a str,
    iana_time_zone: &'a str,
    phone: Option<&'a str>,
    shared_phone_number: Option<bool>,
    photo: Option<()>,
    locale_id: u32,
    locale: &'a str,
    organization_id: Option<u64>,
    role: &'a str,
    verified: bool,
    external_id: Option<&'a str>,
    tags: [&'a str; 0],
    alias: Option<&'a str>,
    active: bool,
    shared: bool,
    shared_agent: bool,
    last_login_at: Option<String>,
    two_factor_auth_enabled: Option<bool>,
    signature: Option<&'a str>,
    details: Option<&'a str>,
    notes: Option<&'a str>,
    role_type: Option<u32>,
    custom_role_id: Option<u64>,
    moderator: bool,
    ticket_restriction: Option<&'a str>,
    only_private_comments: bool,
    restricted_agent: bool,
    suspended: bool,
    chat_only: bool,
    default_group_id: Option<u64>,
    report_csv: bool,
    user_fields: serde_json::Map<String, serde_json::Value>,
}

/// The account's users and names.
#[derive(Debug)]
pub(crate) struct Directory {
    pub host: String,
    pub account_name: String,
    /// Sorted by id; index 0 is the credentials' owner.
    pub users: Vec<User>,
    /// Indices of users who change settings (admins), and of staff (admins
    /// and agents).
    admins: Vec<usize>,
    staff: Vec<usize>,
    pub account_id: u64,
    pub brand_id: u64,
    pub start_s: i64,
}

impl Directory {
    pub(crate) fn generate(
        subdomain: &str,
        account_name: &str,
        owner_email: &str,
        seed: u64,
        count: usize,
        start_ms: i64,
    ) -> Directory {
        let host = format!("{subdomain}.zendesk.com");
        let start_s = start_ms / 1000;
        let mut users = Vec::with_capacity(count.max(1));
        let mut id = 360_000_000_000 + Rng::for_item(seed, stream::USER, u64::MAX).below(1 << 30);
        for i in 0..count.max(1) {
            let mut rng = Rng::for_item(seed, stream::USER, i as u64);
            id += 1_000 + rng.below(9_000);
            let first = *rng.pick(FIRST);
            let last = *rng.pick(LAST);
            let role = if i == 0 {
                "admin"
            } else {
                match rng.below(100) {
                    0..=5 => "admin",
                    6..=29 => "agent",
                    _ => "end-user",
                }
            };
            let email = if i == 0 {
                owner_email.to_owned()
            } else if role == "end-user" {
                format!(
                    "{}.{}{}@{}.example",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    i,
                    rng.pick(ORGS).to_lowercase()
                )
            } else {
                format!(
                    "{}.{}{}@{subdomain}.example",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    i
                )
            };
            let created_s = start_s - (400 + rng.below(900) as i64) * DAY_MS / 1000;
            let last_login_s = if role == "end-user" && rng.chance(40) {
                None
            } else {
                Some(start_s - rng.below(30 * 86_400) as i64)
            };
            users.push(User {
                id,
                name: format!("{first} {last}"),
                email,
                role,
                created_s,
                last_login_s,
                suspended: i != 0 && rng.chance(3),
                organization_id: (role == "end-user" && rng.chance(60))
                    .then(|| 360_090_000_000 + rng.below(6) * 1_117),
                two_factor: role != "end-user" && rng.chance(70),
                time_zone: rng.index(TIME_ZONES.len()),
                ip: format!(
                    "{}.{}.{}.{}",
                    [203u64, 198, 192, 100][rng.index(4)],
                    rng.below(256),
                    rng.below(256),
                    1 + rng.below(254)
                ),
            });
        }
        let admins = (0..users.len())
            .filter(|&i| users[i].role == "admin")
            .collect();
        let staff = (0..users.len())
            .filter(|&i| users[i].role != "end-user")
            .collect();
        let mut rng = Rng::for_item(seed, stream::USER, u64::MAX - 1);
        Directory {
            host,
            account_name: account_name.to_owned(),
            users,
            admins,
            staff,
            account_id: 9_000_000 + rng.below(1_000_000),
            brand_id: 360_000_100_000 + rng.below(100_000),
            start_s,
        }
    }

    /// The user the credentials belong to.
    pub(crate) fn owner(&self) -> &User {
        &self.users[0]
    }

    pub(crate) fn find(&self, id: u64) -> Option<&User> {
        self.users
            .binary_search_by_key(&id, |u| u.id)
            .ok()
            .map(|i| &self.users[i])
    }

    /// A user as List/Show Users return it; `role` overrides the stored one
    /// (the owner's role is switchable).
    pub(crate) fn user_json(&self, u: &User, role: &str) -> String {
        let staff = role != "end-user";
        let (tz, iana) = TIME_ZONES[u.time_zone];
        let json = UserJson {
            id: Some(u.id),
            url: Some(format!("https://{}/api/v2/users/{}.json", self.host, u.id)),
            name: &u.name,
            email: &u.email,
            created_at: Some(iso_secs(u.created_s)),
            updated_at: Some(iso_secs(u.last_login_s.unwrap_or(u.created_s + 1))),
            time_zone: tz,
            iana_time_zone: iana,
            phone: None,
            shared_phone_number: None,
            photo: None,
            locale_id: 1,
            locale: "en-US",
            organization_id: u.organization_id,
            role,
            verified: staff || u.last_login_s.is_some(),
            external_id: None,
            tags: [],
            alias: None,
            active: true,
            shared: false,
            shared_agent: false,
            last_login_at: u.last_login_s.map(iso_secs),
            two_factor_auth_enabled: Some(u.two_factor),
            signature: None,
            details: None,
            notes: None,
            role_type: None,
            custom_role_id: None,
            moderator: role == "admin",
            ticket_restriction: (!staff).then_some("requested"),
            only_private_comments: false,
            restricted_agent: !staff,
            suspended: u.suspended,
            chat_only: false,
            default_group_id: staff.then_some(360_002_440_594),
            report_csv: role == "admin",
            user_fields: serde_json::Map::new(),
        };
        serde_json::to_string(&json).unwrap_or_default()
    }

    /// What `/api/v2/users/me` answers when no credentials were accepted.
    pub(crate) fn anonymous_json() -> String {
        let json = UserJson {
            id: None,
            url: None,
            name: "Anonymous user",
            email: "invalid@example.com",
            created_at: None,
            updated_at: None,
            time_zone: "Pacific Time (US & Canada)",
            iana_time_zone: "America/Los_Angeles",
            phone: None,
            shared_phone_number: None,
            photo: None,
            locale_id: 1,
            locale: "en-US",
            organization_id: None,
            role: "end-user",
            verified: false,
            external_id: None,
            tags: [],
            alias: None,
            active: true,
            shared: false,
            shared_agent: false,
            last_login_at: None,
            two_factor_auth_enabled: None,
            signature: None,
            details: None,
            notes: None,
            role_type: None,
            custom_role_id: None,
            moderator: false,
            ticket_restriction: Some("requested"),
            only_private_comments: false,
            restricted_agent: true,
            suspended: false,
            chat_only: false,
            default_group_id: None,
            report_csv: false,
            user_fields: serde_json::Map::new(),
        };
        serde_json::to_string(&json).unwrap_or_default()
    }

    /// The account's one (default) brand, as List Brands returns it.
    pub(crate) fn brands_json(&self) -> String {
        let created = iso_secs(self.start_s - 1_200 * 86_400);
        serde_json::json!({
            "brands": [{
                "url": format!("https://{}/api/v2/brands/{}.json", self.host, self.brand_id),
                "id": self.brand_id,
                "name": self.account_name,
                "brand_url": format!("https://{}", self.host),
                "subdomain": self.host.trim_end_matches(".zendesk.com"),
                "host_mapping": null,
                "has_help_center": true,
                "help_center_state": "enabled",
                "active": true,
                "default": true,
                "is_deleted": false,
                "logo": null,
                "ticket_form_ids": [],
                "signature_template": "{{agent.signature}}",
                "created_at": created,
                "updated_at": created,
            }],
            "next_page": null,
            "previous_page": null,
            "count": 1,
        })
        .to_string()
    }
}

/// One audit log record as stored; the JSON is rendered on first use.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    pub created_s: i64,
    pub id: u64,
    /// Sequence number the record was generated from (its position in the
    /// log unless it was published late, see `publish_late`).
    pub seq: u64,
    pub rendered: OnceLock<Rendered>,
}

/// A rendered record and the fields the list filters look at.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub json: Box<str>,
    pub actor_id: i64,
    pub source_type: &'static str,
    pub source_id: Option<u64>,
    pub action: &'static str,
    pub ip: Option<String>,
}

#[derive(Serialize)]
struct AuditJson<'a> {
    url: String,
    id: u64,
    action_label: &'a str,
    actor_id: i64,
    actor_name: &'a str,
    source_id: Option<u64>,
    source_type: &'a str,
    source_label: &'a str,
    action: &'a str,
    change_description: &'a str,
    ip_address: Option<&'a str>,
    created_at: String,
}

/// Event ids: increasing with the sequence number, with gaps, in the
/// 14-digit range Zendesk's ids have reached.
pub(crate) fn event_id(seed: u64, seq: u64) -> u64 {
    20_000_000_000_000 + seq * 1_009 + Rng::for_item(seed, stream::EVENT_ID, seq).below(1_000)
}

/// Whether event `seq` of the initial log shares the previous one's second
/// (bulk changes write several records in one second).
pub(crate) fn ties_previous(seed: u64, seq: u64) -> bool {
    seq > 0 && Rng::for_item(seed, stream::TIE, seq).chance(8)
}

#[derive(Clone, Copy)]
enum Who {
    /// An admin of the account.
    Admin,
    /// An admin or an agent.
    Staff,
    /// Zendesk itself.
    System,
    /// The user the record is about (sign-ins).
    Subject,
}

/// Renders record `seq`.
pub(crate) fn render(dir: &Directory, seed: u64, seq: u64, created_s: i64, id: u64) -> Rendered {
    let mut rng = Rng::for_item(seed, stream::EVENT, seq);
    let user = |rng: &mut Rng| &dir.users[rng.index(dir.users.len())];
    let subject = user(&mut rng);
    let roll = rng.below(100);
    let mut who = Who::Admin;
    let mut source_id = Some(subject.id);
    let mut source_label = subject.name.clone();
    let mut change = String::new();
    let (source_type, action, action_label) = match roll {
        0..=15 => {
            let (from, to) = *rng.pick(&[
                ("End User", "Agent"),
                ("Agent", "Administrator"),
                ("Administrator", "End User"),
                ("Agent", "End User"),
                ("End User", "Administrator"),
            ]);
            change = format!("Role changed from {from} to {to}");
            if rng.chance(5) {
                change = "Explore role changed from not set to Admin\nGuide role changed from not set to Admin\nSupport role changed from not set to Admin\nTalk role changed from not set to Admin".to_owned();
            }
            ("user", "update", "Updated")
        }
        16..=27 => {
            who = Who::Staff;
            change = if rng.chance(50) {
                format!("Organization: {} is assigned", rng.pick(ORGS))
            } else {
                format!("Name changed from {} to {}", rng.pick(FIRST), subject.name)
            };
            ("user", "update", "Updated")
        }
        28..=36 => {
            who = Who::Staff;
            ("user", "create", "Created")
        }
        37..=38 => ("user", "destroy", "Deleted"),
        39..=43 => {
            source_label = format!("Suspension state: {}", subject.name);
            if rng.chance(60) {
                change = "Suspended".to_owned();
                ("user_setting", "create", "Updated")
            } else {
                change = "Unsuspended".to_owned();
                ("user_setting", "update", "Updated")
            }
        }
        44..=55 => {
            if rng.chance(20) {
                who = Who::System;
            }
            source_id = Some(dir.account_id);
            source_label = (*rng.pick(SETTINGS)).to_owned();
            change = (*rng.pick(&["Enabled", "Disabled", "Changed"])).to_owned();
            let action = if rng.chance(30) { "create" } else { "update" };
            ("account_setting", action, "Updated")
        }
        56..=59 => {
            source_id = Some(360_000_000_000 + rng.below(1 << 30));
            match rng.below(6) {
                0..=2 => {
                    source_label = "API token".to_owned();
                    ("api_token", "create", "Created")
                }
                3..=4 => {
                    let desc = *rng.pick(&["SIEM export", "backup job", "a new description"]);
                    source_label = format!("API token: {desc}");
                    change = format!("description changed from not set to {desc}");
                    ("api_token", "update", "Updated")
                }
                _ => {
                    source_label = "API token".to_owned();
                    ("api_token", "destroy", "Deleted")
                }
            }
        }
        60..=71 => {
            source_id = Some(360_001_000_000 + rng.below(1 << 24));
            source_label = (*rng.pick(RULES)).to_owned();
            match rng.below(3) {
                0 => ("rule", "create", "Created"),
                1 => {
                    if rng.chance(30) {
                        who = Who::System;
                        change = "Active changed from true to false".to_owned();
                    } else {
                        change = "Title changed from Untitled to ".to_owned()
                            + source_label.split(": ").nth(1).unwrap_or("rule");
                    }
                    ("rule", "update", "Updated")
                }
                _ => ("rule", "destroy", "Deleted"),
            }
        }
        72 => {
            source_id = Some(dir.account_id);
            source_label = "Account: Account".to_owned();
            change = format!(
                "Owner changed from {} to {}",
                user(&mut rng).name,
                dir.owner().name
            );
            ("account", "update", "Updated")
        }
        73..=74 => {
            source_id = Some(dir.account_id);
            source_label = "Account: Account".to_owned();
            change = "Ticket export (JSON) requested".to_owned();
            ("account", "exported", "Exported")
        }
        75..=88 => {
            who = Who::Subject;
            ("user", "login", "Logged in")
        }
        89..=92 => {
            source_id = Some(360_002_000_000 + rng.below(1 << 20));
            source_label = format!("App: {}", rng.pick(APPS));
            if rng.chance(70) {
                ("zendesk/app_market/app", "create", "Created")
            } else {
                ("zendesk/app_market/app", "destroy", "Deleted")
            }
        }
        _ => {
            source_id = Some(1_000 + rng.below(90_000));
            source_label = format!(
                "Ticket #{}: {}",
                source_id.unwrap_or(0),
                rng.pick(&["Refund request", "Login problem", "Invoice copy"])
            );
            who = Who::Staff;
            ("ticket", "destroy", "Deleted")
        }
    };
    let pool = match who {
        Who::Admin => &dir.admins,
        _ => &dir.staff,
    };
    let actor = match who {
        Who::System => None,
        Who::Subject => Some(subject),
        Who::Admin | Who::Staff if pool.is_empty() => Some(dir.owner()),
        Who::Admin | Who::Staff => Some(&dir.users[pool[rng.index(pool.len())]]),
    };
    let other_ip;
    let ip = match actor {
        None => None,
        Some(a) if rng.chance(90) => Some(a.ip.as_str()),
        Some(_) => {
            other_ip = format!("198.51.100.{}", 1 + rng.below(254));
            Some(other_ip.as_str())
        }
    };
    let (actor_id, actor_name) = match actor {
        Some(a) => (a.id as i64, a.name.as_str()),
        None => (-1, "Zendesk"),
    };
    let json = AuditJson {
        url: format!("https://{}/api/v2/audit_logs/{id}.json", dir.host),
        id,
        action_label,
        actor_id,
        actor_name,
        source_id,
        source_type,
        source_label: &source_label,
        action,
        change_description: &change,
        ip_address: ip,
        created_at: iso_secs(created_s),
    };
    Rendered {
        json: serde_json::to_string(&json)
            .unwrap_or_default()
            .into_boxed_str(),
        actor_id,
        source_type,
        source_id,
        action,
        ip: ip.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_records_render() {
        let dir = Directory::generate(
            "acme",
            "Acme",
            "owner@acme.example",
            3,
            40,
            1_700_000_000_000,
        );
        assert!(dir.users.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(dir.owner().role, "admin");
        assert_eq!(
            dir.find(dir.users[7].id).map(|u| u.id),
            Some(dir.users[7].id)
        );
        assert!((0..1000).all(|s| event_id(3, s) < event_id(3, s + 1)));
        let r = render(&dir, 3, 5, 1_700_000_000, event_id(3, 5));
        let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
        assert_eq!(v["created_at"], "2023-11-14T22:13:20Z");
        assert_eq!(v["id"], event_id(3, 5));
        let kinds: std::collections::BTreeSet<&str> = (0..2000)
            .map(|s| render(&dir, 3, s, 1_700_000_000, event_id(3, s)).source_type)
            .collect();
        assert!(kinds.len() >= 8, "{kinds:?}");
        assert!((0..2000).any(|s| render(&dir, 3, s, 0, 1).actor_id == -1));
        let user: serde_json::Value =
            serde_json::from_str(&dir.user_json(dir.owner(), "agent")).unwrap();
        assert_eq!(user["role"], "agent");
        assert_eq!(user["email"], "owner@acme.example");
    }
}
