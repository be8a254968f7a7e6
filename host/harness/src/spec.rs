//! `harness.toml`: what the harness binds a plugin with and what each
//! recorded scenario must produce.
//!
//! ```toml
//! since = "2024-11-01T00:00:00Z"   # backfill start (RFC 3339)
//! [config]                          # the instance configuration
//! domain = "acme"
//! [secrets]                         # bound directly, no exchange
//! api_token = "00acmeSswsTokenForReplay"
//!
//! [[scenario]]
//! name = "api-token"                # the folder of recorded exchanges
//! expect = "ok"                     # test, backfill and users succeed
//! [[scenario]]
//! name = "unauthorized"
//! expect = "unauthorized"           # fetch-audit must fail with this case
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::HarnessError;

/// The file name of the spec inside a fixture folder.
pub const SPEC_FILE: &str = "harness.toml";

/// What a scenario must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// `test` passes every check, the backfill and the user listing finish.
    Ok,
    /// `fetch-audit` fails with `unauthorized` (a 401 recording).
    Unauthorized,
    /// `fetch-audit` fails with `forbidden` (a 403 recording).
    Forbidden,
    /// `fetch-audit` fails with `rate-limited` (a 429 recording).
    RateLimited,
    /// `fetch-audit` fails with `unavailable` (a 5xx recording).
    Unavailable,
}

impl Expect {
    /// The contract's name of the case.
    pub fn name(self) -> &'static str {
        match self {
            Expect::Ok => "ok",
            Expect::Unauthorized => "unauthorized",
            Expect::Forbidden => "forbidden",
            Expect::RateLimited => "rate-limited",
            Expect::Unavailable => "unavailable",
        }
    }
}

/// One recorded scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Folder of the recorded exchanges, relative to the spec.
    pub name: String,
    /// What it must produce.
    pub expect: Expect,
}

/// A parsed `harness.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Backfill start, RFC 3339.
    pub since: String,
    /// Instance configuration.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secret values bound to the instance (fixture values, never real ones).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The scenarios, run in this order.
    #[serde(default, rename = "scenario")]
    pub scenarios: Vec<Scenario>,
}

impl Spec {
    /// Reads `DIR/harness.toml`.
    pub fn load(dir: &Path) -> Result<Spec, HarnessError> {
        let path = dir.join(SPEC_FILE);
        let fail = |message: String| HarnessError::Fixtures {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            fail(format!(
                "{e}; a fixture folder needs a {SPEC_FILE} (`ward plugin record` writes one)"
            ))
        })?;
        let spec: Spec = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        spec.since_ms().map_err(fail)?;
        if spec.scenarios.is_empty() {
            return Err(fail("no [[scenario]] listed".into()));
        }
        for s in &spec.scenarios {
            if !dir.join(&s.name).is_dir() {
                return Err(fail(format!(
                    "scenario `{}` has no folder {}",
                    s.name,
                    dir.join(&s.name).display()
                )));
            }
        }
        Ok(spec)
    }

    /// `since` in ms since the epoch.
    pub fn since_ms(&self) -> Result<i64, String> {
        let t = time::OffsetDateTime::parse(
            &self.since,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| format!("since = {:?} is not RFC 3339: {e}", self.since))?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|e| e.to_string())
    }

    /// Writes the spec as `DIR/harness.toml`.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, HarnessError> {
        let path = dir.join(SPEC_FILE);
        let text = toml::to_string_pretty(self).map_err(|e| HarnessError::Io(e.to_string()))?;
        std::fs::write(&path, text)
            .map_err(|e| HarnessError::Io(format!("writing {}: {e}", path.display())))?;
        Ok(path)
    }
}
