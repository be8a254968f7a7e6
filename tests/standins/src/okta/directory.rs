//! The org's static directory: users, apps, groups, the org object and the
//! token owner's role assignments, generated once from the seed.
//!
//! Shapes follow the management API's `ListUsersResponse` example and the
//! recorded `GET /api/v1/users` response (which adds `credentials.emails`).

use serde::Serialize;

use crate::synth::{DAY_MS, Rng, iso_millis};

const FIRST_NAMES: &[&str] = &[
    "Avery", "Jordan", "Priya", "Mateo", "Hannah", "Kenji", "Amara", "Lucas", "Sofia", "Noah",
    "Fatima", "Liam", "Chloe", "Ethan", "Zara", "Oliver", "Mei", "Gabriel", "Isla", "Daniel",
    "Aisha", "Samuel", "Elena", "Ravi", "Grace", "Tomas", "Leila", "Owen", "Nadia", "Felix",
    "Ingrid", "Marcus", "Yuki", "Diego", "Maya", "Henrik", "Olivia", "Kwame", "Rosa", "Arjun",
];

const LAST_NAMES: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Sharma",
    "Garcia",
    "Becker",
    "Tanaka",
    "Mensah",
    "Dubois",
    "Rossi",
    "Walker",
    "Haddad",
    "Murphy",
    "Nguyen",
    "Kowalski",
    "Ahmed",
    "Jensen",
    "Chen",
    "Silva",
    "Fraser",
    "Cohen",
    "Bello",
    "Park",
    "Novak",
    "Iyer",
    "Turner",
    "Alvarez",
    "Karimi",
    "Evans",
    "Petrov",
    "Schmidt",
    "Larsen",
    "Reid",
    "Sato",
    "Morales",
    "Patel",
    "Berg",
    "Brown",
    "Asante",
    "Costa",
    "Mehta",
];

/// `(city, state, country, postalCode, lat, lon)`. Postal codes are strings
/// as the API really returns them (the OpenAPI example's number is wrong).
pub(crate) const CITIES: &[(&str, &str, &str, &str, f64, f64)] = &[
    (
        "San Francisco",
        "California",
        "United States",
        "94105",
        37.7898,
        -122.3942,
    ),
    (
        "New York",
        "New York",
        "United States",
        "10013",
        40.7209,
        -74.0007,
    ),
    (
        "Austin",
        "Texas",
        "United States",
        "78701",
        30.2713,
        -97.7426,
    ),
    (
        "Chicago",
        "Illinois",
        "United States",
        "60601",
        41.8853,
        -87.6229,
    ),
    (
        "Seattle",
        "Washington",
        "United States",
        "98101",
        47.6101,
        -122.3344,
    ),
    (
        "Boston",
        "Massachusetts",
        "United States",
        "02110",
        42.3572,
        -71.0518,
    ),
    (
        "London",
        "England",
        "United Kingdom",
        "EC2V",
        51.5151,
        -0.0922,
    ),
    (
        "Berlin",
        "Land Berlin",
        "Germany",
        "10117",
        52.5170,
        13.3889,
    ),
    ("Toronto", "Ontario", "Canada", "M5H", 43.6506, -79.3832),
    (
        "Sydney",
        "New South Wales",
        "Australia",
        "2000",
        -33.8688,
        151.2093,
    ),
];

/// User statuses other than the token owner's, with relative weights.
const STATUSES: &[(&str, u32)] = &[
    ("ACTIVE", 80),
    ("DEPROVISIONED", 7),
    ("SUSPENDED", 4),
    ("PROVISIONED", 3),
    ("STAGED", 2),
    ("LOCKED_OUT", 2),
    ("PASSWORD_EXPIRED", 1),
    ("RECOVERY", 1),
];

/// `(label, alternateId / app name)` of the org's app instances.
const APPS: &[(&str, &str)] = &[
    ("Okta Admin Console", "saasure"),
    ("Okta Dashboard", "okta_enduser"),
    ("Salesforce.com", "salesforce"),
    ("Slack", "slack"),
    ("GitHub Enterprise Cloud - Organization", "githubcloud"),
    ("Zoom", "zoomus"),
    ("Google Workspace", "google"),
    ("Atlassian Cloud", "atlassian"),
];

const OAUTH_CLIENTS: &[&str] = &[
    "Ward Demo Portal",
    "Internal Tools SPA",
    "Support Mobile App",
];

const GROUPS: &[&str] = &[
    "Everyone",
    "Engineering",
    "Sales",
    "Security",
    "Finance",
    "Contractors",
    "IT Admins",
];

/// A generated user.
#[derive(Debug)]
pub(crate) struct User {
    pub id: String,
    pub first: &'static str,
    pub last: &'static str,
    pub login: String,
    pub status: &'static str,
    pub city: usize,
    pub ip: String,
    pub json: Box<str>,
}

