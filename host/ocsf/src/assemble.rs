//! Assembles one OCSF event from a stored event and the matching rule.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use ward_manifest::OcsfRule;
use ward_store::StoredEvent;

use crate::OCSF_VERSION;
use crate::classes::{self, BASE_EVENT, Class};

/// Longest `raw_data` the OCSF schema allows (characters).
const RAW_DATA_MAX: usize = 65_535;

/// Informational.
const DEFAULT_SEVERITY: u32 = 1;

/// One stored target (`targets_json` items: `{id, kind, name}`).
#[derive(Debug, Default, Deserialize)]
struct Target {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl Target {
    fn kind(&self) -> String {
        self.kind
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
    fn is_user(&self) -> bool {
        self.kind() == "user"
    }
    /// A person: a user, or a user's account in an application.
    fn is_person(&self) -> bool {
        matches!(self.kind().as_str(), "user" | "appuser")
    }
    fn is_app(&self) -> bool {
        matches!(self.kind().as_str(), "app" | "appinstance" | "application")
    }
    fn is_group(&self) -> bool {
        matches!(self.kind().as_str(), "group" | "usergroup")
    }
    fn is_path(&self) -> bool {
        matches!(self.kind().as_str(), "file" | "folder")
    }
    /// `user` object for a target naming a person (Egnyte puts the email
    /// in `id`).
    fn user(&self) -> Value {
        let email = [&self.id, &self.name]
            .into_iter()
            .flatten()
            .find(|v| v.contains('@'));
        object([
            ("uid", self.id.clone().map(Value::String)),
            ("name", self.name.clone().map(Value::String)),
            ("email_addr", email.cloned().map(Value::String)),
            ("type_id", Some(json!(1))),
            ("type", Some(json!("User"))),
        ])
    }
    /// `uid`/`name`/`type` of anything else (`group`, `service`,
    /// `resource_details`).
    fn named(&self, with_type: bool) -> Value {
        object([
            ("uid", self.id.clone().map(Value::String)),
            ("name", self.name.clone().map(Value::String)),
            (
                "type",
                self.kind.clone().filter(|_| with_type).map(Value::String),
            ),
        ])
    }
}

/// A JSON object of the present values.
fn object<const N: usize>(fields: [(&str, Option<Value>); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect(),
    )
}

fn is_empty(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

/// Everything one event's assembly reads.
struct Input<'a> {
    event: &'a StoredEvent,
    targets: Vec<Target>,
}

impl Input<'_> {
    /// The actor as an OCSF `user`, if it is a user or the system.
    fn actor_user(&self) -> Value {
        let e = self.event;
        let (type_id, type_name) = match e.actor_kind.as_str() {
            "user" => (1, "User"),
            "system" => (3, "System"),
            _ => (0, "Unknown"),
        };
        object([
            ("uid", e.actor_id.clone().map(Value::String)),
            ("name", e.actor_name.clone().map(Value::String)),
            ("email_addr", e.actor_email.clone().map(Value::String)),
            ("type_id", Some(json!(type_id))),
            ("type", Some(json!(type_name))),
        ])
    }

    /// OCSF `actor`: a service actor is an application, anyone else a user.
    fn actor(&self) -> Value {
        let e = self.event;
        if e.actor_kind == "service" {
            object([
                ("app_uid", e.actor_id.clone().map(Value::String)),
                ("app_name", e.actor_name.clone().map(Value::String)),
            ])
        } else {
            json!({ "user": self.actor_user() })
        }
    }

    fn first_user_target(&self) -> Option<&Target> {
        self.targets.iter().find(|t| t.is_user())
    }

