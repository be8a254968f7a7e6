//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong in the store. Each message says what failed
/// and what the operator (or caller) should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error(
        "could not open the database at {path}: {source}; check that the directory exists and is writable by the daemon"
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// The underlying driver error.
        #[source]
        source: sqlx::Error,
    },

    /// The PostgreSQL server could not be reached or refused the login.
    #[error(
        "could not connect to the database at {url}: {source}; check that PostgreSQL is running, that the URL's host, port, user, password and database are right, and that the role may connect"
    )]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The underlying driver error.
        #[source]
        source: sqlx::Error,
    },

    /// `store.url` names an engine Ward does not support.
    #[error(
        "store.url {url:?} is not supported: use sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
    )]
    UnsupportedUrl {
        /// The URL, password redacted.
        url: String,
    },

    /// Schema migrations failed to apply.
    #[error(
        "could not migrate the database schema: {source}; the file may have been written by a newer Ward (upgrade Ward) or be damaged (restore it from a backup)"
    )]
    Migrate {
        /// The underlying migration error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A query failed.
    #[error(
        "database error while {action}: {source}; if this persists, check disk space and that no other process holds the database locked"
    )]
    Database {
        /// What the store was doing, e.g. "committing an audit page".
        action: &'static str,
        /// The underlying driver error.
        #[source]
        source: sqlx::Error,
    },

    /// A row was refused by a schema constraint (e.g. an empty event id).
    #[error(
        "the database refused the data while {action}: {detail}; the plugin produced an invalid record (fix the plugin), nothing from this batch was stored"
    )]
    Rejected {
        /// What the store was doing.
        action: &'static str,
        /// The constraint that failed, as reported by the database.
        detail: String,
    },

    /// A page commit presented a lease another daemon has since taken over.
    #[error(
        "daemon {owner} no longer holds the lease of instance {instance_id} (epoch {epoch}): another daemon took the instance over after the lease expired; nothing was stored, and the new holder continues from the stored cursor (if this repeats, raise scheduler.lease_ttl_secs or find what stalls the daemon)"
    )]
    Fenced {
        /// The instance.
        instance_id: String,
        /// The daemon that lost the lease.
        owner: String,
        /// The epoch it held.
        epoch: i64,
    },

    /// No instance has this id.
    #[error("no instance with id {id}; list instances to find the right id")]
    InstanceNotFound {
        /// The id that was looked up.
        id: String,
    },

    /// Stored credentials failed authentication on decryption.
    #[error(
        "the credentials of instance {instance_id} can't be decrypted (wrong master key or tampered row); reconnect the instance to store new credentials, or start Ward with the master key it was using"
    )]
    Decrypt {
        /// The instance whose credentials failed to decrypt.
        instance_id: String,
    },

    /// Encrypting credentials failed (should not happen with a valid key).
    #[error(
        "could not encrypt the credentials of instance {instance_id}; retry, and report a bug if it persists"
    )]
    Encrypt {
        /// The instance whose credentials were being stored.
        instance_id: String,
    },

    /// A master key file exists but does not hold a valid key, or cannot be read/written.
    #[error(
        "master key file {path}: {reason}; restore the original key file (without it stored credentials are lost), or move it away to generate a new key and reconnect every instance"
    )]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A master key from the environment is missing or invalid.
    #[error(
        "master key in environment variable {var}: {reason}; set it to the base64 encoding of exactly 32 bytes (e.g. `openssl rand -base64 32`)"
    )]
    KeyEnv {
        /// The environment variable.
        var: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A master key was given with the wrong length.
    #[error(
        "a master key must be exactly 32 bytes, got {len}; generate one with `openssl rand -base64 32`"
    )]
    KeyLength {
        /// The length that was given.
        len: usize,
    },

    /// A status string is not one of the known statuses.
    #[error(
        "unknown instance status {value:?}; expected one of connecting, connected, error, disabled"
    )]
    InvalidStatus {
        /// The string that failed to parse.
        value: String,
    },

    /// A sink's stored secret could not be sealed or opened.
    #[error(
        "the secret of sink `{name}` can't be {what} (wrong master key or tampered row); set it again with `ward sinks secret {name}`, or start Ward with the master key it was using"
    )]
    SinkSecret {
        /// The sink.
        name: String,
        /// "encrypted", "decrypted".
        what: &'static str,
    },

    /// A stored value could not be decoded (JSON columns, enums, ranges).
    #[error(
        "stored data is damaged: {what} of instance {instance_id}: {detail}; restore the database from a backup or recreate the instance"
    )]
    Corrupt {
        /// The instance the row belongs to.
        instance_id: String,
        /// Which value, e.g. "config".
        what: &'static str,
        /// The decoding error.
        detail: String,
    },
}

impl StoreError {
    /// Wraps a driver error, turning constraint violations into [`StoreError::Rejected`].
    pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| {
            if let sqlx::Error::Database(db) = &source {
                use sqlx::error::ErrorKind;
                if matches!(
                    db.kind(),
                    ErrorKind::CheckViolation | ErrorKind::NotNullViolation
                ) {
                    return StoreError::Rejected {
                        action,
                        detail: db.message().to_owned(),
                    };
                }
            }
            StoreError::Database { action, source }
        }
    }

    /// Like [`StoreError::db`], but a foreign-key violation means the
    /// instance the rows hang off does not exist.
    pub(crate) fn db_for(
        action: &'static str,
        instance_id: &str,
    ) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| {
            if let sqlx::Error::Database(db) = &source
                && db.is_foreign_key_violation()
            {
                return StoreError::InstanceNotFound {
                    id: instance_id.to_owned(),
                };
            }
            StoreError::db(action)(source)
        }
    }
}
