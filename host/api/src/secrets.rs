//! The operator's API secrets: random 32-byte values of which only SHA-256
//! hashes are kept by the daemon.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ward_daemon::Daemon;
use ward_store::StoreError;

/// File name, under the data directory, of generated secrets.
pub const SECRETS_FILE: &str = "api-secrets.toml";

/// The two secrets, as written to `api-secrets.toml`.
#[derive(Clone, Serialize, Deserialize)]
pub struct ApiSecrets {
    /// The `User` secret.
    pub user: String,
    /// The `Organization` secret.
    pub organization: String,
}

impl std::fmt::Debug for ApiSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiSecrets([REDACTED])")
    }
}

impl ApiSecrets {
    /// Two fresh random secrets.
    pub fn generate() -> ApiSecrets {
        ApiSecrets {
            user: random_token(),
            organization: random_token(),
        }
    }

    /// The `Authorization` header value carrying them.
    pub fn header(&self) -> String {
        format!("User {}, Organization {}", self.user, self.organization)
    }

    /// Reads a secrets file written by [`ensure_api_secrets`].
    pub fn load(path: &Path) -> Result<ApiSecrets, SecretsError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SecretsError::Missing {
                    path: path.to_owned(),
                }
            } else {
                SecretsError::File {
                    path: path.to_owned(),
                    reason: e.to_string(),
                }
            }
        })?;
        toml::from_str(&text).map_err(|e| SecretsError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// Why the API secrets could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The secrets file could not be read or written.
    #[error(
        "API secrets file {path}: {reason}; fix its permissions, or move it away to generate new secrets"
    )]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The secrets file does not exist (yet, or not in this directory).
    #[error(
        "API secrets file {path} does not exist; `ward serve` writes it into its data directory \
         on first start: pass that directory with --data-dir (or WARD_DATA_DIR), or set \
         WARD_USER_SECRET and WARD_ORG_SECRET"
    )]
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
    /// A configured hash is not 64 hex digits.
    #[error(
        "[api] {key} must be the SHA-256 of the secret as 64 hex digits (e.g. `printf %s SECRET | sha256sum`)"
    )]
    BadHash {
        /// The configuration key.
        key: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) use ward_daemon::consent::random_token;
pub use ward_daemon::consent::sha256_hex;

fn valid_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where the API's secrets come from, as [`ensure_api_secrets`] set them up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsSetup {
    /// The hashes in `[api]`, copied into the store.
    Configured,
    /// The hashes the store already held, which the data directory's
    /// secrets file (if there is one) matches.
    Stored,
    /// Fresh secrets, written now to this file (mode 0600).
    Generated(PathBuf),
    /// The store holds another daemon's secrets (a daemon sharing the
    /// store stored its pair first); `stale` is this data directory's
    /// secrets file when there is one: it does not hold them.
    Elsewhere {
        /// The data directory's secrets file, which the API does not accept.
        stale: Option<PathBuf>,
    },
}

impl SecretsSetup {
    /// The secrets file written now, if any.
    pub fn generated(&self) -> Option<&Path> {
        match self {
            SecretsSetup::Generated(path) => Some(path),
            _ => None,
        }
    }

    /// What `ward serve` tells the operator, if anything.
    pub fn notice(&self) -> Option<String> {
        match self {
            SecretsSetup::Configured | SecretsSetup::Stored => None,
            SecretsSetup::Generated(path) => Some(format!(
                "generated the API secrets into {} (only their hashes are kept in the store); \
                 use them as `Authorization: User <user>, Organization <organization>`",
                path.display()
            )),
            SecretsSetup::Elsewhere { stale: None } => Some(
                "the API accepts the secrets of another daemon sharing this store (they are in \
                 its data directory's api-secrets.toml); copy that file here, or set \
                 [api] user_secret_sha256 and organization_secret_sha256 in every daemon's config"
                    .to_owned(),
            ),
            SecretsSetup::Elsewhere { stale: Some(path) } => Some(format!(
                "WARNING: {} does not hold the API secrets this store accepts (another daemon \
                 sharing the store set them); replace it with that daemon's api-secrets.toml, \
                 or set [api] user_secret_sha256 and organization_secret_sha256 in every daemon's config",
                path.display()
            )),
        }
    }
}