impl User {
    pub(crate) fn display_name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }
}

/// An app instance or OAuth client.
#[derive(Debug)]
pub(crate) struct App {
    pub id: String,
    pub label: &'static str,
    pub name: &'static str,
}

/// A group or other simply named object.
#[derive(Debug)]
pub(crate) struct Named {
    pub id: String,
    pub name: &'static str,
}

/// Everything about the org that does not change while the stand-in runs.
#[derive(Debug)]
pub(crate) struct Directory {
    pub host: String,
    pub users: Vec<User>,
    /// Indices into `users`, ordered by id: the order `/api/v1/users` pages in.
    pub by_id: Vec<usize>,
    /// Indices of users who can plausibly sign in.
    pub active: Vec<usize>,
    pub apps: Vec<App>,
    pub oauth_clients: Vec<App>,
    pub groups: Vec<Named>,
    pub policy: Named,
    pub rules: Vec<Named>,
    pub system_principal_id: String,
    pub org_json: Box<str>,
    pub owner_roles_json: Box<str>,
}

/// Id stream numbers, so each kind of object has its own reproducible ids.
mod stream {
    pub const ORG: u64 = 1;
    pub const USER: u64 = 2;
    pub const APP: u64 = 3;
    pub const GROUP: u64 = 4;
    pub const MISC: u64 = 5;
}

impl Directory {
    pub(crate) fn generate(
        org: &str,
        base_domain: &str,
        seed: u64,
        users: usize,
        admin_role: Option<&str>,
        start_ms: i64,
    ) -> Directory {
        let host = format!("{org}.{base_domain}");
        let mut misc = Rng::for_item(seed, stream::MISC, 0);
        // Okta ids end in a short cell/shard marker that is the same for
        // every object in an org (e.g. `...0g4`, `...5d7`).
        let cell = format!("{}{}", misc.index(10), misc.base62(2));
        let id = |rng: &mut Rng, prefix: &str| format!("{prefix}{}{cell}", rng.base62(14));

        let org_created = start_ms - 600 * DAY_MS;
        let org_id = id(&mut Rng::for_item(seed, stream::ORG, 0), "00o");
        let user_type_id = id(&mut Rng::for_item(seed, stream::ORG, 1), "oty");
        let system_principal_id = id(&mut Rng::for_item(seed, stream::ORG, 2), "0oa");

        let mut taken = std::collections::HashSet::new();
        let mut list = Vec::with_capacity(users.max(1));
        for i in 0..users.max(1) {
            let mut rng = Rng::for_item(seed, stream::USER, i as u64);
            let uid = id(&mut rng, "00u");
            let first = *rng.pick(FIRST_NAMES);
            let last = *rng.pick(LAST_NAMES);
            let mut local = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
            if !taken.insert(local.clone()) {
                local = format!("{local}{i}");
                taken.insert(local.clone());
            }
            let login = format!("{local}@example.com");
            let status = if i == 0 {
                "ACTIVE"
            } else {
                STATUSES[rng.weighted(STATUSES.iter().map(|s| s.1))].0
            };
            let city = rng.index(CITIES.len());
            let block = if rng.chance(50) {
                "198.51.100"
            } else {
                "203.0.113"
            };
            let ip = format!("{block}.{}", 1 + rng.below(254));
            let json = user_json(
                &mut rng,
                &UserParts {
                    host: &host,
                    id: &uid,
                    first,
                    last,
                    login: &login,
                    status,
                    type_id: &user_type_id,
                },
                org_created,
                start_ms,
            );
            list.push(User {
                id: uid,
                first,
                last,
                login,
                status,
                city,
                ip,
                json,
            });
        }
        let mut by_id: Vec<usize> = (0..list.len()).collect();
        by_id.sort_by(|a, b| list[*a].id.cmp(&list[*b].id));
        let active = (0..list.len())
            .filter(|i| list[*i].status == "ACTIVE")
            .collect();

        let apps = APPS
            .iter()
            .enumerate()
            .map(|(i, (label, name))| App {
                id: id(&mut Rng::for_item(seed, stream::APP, i as u64), "0oa"),
                label,
                name,
            })
            .collect();
        let oauth_clients = OAUTH_CLIENTS
            .iter()
            .enumerate()
            .map(|(i, label)| App {
                id: id(&mut Rng::for_item(seed, stream::APP, 100 + i as u64), "0oa"),
                label,
                name: "oidc_client",
            })
            .collect();
        let groups = GROUPS
            .iter()
            .enumerate()
            .map(|(i, name)| Named {
                id: id(&mut Rng::for_item(seed, stream::GROUP, i as u64), "00g"),
                name,
            })
            .collect();
        let policy = Named {
            id: id(&mut Rng::for_item(seed, stream::ORG, 3), "00p"),
            name: "Default Policy",
        };
        let rules = ["Catch-all Rule", "Require MFA off network"]
            .iter()
            .enumerate()
            .map(|(i, name)| Named {
                id: id(&mut Rng::for_item(seed, stream::ORG, 10 + i as u64), "0pr"),
                name,
            })
            .collect();

        let owner_id = list.first().map(|u| u.id.clone()).unwrap_or_default();
        let owner_roles_json = roles_json(
            &host,
            &owner_id,
            admin_role,
            &id(&mut Rng::for_item(seed, stream::ORG, 4), "ra1"),
            org_created + DAY_MS,
        );
        let org_json = org_json(&host, org, &org_id, org_created, start_ms - 3 * DAY_MS);

        Directory {
            host,
            users: list,
            by_id,
            active,
            apps,
            oauth_clients,
            groups,
            policy,
            rules,
            system_principal_id,
            org_json,
            owner_roles_json,
        }
    }

