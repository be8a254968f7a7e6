//! The domain's directory and its audit events, generated from the seed.
//!
//! Shapes follow Egnyte's published examples: users as in the User
//! Management API v2 (the single-user example has numeric ids and real
//! booleans, the .NET list fixture string ids and `"true"`), events as in
//! the Audit Reporting API v2 example (`FILE_AUDIT`, `USER_AUDIT`,
//! `GROUP_AUDIT`, field order kept). `LOGIN_AUDIT` events have no published
//! example; they are modelled on the file events' user fields.

use sha2::{Digest, Sha256};

use crate::synth::Rng;

/// Streams for [`Rng::for_item`].
mod stream {
    pub const USER: u64 = 301;
    pub const EVENT_KIND: u64 = 302;
    pub const EVENT_BODY: u64 = 303;
}

const GIVEN: &[&str] = &[
    "Jack", "Adam", "Jennifer", "Paul", "Priya", "Mateo", "Hannah", "Kenji", "Amara", "Lucas",
    "Sofia", "Noah", "Fatima", "Liam", "Chloe", "Ethan", "Zara", "Oliver", "Mei", "Gabriel",
];
const FAMILY: &[&str] = &[
    "Smith", "Jackson", "Watkins", "Chen", "Sharma", "Garcia", "Becker", "Tanaka", "Mensah",
    "Dubois", "Rossi", "Walker", "Haddad", "Murphy", "Nguyen", "Kowalski", "Jensen", "Silva",
    "Fraser", "Cohen",
];
const FOLDERS: &[&str] = &[
    "/Shared/Departments/Marketing/Branding",
    "/Shared/Departments/Engineering/ProductY",
    "/Shared/Departments/Finance/Reports",
    "/Shared/Legal/Contracts",
    "/Shared/HR/Policies",
    "/Shared/Sales/Proposals",
];
const FILES: &[&str] = &[
    "Logo.jpg",
    "Photo.png",
    "Q3 Forecast.xlsx",
    "NDA - Northwind.pdf",
    "Employee Handbook.docx",
    "Roadmap.pptx",
    "notes.txt",
    "Pricing.csv",
];
const GROUPS: &[&str] = &[
    "Engineering",
    "Marketing",
    "Finance",
    "Legal",
    "Contractors",
];
/// `access` values of file and login events, with weights.
const ACCESS: &[(&str, u32)] = &[
    ("Web UI", 50),
    ("Desktop App", 25),
    ("Mobile", 10),
    ("Public API", 10),
    ("FTP", 5),
];

/// Every `auditType` Egnyte documents, in bit order for filters.
pub(crate) const AUDIT_TYPES: &[&str] = &[
    "FILE_AUDIT",
    "LOGIN_AUDIT",
    "USER_AUDIT",
    "GROUP_AUDIT",
    "PERMISSION_AUDIT",
    "WG_SETTINGS_AUDIT",
    "WORKFLOW_AUDIT",
    "QUALITY_DOCS_AUDIT",
    "QUALITY_DOCS_CATEGORIES_AUDIT",
];
/// Filter bits of every type (`ANY`).
pub(crate) const ALL_TYPES: u16 = (1 << 9) - 1;

/// Generated event kinds: index into [`AUDIT_TYPES`], with weights.
const KINDS: &[(u8, u32)] = &[(0, 62), (1, 22), (2, 9), (3, 7)];

/// A user of the domain.
#[derive(Debug, Clone)]
pub(crate) struct DirUser {
    pub id: u64,
    pub user_name: String,
    pub email: String,
    pub given: &'static str,
    pub family: &'static str,
    pub active: bool,
    pub locked: bool,
    pub auth_type: &'static str,
    pub user_type: &'static str,
    pub role: Option<&'static str>,
    pub external_id: String,
}

impl DirUser {
    /// `"Jack Smith ( jsmith@company.com )"`, as audit events name people.
    pub(crate) fn audit_name(&self) -> String {
        format!("{} {} ( {} )", self.given, self.family, self.email)
    }
}

/// Generates `n` users (at least one). User 0 is the one who connects;
/// its `userType` is decided by the caller role at render time.
pub(crate) fn generate_users(domain: &str, seed: u64, n: usize) -> Vec<DirUser> {
    let mut out = Vec::with_capacity(n.max(1));
    for i in 0..n.max(1) {
        let mut rng = Rng::for_item(seed, stream::USER, i as u64);
        let given = *rng.pick(GIVEN);
        let family = *rng.pick(FAMILY);
        let user_name = format!("{}{}{i}", &given[..1], family).to_lowercase();
        let user_type = if i == 0 {
            "admin"
        } else {
            match rng.below(100) {
                0..=7 => "admin",
                8..=29 => "power",
                _ => "standard",
            }
        };
        let auth_type = ["egnyte", "sso", "ad"][rng.weighted([70u32, 20, 10].into_iter())];
        out.push(DirUser {
            // Egnyte user ids are 8 to 11 digit numbers; increasing keeps
            // the listing order stable.
            id: 12_800_000_000 + (i as u64) * 1000 + rng.below(1000),
            email: format!("{user_name}@{domain}.example.com"),
            user_name,
            given,
            family,
            active: i == 0 || rng.chance(92),
            locked: i != 0 && rng.chance(3),
            auth_type,
            user_type,
            role: (user_type == "power").then_some("Reviewer"),
            external_id: rng.uuid_v4(),
        });
    }
    out
}

