//! `[ocsf]`: the connector's knowledge of its own actions for OCSF export.
//!
//! The connector knows what its provider's actions mean; the host
//! (`ward-ocsf`) knows how to assemble an OCSF event. So the manifest
//! carries only the action → class table, and the host does the rest:
//!
//! ```toml
//! [ocsf]
//! original_time = "published"        # raw record field with the provider's own time
//!
//! [[ocsf.map]]
//! action = "user.session.start"      # exact action
//! class = 3002                       # OCSF class_uid (Authentication)
//! activity = 1                       # activity_id (Logon)
//!
//! [[ocsf.map]]
//! action = "group.user_membership.*" # `*`: any run of characters
//! class = 3006
//! activity = 3
//! ```
//!
//! `*` in an action stands for any run of characters. Rules are tried in
//! order and the first that matches wins, so put exact actions before the
//! patterns that would also match them. An action no rule matches is still
//! exported, as the host's documented fallback class.

use serde::{Deserialize, Serialize};

/// The `[ocsf]` table of a manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcsfDecl {
    /// Top-level field of the provider's raw record that holds the
    /// provider's own rendering of the event time (`metadata.original_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_time: Option<String>,
    /// Action → class rules, first match wins.
    #[serde(default)]
    pub map: Vec<OcsfRule>,
}

/// One action → class rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcsfRule {
    /// The normalised action (`user.session.start`), or a pattern where
    /// `*` stands for any run of characters (`user.lifecycle.*`,
    /// `*.create`, `*` for every action). Case-sensitive.
    pub action: String,
    /// OCSF `class_uid`, e.g. 3002 (Authentication).
    pub class: u32,
    /// OCSF `activity_id` within that class.
    pub activity: u32,
    /// OCSF `severity_id`; Informational (1) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<u32>,
    /// OCSF `auth_protocol_id` (Authentication only), when the action
    /// says which protocol was used (e.g. 5 for SAML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_protocol: Option<u32>,
    /// The action is a multi-factor authentication (Authentication only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa: bool,
}

impl OcsfDecl {
    /// Shape checks made at load; which classes and activities exist is the
    /// host's OCSF knowledge (`ward_ocsf::check`).
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(field) = &self.original_time
            && field.trim().is_empty()
        {
            return Err("ocsf.original_time must name a field of the raw record".into());
        }
        for (i, rule) in self.map.iter().enumerate() {
            if rule.action.trim().is_empty() {
                return Err(format!(
                    "ocsf.map[{i}].action is empty: give an action or a pattern (`user.*`, `*.create`, `*`)"
                ));
            }
            if rule.activity > 99 || rule.severity.is_some_and(|s| s > 99) {
                return Err(format!(
                    "ocsf.map[{i}] (`{}`): activity and severity are OCSF ids from 0 to 99",
                    rule.action
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(action: &str) -> OcsfRule {
        OcsfRule {
            action: action.into(),
            class: 3002,
            activity: 1,
            severity: None,
            auth_protocol: None,
            mfa: false,
        }
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in ["", "  "] {
            let decl = OcsfDecl {
                original_time: None,
                map: vec![rule(bad)],
            };
            assert!(decl.validate().is_err(), "{bad}");
        }
        let mut high = rule("x");
        high.activity = 100;
        let decl = OcsfDecl {
            original_time: None,
            map: vec![high],
        };
        assert!(decl.validate().is_err());
    }
}
