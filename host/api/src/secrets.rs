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

/// Makes sure the API has secret hashes to check against, and returns the
/// path of a secrets file it generated (so `ward serve` can say where the
/// secrets are), if it generated one.
///
/// - Hashes in `[api]` win and are copied into the store.
/// - Otherwise hashes already in the store are kept.
/// - Otherwise `<data_dir>/api-secrets.toml` is read if present, or written
///   with two fresh secrets (mode 0600), and its hashes are stored.
pub async fn ensure_api_secrets(daemon: &Daemon) -> Result<Option<PathBuf>, SecretsError> {
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
        return Ok(None);
    }
    let stored = daemon.store.api_secret_hashes().await?;
    if stored.contains_key("user") && stored.contains_key("organization") {
        return Ok(None);
    }
    let path = daemon.config.data_dir.join(SECRETS_FILE);
    let (secrets, generated) = if path.exists() {
        (ApiSecrets::load(&path)?, None)
    } else {
        let secrets = ApiSecrets::generate();
        write_private(&path, &secrets)?;
        (secrets, Some(path))
    };
    daemon
        .store
        .set_api_secret_hash("user", &sha256_hex(&secrets.user))
        .await?;
    daemon
        .store
        .set_api_secret_hash("organization", &sha256_hex(&secrets.organization))
        .await?;
    Ok(generated)
}

fn write_private(path: &Path, secrets: &ApiSecrets) -> Result<(), SecretsError> {
    use std::io::Write;
    let err = |e: std::io::Error| SecretsError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let text = format!(
        "# Ward API secrets. Send them as `Authorization: User <user>, Organization <organization>`.\n\
         # The daemon keeps only their SHA-256; keep this file private.\n\
         user = \"{}\"\norganization = \"{}\"\n",
        secrets.user, secrets.organization
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)
}