/// Writes one JSON object field by field, keeping Egnyte's key order.
struct Obj(String);

impl Obj {
    fn new() -> Obj {
        Obj(String::from("{"))
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0
            .push_str(&serde_json::Value::String(k.to_string()).to_string());
        self.0.push(':');
    }

    fn str(mut self, k: &str, v: &str) -> Obj {
        self.key(k);
        self.0
            .push_str(&serde_json::Value::String(v.to_string()).to_string());
        self
    }

    fn raw(mut self, k: &str, v: &str) -> Obj {
        self.key(k);
        self.0.push_str(v);
        self
    }

    fn done(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Which published example a users listing imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsersListStyle {
    /// `resources` (Egnyte's Python and JS SDKs), users shaped like the
    /// single-user example: numeric `id`, boolean `active`/`locked`.
    Sdk,
    /// `Resources` with string ids and `"true"`/`"false"`, exactly like
    /// Egnyte's .NET list fixture.
    DotNetFixture,
}

/// A user as `GET /pubapi/v2/users/{id}` returns it.
pub(crate) fn user_json(u: &DirUser, user_type: &str) -> String {
    let name = Obj::new()
        .str("formatted", &format!("{} {}", u.given, u.family))
        .str("familyName", u.family)
        .str("givenName", u.given)
        .done();
    Obj::new()
        .raw("id", &u.id.to_string())
        .str("userName", &u.user_name)
        .str("externalId", &u.external_id)
        .str("email", &u.email)
        .raw("name", &name)
        .raw("active", &u.active.to_string())
        .raw("locked", &u.locked.to_string())
        .raw("emailChangePending", "null")
        .str("authType", u.auth_type)
        .str("userType", user_type)
        .raw(
            "role",
            &u.role.map_or("null".to_string(), |r| format!("\"{r}\"")),
        )
        .str("idpUserId", &u.user_name)
        .str("userPrincipalName", &u.email)
        .raw("expiryDate", "null")
        .raw("deleteOnExpiry", "null")
        .done()
}

/// A user inside a listing, in the given style.
pub(crate) fn user_list_json(u: &DirUser, user_type: &str, style: UsersListStyle) -> String {
    match style {
        UsersListStyle::Sdk => user_json(u, user_type),
        UsersListStyle::DotNetFixture => {
            let name = Obj::new()
                .str("familyName", u.family)
                .str("givenName", u.given)
                .done();
            let obj = Obj::new()
                .str("id", &u.id.to_string())
                .str("userName", &u.user_name)
                .str("externalId", &u.external_id)
                .str("email", &u.email)
                .raw("name", &name)
                .str("active", &u.active.to_string())
                .str("locked", &u.locked.to_string())
                .str("authType", u.auth_type)
                .str("userType", user_type);
            // The fixture's SSO user carries idpUserId, its AD user a UPN.
            if u.auth_type == "sso" {
                obj.str("idpUserId", &u.user_name).done()
            } else {
                obj.str("userPrincipalName", &u.email).done()
            }
        }
    }
}

/// The kind (index into [`AUDIT_TYPES`]) of event `seq`.
pub(crate) fn event_kind(seed: u64, seq: u64) -> u8 {
    let mut rng = Rng::for_item(seed, stream::EVENT_KIND, seq);
    KINDS[rng.weighted(KINDS.iter().map(|k| k.1))].0
}

fn weighted_pick(rng: &mut Rng, items: &[(&'static str, u32)]) -> &'static str {
    items[rng.weighted(items.iter().map(|i| i.1))].0
}

fn ip(rng: &mut Rng) -> String {
    // Documentation and benchmark ranges, never someone's real address.
    let block = ["198.51.100", "203.0.113", "192.0.2"][rng.index(3)];
    format!("{block}.{}", 1 + rng.below(254))
}

/// Renders event `seq` of kind `kind` at `date_ms`. Pure function of its
/// arguments, so the same event always renders the same text.
pub(crate) fn render_event(
    users: &[DirUser],
    seed: u64,
    seq: u64,
    date_ms: i64,
    kind: u8,
) -> String {
    let mut rng = Rng::for_item(seed, stream::EVENT_BODY, seq);
    let user = &users[rng.index(users.len())];
    let admins: Vec<&DirUser> = users.iter().filter(|u| u.user_type == "admin").collect();
    let admin = if admins.is_empty() {
        &users[0]
    } else {
        admins[rng.index(admins.len())]
    };
    let date = date_ms.to_string();
    match kind {
        0 => {
            let folder = *rng.pick(FOLDERS);
            let file = *rng.pick(FILES);
            let source = format!("{folder}/{file}");
            let (action, target) = match rng.below(100) {
                0..=29 => ("Preview", "N/A".to_string()),
                30..=49 => ("Download", "N/A".to_string()),
                50..=67 => ("Upload", "N/A".to_string()),
                68..=73 => ("Delete", "N/A".to_string()),
                74..=80 => ("Move", format!("{}/{file}", rng.pick(FOLDERS))),
                81..=86 => ("Copy", format!("{}/{file}", rng.pick(FOLDERS))),
                87..=92 => ("Rename", format!("{folder}/Copy of {file}")),
                _ => ("Create Folder", "N/A".to_string()),
            };
            let source = if action == "Create Folder" {
                format!("{folder}/New Folder {}", rng.below(100))
            } else {
                source
            };
            Obj::new()
                .raw("date", &date)
                .str("sourcePath", &source)
                .str("targetPath", &target)
                .str("user", &user.audit_name())
                .str("userId", &user.id.to_string())
                .str("action", action)
                .str("access", weighted_pick(&mut rng, ACCESS))
                .str("ipAddress", &ip(&mut rng))
                .str("actionInfo", "")
                .str("auditSource", "FILE_AUDIT")
                .done()
        }
        1 => {
            let (action, info) = match rng.below(100) {
                0..=79 => ("Login", ""),
                80..=91 => ("Logout", ""),
                _ => ("Failed Login", "Invalid password"),
            };
            Obj::new()
                .raw("date", &date)
                .str("user", &user.audit_name())
                .str("userId", &user.id.to_string())
                .str("action", action)
                .str("access", weighted_pick(&mut rng, ACCESS))
                .str("ipAddress", &ip(&mut rng))
                .str("actionInfo", info)
                .str("auditSource", "LOGIN_AUDIT")
                .done()
        }
        2 => {
            let action = *rng.pick(&["Create", "Update", "Disable", "Enable", "Delete"]);
            Obj::new()
                .raw("date", &date)
                .str("actor", &admin.audit_name())
                .str("subject", &user.audit_name())
                .str("action", action)
                .str("actionInfo", "")
                .str(
                    "source",
                    if rng.chance(80) {
                        "Web UI"
                    } else {
                        "Public API"
                    },
                )
                .str("auditSource", "USER_AUDIT")
                .done()
        }
        _ => {
            let group = *rng.pick(GROUPS);
            let (action, info) = match rng.below(100) {
                0..=19 => ("Create", String::new()),
                20..=59 => ("Add Member", user.audit_name()),
                60..=89 => ("Remove Member", user.audit_name()),
                _ => ("Delete", String::new()),
            };
            Obj::new()
                .raw("date", &date)
                .str("actor", &admin.audit_name())
                .str("group", group)
                .str("action", action)
                .str("actionInfo", &info)
                .str("source", "Web UI")
                .str("auditSource", "GROUP_AUDIT")
                .done()
        }
    }
}

/// The id the Ward connector derives for an event: `eg-` and the first 16
/// bytes, in hex, of SHA-256 over the event's canonical JSON (keys sorted
/// at every level, no whitespace). Written independently of the connector
/// from the same definition, so a disagreement shows up in the tests.
pub(crate) fn event_id(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
    let mut canonical = String::new();
    canonical_into(&value, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    format!("eg-{}", hex::encode(&digest[..16]))
}

fn canonical_into(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical_into(v, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_into(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_render_like_the_published_example() {
        let users = generate_users("acme", 1, 10);
        for seq in 0..200 {
            let kind = event_kind(1, seq);
            let json = render_event(&users, 1, seq, 1_638_936_585_716, kind);
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(v["date"], 1_638_936_585_716i64);
            assert_eq!(v["auditSource"], AUDIT_TYPES[kind as usize]);
            assert!(json.starts_with("{\"date\":1638936585716,"), "{json}");
            assert_eq!(json, render_event(&users, 1, seq, 1_638_936_585_716, kind));
        }
    }

    #[test]
    fn ids_are_canonical() {
        assert_eq!(
            event_id(r#"{"b":1,"a":"x"}"#),
            event_id(r#"{ "a": "x", "b": 1 }"#)
        );
        assert_ne!(event_id(r#"{"a":1}"#), event_id(r#"{"a":2}"#));
        assert_eq!(event_id(r#"{"a":1}"#).len(), 35);
    }

    #[test]
    fn users_in_both_list_styles() {
        let users = generate_users("acme", 3, 5);
        let typed: serde_json::Value =
            serde_json::from_str(&user_list_json(&users[1], "power", UsersListStyle::Sdk)).unwrap();
        assert!(typed["id"].is_u64());
        assert!(typed["active"].is_boolean());
        let dotnet: serde_json::Value = serde_json::from_str(&user_list_json(
            &users[1],
            "power",
            UsersListStyle::DotNetFixture,
        ))
        .unwrap();
        assert!(dotnet["id"].is_string());
        assert!(dotnet["active"] == "true" || dotnet["active"] == "false");
    }
}
