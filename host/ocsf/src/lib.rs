//! OCSF export of Ward's stored audit events.
//!
//! Ward maps every stored event to an event of the Open Cybersecurity
//! Schema Framework, version [`OCSF_VERSION`] (1.3.0).
//!
//! # Where the mapping lives
//!
//! Provider knowledge stays with the connector; OCSF knowledge stays in the
//! host:
//!
//! - the connector's manifest carries an `[ocsf]` table
//!   ([`ward_manifest::OcsfDecl`]): which OCSF class and activity each of
//!   its normalised actions is (`[[ocsf.map]] action = "user.session.*"
//!   class = 3002 activity = 1`; `*` is any run of characters, first match
//!   wins), optionally a severity, the authentication protocol
//!   or MFA flag of an action, and which raw field holds the provider's own
//!   time;
//! - this crate assembles the OCSF event from the stored event (id, time,
//!   action, actor, targets, IP, user agent, outcome, raw record) the same
//!   way for every connector: [`Exporter::map`] is the one entry point.
//!
//! An action no rule maps (or a rule naming a class this crate does not
//! assemble) is never dropped: it is exported as **Base Event** (class 0,
//! activity Other 99) with the action in `metadata.event_code`, the actor
//! and targets under `unmapped`. The same fallback applies when a class's
//! required object cannot be filled from the event (a File Hosting event
//! without a path), with the reason in `unmapped.ward.fallback`.
//!
//! # What goes where
//!
//! Every class: `class_uid`, `category_uid`, `activity_id`,
//! `type_uid` = class_uid × 100 + activity_id (with their names), `time`
//! (event time, ms), `severity_id` (rule's, else Informational),
//! `status_id`/`status` from the outcome (success 1, failure 2, else
//! Unknown 0), `metadata` (`version` = OCSF version, `product` = the
//! plugin's name, vendor, version and key, `uid` = the provider's event id,
//! `event_code` = the action, `original_time` from the raw record,
//! `logged_time` = when Ward stored it), `raw_data` = the provider's record
//! (left out above the schema's 65,535 characters; `unmapped.ward.raw_data_omitted`
//! says so), and `unmapped.ward` = instance id, action, actor kind, outcome
//! and the targets. Where the class has them: `actor.user` (uid, name,
//! email_addr, type: User or System) or `actor.app_uid`/`app_name` for a
//! service actor, `src_endpoint.ip`, `http_request.user_agent` (elsewhere
//! `unmapped.ward.user_agent`).
//!
//! Class objects, from the stored targets: Authentication (3002) `user`
//! (the actor), `service` (the first non-user target), `auth_protocol_id`,
//! `is_mfa`; Account Change (3001) `user` (the first user target, else the
//! actor); User Access Management (3005) `user`, `privileges` (names of the
//! non-user targets, else the action) and `resource` (the first of them);
//! Group Management (3006) `group` (the group target), `user`; API Activity
//! (6003) `api.operation` = the action, `resources` = every target; File
//! Hosting Activity (6006) `file` (name, path, type File or Folder) and
//! `file_result` (the second path: a move's or copy's destination).

mod assemble;
pub mod classes;
mod rules;

pub use rules::ActionGlob;

use serde_json::Value;
use ward_manifest::Manifest;
use ward_store::StoredEvent;

/// The OCSF version every exported event declares (`metadata.version`).
pub const OCSF_VERSION: &str = "1.3.0";

/// Why an `[ocsf]` table cannot be used as written.
#[derive(Debug, thiserror::Error)]
pub enum OcsfError {
    /// A rule names a class Ward does not assemble.
    #[error(
        "plugin `{plugin}`: [[ocsf.map]] `{action}` names class {class}, which Ward does not map \
         to (use one of {known}, or remove the rule to export it as Base Event)"
    )]
    UnknownClass {
        /// Plugin key.
        plugin: String,
        /// The rule's action.
        action: String,
        /// The class it names.
        class: u32,
        /// The classes Ward maps to.
        known: String,
    },
    /// A rule names an activity or severity the class does not define.
    #[error("plugin `{plugin}`: [[ocsf.map]] `{action}`: {message}")]
    BadId {
        /// Plugin key.
        plugin: String,
        /// The rule's action.
        action: String,
        /// What is wrong.
        message: String,
    },
}

/// Checks that every rule of `manifest`'s `[ocsf]` table names a class,
/// activity and severity of OCSF 1.3.0 that Ward assembles. A rule that
/// fails this still exports its events, as Base Event.
pub fn check(manifest: &Manifest) -> Result<(), OcsfError> {
    let Some(decl) = &manifest.ocsf else {
        return Ok(());
    };
    for rule in &decl.map {
        let Some(class) = classes::class(rule.class) else {
            return Err(OcsfError::UnknownClass {
                plugin: manifest.key.clone(),
                action: rule.action.clone(),
                class: rule.class,
                known: classes::CLASSES
                    .iter()
                    .map(|c| format!("{} ({})", c.uid, c.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let bad = |message: String| OcsfError::BadId {
            plugin: manifest.key.clone(),
            action: rule.action.clone(),
            message,
        };
        if class.activity(rule.activity).is_none() {
            return Err(bad(format!(
                "activity {} is not an activity of {} ({})",
                rule.activity, class.name, class.uid
            )));
        }
        if let Some(s) = rule.severity
            && !matches!(s, 0..=6 | 99)
        {
            return Err(bad(format!("severity {s} is not an OCSF severity_id")));
        }
        if (rule.auth_protocol.is_some() || rule.mfa) && class.uid != 3002 {
            return Err(bad(
                "auth_protocol and mfa apply to Authentication (3002) only".into(),
            ));
        }
        if rule
            .auth_protocol
            .is_some_and(|p| !matches!(p, 0..=10 | 99))
        {
            return Err(bad("auth_protocol is not an OCSF auth_protocol_id".into()));
        }
    }
    Ok(())
}

/// Maps one plugin's stored events to OCSF.
#[derive(Debug, Clone)]
pub struct Exporter {
    product: Value,
    original_time: Option<String>,
    rules: rules::Rules,
}

impl Exporter {
    /// An exporter for events stored by the plugin of `manifest`.
    pub fn new(manifest: &Manifest) -> Exporter {
        Exporter {
            product: serde_json::json!({
                "name": manifest.name,
                "vendor_name": manifest.vendor,
                "version": manifest.version,
                "uid": manifest.key,
            }),
            original_time: manifest.ocsf.as_ref().and_then(|o| o.original_time.clone()),
            rules: rules::Rules::new(manifest.ocsf.as_ref().map_or(&[], |o| &o.map)),
        }
    }

    /// An exporter for events of a plugin that is no longer loaded (only
    /// its key and version are known from the instance): no `[ocsf]` rules,
    /// so every event exports as Base Event, never dropped.
    pub fn without_manifest(key: &str, version: &str) -> Exporter {
        Exporter {
            product: serde_json::json!({
                "name": key,
                "vendor_name": "unknown",
                "version": version,
                "uid": key,
            }),
            original_time: None,
            rules: rules::Rules::new(&[]),
        }
    }

    /// The OCSF event for `event`. Never fails: what cannot be mapped goes
    /// under `unmapped`, an unmapped action becomes a Base Event.
    pub fn map(&self, event: &StoredEvent) -> Value {
        let rule = self.rules.find(&event.action);
        assemble::event(&self.product, self.original_time.as_deref(), rule, event)
    }
}