    fn src_endpoint(&self) -> Value {
        object([("ip", self.event.ip.clone().map(Value::String))])
    }
}

/// The OCSF event for `event`.
pub(crate) fn event(
    product: &Value,
    original_time: Option<&str>,
    rule: Option<&OcsfRule>,
    event: &StoredEvent,
) -> Value {
    // Targets the store cannot parse are still exported, as text, under
    // `unmapped.ward.targets`.
    let input = Input {
        event,
        targets: serde_json::from_str(&event.targets_json).unwrap_or_default(),
    };
    let mut ward = Map::new();
    ward.insert("instance_id".into(), json!(event.instance_id));
    ward.insert("action".into(), json!(event.action));
    ward.insert("actor_kind".into(), json!(event.actor_kind));
    ward.insert("outcome".into(), json!(event.outcome));
    ward.insert(
        "targets".into(),
        serde_json::from_str::<Value>(&event.targets_json)
            .unwrap_or_else(|_| Value::String(event.targets_json.clone())),
    );

    let chosen = rule.and_then(|r| {
        let class = classes::class(r.class)?;
        let activity = class.activity(r.activity)?;
        Some((class, r, activity))
    });
    let mut out = Map::new();
    let (class, activity_id, activity_name) = match chosen {
        Some((class, r, activity)) => match class_objects(class, r, &input, &mut out, &mut ward) {
            Ok(()) => (class, r.activity, activity),
            Err(reason) => {
                out.clear();
                ward.insert("fallback".into(), json!(reason));
                base_objects(&input, &mut ward);
                (&BASE_EVENT, 99, "Other")
            }
        },
        None => {
            if let Some(r) = rule {
                ward.insert(
                    "fallback".into(),
                    json!(format!(
                        "rule `{}` names class {} activity {}, which Ward does not map to",
                        r.action, r.class, r.activity
                    )),
                );
            }
            base_objects(&input, &mut ward);
            (&BASE_EVENT, 99, "Other")
        }
    };

    let severity_id = rule
        .filter(|_| class.uid != 0)
        .and_then(|r| r.severity)
        .unwrap_or(DEFAULT_SEVERITY);
    let (status_id, status) = match event.outcome.as_str() {
        "success" => (1, "Success"),
        "failure" => (2, "Failure"),
        _ => (0, "Unknown"),
    };
    out.insert("class_uid".into(), json!(class.uid));
    out.insert("class_name".into(), json!(class.name));
    out.insert("category_uid".into(), json!(class.category));
    out.insert("category_name".into(), json!(class.category_name));
    out.insert("activity_id".into(), json!(activity_id));
    out.insert("activity_name".into(), json!(activity_name));
    out.insert(
        "type_uid".into(),
        json!(u64::from(class.uid) * 100 + u64::from(activity_id)),
    );
    out.insert(
        "type_name".into(),
        json!(format!("{}: {activity_name}", class.name)),
    );
    out.insert("time".into(), json!(event.time_ms));
    out.insert("severity_id".into(), json!(severity_id));
    out.insert("severity".into(), json!(classes::severity(severity_id)));
    out.insert("status_id".into(), json!(status_id));
    out.insert("status".into(), json!(status));
    out.insert("metadata".into(), metadata(product, original_time, event));
    if event.raw_json.chars().count() <= RAW_DATA_MAX {
        out.insert("raw_data".into(), json!(event.raw_json));
    } else {
        ward.insert(
            "raw_data_omitted".into(),
            json!(format!(
                "the provider's record is {} bytes, above OCSF's raw_data limit of {RAW_DATA_MAX} characters",
                event.raw_json.len()
            )),
        );
    }
    out.insert("unmapped".into(), json!({ "ward": ward }));
    Value::Object(out)
}

fn metadata(product: &Value, original_time: Option<&str>, event: &StoredEvent) -> Value {
    let original_time = original_time.and_then(|field| {
        let raw: Value = serde_json::from_str(&event.raw_json).ok()?;
        match raw.get(field)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    });
    object([
        ("version", Some(json!(OCSF_VERSION))),
        ("product", Some(product.clone())),
        ("uid", Some(json!(event.event_id))),
        ("event_code", Some(json!(event.action))),
        ("original_time", original_time.map(Value::String)),
        ("logged_time", Some(json!(event.ingested_ms))),
    ])
}

/// Base Event has neither actor nor endpoints: they go under `unmapped`.
fn base_objects(input: &Input<'_>, ward: &mut Map<String, Value>) {
    ward.insert("actor".into(), input.actor());
    if let Some(ip) = &input.event.ip {
        ward.insert("ip".into(), json!(ip));
    }
    if let Some(ua) = &input.event.user_agent {
        ward.insert("user_agent".into(), json!(ua));
    }
}

/// The class's own objects into `out`; `Err` says why the class's required
/// objects cannot be filled from this event.
fn class_objects(
    class: &Class,
    rule: &OcsfRule,
    input: &Input<'_>,
    out: &mut Map<String, Value>,
    ward: &mut Map<String, Value>,
) -> Result<(), String> {
    let e = input.event;
    // Classes with `actor` and `http_request` (OCSF 1.3.0).
    let (has_actor, has_http) = match class.uid {
        3001 | 3002 | 6003 => (true, true),
        3005 | 3006 => (false, true),
        6006 => (true, false),
        _ => (false, false),
    };
    if has_actor {
        out.insert("actor".into(), input.actor());
    } else {
        ward.insert("actor".into(), input.actor());
    }
    // Every mapped class has `src_endpoint`; API Activity and File Hosting
    // require it, so it is present (empty without an address).
    let src = input.src_endpoint();
    if !is_empty(&src) || matches!(class.uid, 6003 | 6006) {
        out.insert("src_endpoint".into(), src);
    }
    if let Some(ua) = &e.user_agent {
        if has_http {
            out.insert("http_request".into(), json!({ "user_agent": ua }));
        } else {
            ward.insert("user_agent".into(), json!(ua));
        }
    }
    let others: Vec<&Target> = input.targets.iter().filter(|t| !t.is_person()).collect();
    let target_user = || input.first_user_target().map(Target::user);
    match class.uid {
        3002 => {
            out.insert("user".into(), input.actor_user());
            if let Some(service) = input.targets.iter().find(|t| t.is_app()) {
                out.insert("service".into(), service.named(false));
            }
            if let Some(p) = rule.auth_protocol {
                out.insert("auth_protocol_id".into(), json!(p));
            }
            if rule.mfa {
                out.insert("is_mfa".into(), json!(true));
            }
        }
        3001 => {
            out.insert(
                "user".into(),
                target_user().unwrap_or_else(|| input.actor_user()),
            );
        }
        3005 => {
            out.insert(
                "user".into(),
                target_user().unwrap_or_else(|| input.actor_user()),
            );
            let privileges: Vec<String> = others.iter().filter_map(|t| t.name.clone()).collect();
            out.insert(
                "privileges".into(),
                json!(if privileges.is_empty() {
                    vec![e.action.clone()]
                } else {
                    privileges
                }),
            );
            if let Some(resource) = others.first() {
                out.insert("resource".into(), resource.named(true));
            }
        }
        3006 => {
            let group = input.targets.iter().find(|t| t.is_group()).ok_or_else(|| {
                format!(
                    "a Group Management event needs a group target; `{}` has none",
                    e.action
                )
            })?;
            out.insert("group".into(), group.named(false));
            if let Some(user) = target_user() {
                out.insert("user".into(), user);
            }
        }
        6003 => {
            out.insert("api".into(), json!({ "operation": e.action }));
            if !input.targets.is_empty() {
                out.insert(
                    "resources".into(),
                    Value::Array(input.targets.iter().map(|t| t.named(true)).collect()),
                );
            }
        }
        6006 => {
            let mut paths = input.targets.iter().filter(|t| t.is_path());
            let source = paths.next().and_then(file_object).ok_or_else(|| {
                format!(
                    "a File Hosting event needs a file or folder path; `{}` has none",
                    e.action
                )
            })?;
            out.insert("file".into(), source);
            if let Some(result) = paths.next().and_then(file_object) {
                out.insert("file_result".into(), result);
            }
        }
        _ => return Err(format!("class {} has no assembly", class.uid)),
    }
    Ok(())
}

/// OCSF `file` for a path target: name (last segment), path, File or
/// Folder.
fn file_object(target: &Target) -> Option<Value> {
    let path = target.name.as_deref().filter(|p| !p.is_empty())?;
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(path);
    let (type_id, type_name) = if target.kind() == "folder" {
        (2, "Folder")
    } else {
        (1, "Regular File")
    };
    Some(json!({
        "name": name,
        "path": path,
        "type_id": type_id,
        "type": type_name,
    }))
}