    /// The user the API token belongs to.
    pub(crate) fn owner(&self) -> Option<&User> {
        self.users.first()
    }

    /// Looks a user up the way `/api/v1/users/{id}` does: by id or login.
    pub(crate) fn find_user(&self, key: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.id == key || u.login.eq_ignore_ascii_case(key))
    }
}

struct UserParts<'a> {
    host: &'a str,
    id: &'a str,
    first: &'a str,
    last: &'a str,
    login: &'a str,
    status: &'a str,
    type_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserJson<'a> {
    id: &'a str,
    status: &'a str,
    created: String,
    activated: Option<String>,
    status_changed: Option<String>,
    last_login: Option<String>,
    last_updated: String,
    password_changed: Option<String>,
    #[serde(rename = "type")]
    user_type: IdRef<'a>,
    profile: Profile<'a>,
    credentials: Credentials<'a>,
    #[serde(rename = "_links")]
    links: SelfLinks,
}

#[derive(Serialize)]
struct IdRef<'a> {
    id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Profile<'a> {
    first_name: &'a str,
    last_name: &'a str,
    mobile_phone: Option<&'a str>,
    second_email: Option<&'a str>,
    login: &'a str,
    email: &'a str,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Credentials<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<Empty>,
    emails: [Email<'a>; 1],
    provider: Provider,
}