/// Makes sure the API has secret hashes to check against, and says where
/// they come from.
///
/// - Hashes in `[api]` win and are copied into the store.
/// - Otherwise hashes already in the store are kept.
/// - Otherwise `<data_dir>/api-secrets.toml` is read if present, or written
///   with two fresh secrets (mode 0600), and its hashes are offered to the
///   store. Daemons starting at once on one data directory end up with one
///   file; daemons starting at once on one store end up with one pair (the
///   first stored), and a loser removes the file it just wrote.
pub async fn ensure_api_secrets(daemon: &Daemon) -> Result<SecretsSetup, SecretsError> {
    let api = &daemon.config.api;
    if let (Some(user), Some(org)) = (&api.user_secret_sha256, &api.organization_secret_sha256) {
        if !valid_hash(user) {
            return Err(SecretsError::BadHash {
                key: "user_secret_sha256",
            });
        }
        if !valid_hash(org) {
            return Err(SecretsError::BadHash {
                key: "organization_secret_sha256",
            });
        }
        daemon
            .store
            .set_api_secret_hash("user", &user.to_ascii_lowercase())
            .await?;
        daemon
            .store
            .set_api_secret_hash("organization", &org.to_ascii_lowercase())
            .await?;
        return Ok(SecretsSetup::Configured);
    }
    let path = daemon.config.data_dir.join(SECRETS_FILE);
    let stored = daemon.store.api_secret_hashes().await?;
    if let (Some(user), Some(org)) = (stored.get("user"), stored.get("organization")) {
        // A file that cannot be read or does not match is not the
        // store's: say so, but the API works with the store's hashes.
        let matches =
            |s: &ApiSecrets| sha256_hex(&s.user) == *user && sha256_hex(&s.organization) == *org;
        return Ok(match ApiSecrets::load(&path) {
            Err(SecretsError::Missing { .. }) => SecretsSetup::Stored,
            Ok(s) if matches(&s) => SecretsSetup::Stored,
            _ => SecretsSetup::Elsewhere { stale: Some(path) },
        });
    }
    let (secrets, generated) = match ApiSecrets::load(&path) {
        Ok(s) => (s, false),
        Err(SecretsError::Missing { .. }) => publish_new(&path)?,
        Err(e) => return Err(e),
    };
    let ours = daemon
        .store
        .offer_api_secret_hashes(
            &sha256_hex(&secrets.user),
            &sha256_hex(&secrets.organization),
        )
        .await?;
    Ok(match (ours, generated) {
        (true, true) => SecretsSetup::Generated(path),
        (true, false) => SecretsSetup::Stored,
        (false, true) => {
            // Nobody can use these secrets: leave no file that suggests
            // otherwise.
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove API secrets the store did not take; delete the file");
            }
            SecretsSetup::Elsewhere { stale: None }
        }
        (false, false) => SecretsSetup::Elsewhere { stale: Some(path) },
    })
}

/// Writes fresh secrets to `path` (mode 0600) unless another process
/// creates it first, then reads theirs; says whether they are the ones
/// written here.
fn publish_new(path: &Path) -> Result<(ApiSecrets, bool), SecretsError> {
    let secrets = ApiSecrets::generate();
    let text = format!(
        "# Ward API secrets. Send them as `Authorization: User <user>, Organization <organization>`.\n\
         # The daemon keeps only their SHA-256; keep this file private.\n\
         user = \"{}\"\norganization = \"{}\"\n",
        secrets.user, secrets.organization
    );
    let created =
        ward_store::create_private_file(path, text.as_bytes()).map_err(|e| SecretsError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if created {
        Ok((secrets, true))
    } else {
        Ok((ApiSecrets::load(path)?, false))
    }
}
