//! A manifest's `[[ocsf.map]]` rules, compiled once per plugin.

use regex::Regex;
use ward_manifest::OcsfRule;

/// Rules in manifest order; the first whose pattern matches wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules(Vec<(ActionGlob, OcsfRule)>);

/// An action pattern as `[[ocsf.map]]` and sink filters write it: `*` is
/// any run of characters, everything else literal, anchored at both ends.
#[derive(Debug, Clone)]
pub struct ActionGlob(Regex);

impl ActionGlob {
    /// Compiles `pattern`; `None` only if the regex engine refuses it.
    pub fn new(pattern: &str) -> Option<ActionGlob> {
        let literal: Vec<String> = pattern.split('*').map(regex::escape).collect();
        Regex::new(&format!("^(?s:{})$", literal.join(".*")))
            .ok()
            .map(ActionGlob)
    }

    /// Whether `action` matches.
    pub fn matches(&self, action: &str) -> bool {
        self.0.is_match(action)
    }
}

impl Rules {
    /// Compiles each rule's action pattern ([`ActionGlob`]).
    pub(crate) fn new(rules: &[OcsfRule]) -> Rules {
        Rules(
            rules
                .iter()
                .filter_map(|rule| {
                    // Escaped literals joined by `.*` always compile; a rule
                    // that still would not is skipped (its actions fall back).
                    Some((ActionGlob::new(&rule.action)?, rule.clone()))
                })
                .collect(),
        )
    }

    /// The first rule covering `action`.
    pub(crate) fn find(&self, action: &str) -> Option<&OcsfRule> {
        self.0
            .iter()
            .find(|(glob, _)| glob.matches(action))
            .map(|(_, rule)| rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(action: &str, class: u32) -> OcsfRule {
        OcsfRule {
            action: action.into(),
            class,
            activity: 1,
            severity: None,
            auth_protocol: None,
            mfa: false,
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = Rules::new(&[
            rule("user.session.start", 1),
            rule("user.*", 2),
            rule("*.create", 3),
            rule("file.Create Folder", 4),
            rule("a.b", 5),
        ]);
        let class = |a: &str| rules.find(a).map(|r| r.class);
        assert_eq!(class("user.session.start"), Some(1));
        assert_eq!(class("user.session.end"), Some(2));
        assert_eq!(class("user.create"), Some(2));
        assert_eq!(class("api_token.create"), Some(3));
        assert_eq!(class("file.Create Folder"), Some(4));
        // Literal dots, anchored at both ends, case-sensitive.
        assert_eq!(class("axb"), None);
        assert_eq!(class("a.bc"), None);
        assert_eq!(class("User.session.start"), None);
        assert_eq!(class("users"), None);
        assert_eq!(class("x.create.y"), None);
    }

    #[test]
    fn a_lone_star_catches_everything() {
        let rules = Rules::new(&[rule("*", 9)]);
        assert_eq!(rules.find("").map(|r| r.class), Some(9));
        assert_eq!(
            rules.find("zendesk/app_market/app.create").map(|r| r.class),
            Some(9)
        );
    }
}