#[derive(Serialize)]
struct Email<'a> {
    value: &'a str,
    status: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct Provider {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
struct SelfLinks {
    #[serde(rename = "self")]
    self_link: Href,
}

#[derive(Serialize)]
struct Href {
    href: String,
}

fn user_json(rng: &mut Rng, u: &UserParts<'_>, org_created: i64, start_ms: i64) -> Box<str> {
    let latest_create = start_ms - 100 * DAY_MS;
    let created = org_created + rng.below((latest_create - org_created).max(1) as u64) as i64;
    let never_activated = matches!(u.status, "STAGED" | "PROVISIONED");
    // Real responses often carry `activated: null` even for active users
    // (both the spec example and the recording do), so only some get a date.
    let activated = (!never_activated && rng.chance(40)).then(|| created + 60_000);
    let status_changed = (u.status != "STAGED").then(|| {
        created + 3_600_000 + rng.below((start_ms - created - 4 * DAY_MS).max(1) as u64) as i64
    });
    let password_changed = (!never_activated).then(|| created + 1_200_000);
    let last_login = match u.status {
        "ACTIVE" | "PASSWORD_EXPIRED" | "LOCKED_OUT" => {
            Some(start_ms - 1 - rng.below((30 * DAY_MS) as u64) as i64)
        }
        "SUSPENDED" | "DEPROVISIONED" | "RECOVERY" => {
            Some(created + rng.below((start_ms - created - 40 * DAY_MS).max(1) as u64) as i64)
        }
        _ => None,
    };
    let last_updated = [Some(created), status_changed, password_changed]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(created);
    let json = UserJson {
        id: u.id,
        status: u.status,
        created: iso_millis(created),
        activated: activated.map(iso_millis),
        status_changed: status_changed.map(iso_millis),
        last_login: last_login.map(iso_millis),
        last_updated: iso_millis(last_updated),
        password_changed: password_changed.map(iso_millis),
        user_type: IdRef { id: u.type_id },
        profile: Profile {
            first_name: u.first,
            last_name: u.last,
            mobile_phone: None,
            second_email: None,
            login: u.login,
            email: u.login,
        },
        credentials: Credentials {
            password: (!never_activated).then_some(Empty {}),
            emails: [Email {
                value: u.login,
                status: if never_activated {
                    "UNVERIFIED"
                } else {
                    "VERIFIED"
                },
                kind: "PRIMARY",
            }],
            provider: Provider {
                kind: "OKTA",
                name: "OKTA",
            },
        },
        links: SelfLinks {
            self_link: Href {
                href: format!("https://{}/api/v1/users/{}", u.host, u.id),
            },
        },
    };
    to_json(&json)
}

/// Human label Okta shows for a standard admin role type.
fn role_label(role: &str) -> String {
    match role {
        "SUPER_ADMIN" => "Super Organization Administrator",
        "ORG_ADMIN" => "Organizational Administrator",
        "APP_ADMIN" => "Application Administrator",
        "USER_ADMIN" => "Group Administrator",
        "HELP_DESK_ADMIN" => "Help Desk Administrator",
        "READ_ONLY_ADMIN" => "Read Only Administrator",
        "MOBILE_ADMIN" => "Mobile Administrator",
        "API_ACCESS_MANAGEMENT_ADMIN" => "API Access Management Administrator",
        "REPORT_ADMIN" => "Report Administrator",
        "GROUP_MEMBERSHIP_ADMIN" => "Group Membership Administrator",
        other => other,
    }
    .to_owned()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleJson<'a> {
    id: &'a str,
    label: String,
    #[serde(rename = "type")]
    kind: &'a str,
    status: &'a str,
    created: String,
    last_updated: String,
    assignment_type: &'a str,
    #[serde(rename = "_links")]
    links: RoleLinks,
}

#[derive(Serialize)]
struct RoleLinks {
    assignee: Href,
}

fn roles_json(
    host: &str,
    owner_id: &str,
    role: Option<&str>,
    assignment_id: &str,
    at: i64,
) -> Box<str> {
    let roles: Vec<RoleJson<'_>> = role
        .map(|kind| RoleJson {
            id: assignment_id,
            label: role_label(kind),
            kind,
            status: "ACTIVE",
            created: iso_millis(at),
            last_updated: iso_millis(at),
            assignment_type: "USER",
            links: RoleLinks {
                assignee: Href {
                    href: format!("https://{host}/api/v1/users/{owner_id}"),
                },
            },
        })
        .into_iter()
        .collect();
    to_json(&roles)
}

/// `ward-demo` becomes `Ward Demo Inc`.
fn company_name(org: &str) -> String {
    let words: Vec<String> = org
        .split(['-', '_', '.'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect();
    format!("{} Inc", words.join(" "))
}

fn org_json(host: &str, org: &str, id: &str, created: i64, updated: i64) -> Box<str> {
    let base = format!("https://{host}/api/v1/org");
    let value = serde_json::json!({
        "id": id,
        "companyName": company_name(org),
        "subdomain": org,
        "status": "ACTIVE",
        "expiresAt": null,
        "created": iso_millis(created),
        "lastUpdated": iso_millis(updated),
        "website": "https://www.example.com",
        "phoneNumber": "+1-415-555-0100",
        "endUserSupportHelpURL": null,
        "supportPhoneNumber": null,
        "address1": "100 Example Street",
        "address2": null,
        "city": "San Francisco",
        "state": "California",
        "country": "United States",
        "postalCode": "94105",
        "_links": {
            "preferences": { "href": format!("{base}/preferences") },
            "uploadLogo": {
                "href": format!("{base}/logo"),
                "hints": { "allow": ["POST"] }
            },
            "oktaCommunication": { "href": format!("{base}/privacy/oktaCommunication") },
            "logo": [{
                "name": "Organization Logo",
                "href": "https://op1static.oktacdn.com/assets/img/logos/okta-logo.png",
                "type": "image/png"
            }],
            "oktaSupport": { "href": format!("{base}/privacy/oktaSupport") },
            "contacts": { "href": format!("{base}/contacts") }
        }
    });
    to_json(&value)
}

/// Serializes a value built from plain strings and numbers; such values
/// cannot fail to serialize, but if one ever did, an empty object keeps the
/// response valid JSON instead of crashing the server.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Box<str> {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "{}".to_owned())
        .into_boxed_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert_eq!(company_name("ward-demo"), "Ward Demo Inc");
        let d = Directory::generate(
            "ward-demo",
            "okta.com",
            7,
            50,
            Some("SUPER_ADMIN"),
            1_750_000_000_000,
        );
        assert_eq!(d.users.len(), 50);
        for u in &d.users {
            assert!(u.id.starts_with("00u") && u.id.len() == 20, "{}", u.id);
            let v: serde_json::Value = serde_json::from_str(&u.json).unwrap();
            assert_eq!(v["profile"]["login"], u.login.as_str());
        }
        assert_eq!(d.users[0].status, "ACTIVE");
        let logins: std::collections::HashSet<_> = d.users.iter().map(|u| &u.login).collect();
        assert_eq!(logins.len(), 50);
        let roles: serde_json::Value = serde_json::from_str(&d.owner_roles_json).unwrap();
        assert_eq!(roles[0]["type"], "SUPER_ADMIN");
        assert_eq!(roles[0]["label"], "Super Organization Administrator");
    }
}
