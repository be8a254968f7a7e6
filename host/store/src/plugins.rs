//! Plugin approvals: which versions of a plugin the operator (or the first
//! install) accepted, with the permissions accepted at the time.

use crate::{Store, StoreError, StoreRow, col};

/// An approved plugin version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginApproval {
    /// Plugin key.
    pub plugin_key: String,
    /// SHA-256 (hex) of the approved component file.
    pub digest: String,
    /// Its version.
    pub version: String,
    /// The approved manifest, as JSON.
    pub permissions_json: String,
    /// `first-install` or `operator`.
    pub approved_by: String,
    /// When (ms since the Unix epoch).
    pub approved_ms: i64,
}

fn from_row<R: StoreRow>(row: &R) -> Result<PluginApproval, StoreError> {
    Ok(PluginApproval {
        plugin_key: col(row, "plugin_key")?,
        digest: col(row, "digest")?,
        version: col(row, "version")?,
        permissions_json: col(row, "permissions_json")?,
        approved_by: col(row, "approved_by")?,
        approved_ms: col(row, "approved_ms")?,
    })
}

impl Store {
    /// Records an approval (idempotent per key and digest: approving again
    /// refreshes the time and who approved).
    pub async fn approve_plugin(
        &self,
        plugin_key: &str,
        digest: &str,
        version: &str,
        permissions_json: &str,
        approved_by: &str,
    ) -> Result<PluginApproval, StoreError> {
        let action = "recording a plugin approval";
        let now = crate::now_ms();
        dispatch!(self, p => sqlx::query(
            "INSERT INTO plugin_approvals (plugin_key, digest, version, permissions_json, approved_by, approved_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (plugin_key, digest) DO UPDATE SET approved_by = excluded.approved_by, \
             approved_ms = excluded.approved_ms, permissions_json = excluded.permissions_json",
        )
        .bind(plugin_key)
        .bind(digest)
        .bind(version)
        .bind(permissions_json)
        .bind(approved_by)
        .bind(now)
        .execute(p).await.map(|d| d.rows_affected()))
        .map_err(StoreError::db(action))?;
        Ok(PluginApproval {
            plugin_key: plugin_key.into(),
            digest: digest.into(),
            version: version.into(),
            permissions_json: permissions_json.into(),
            approved_by: approved_by.into(),
            approved_ms: now,
        })
    }

    /// Every approval of a key, newest first.
    pub async fn plugin_approvals(
        &self,
        plugin_key: &str,
    ) -> Result<Vec<PluginApproval>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query(
                "SELECT plugin_key, digest, version, permissions_json, approved_by, approved_ms \
                 FROM plugin_approvals WHERE plugin_key = $1 ORDER BY approved_ms DESC, rowid DESC",
            )
            .bind(plugin_key)
            .fetch_all(p)
            .await
            .map_err(StoreError::db("reading plugin approvals"))?;
            rows.iter().map(from_row).collect()
        })
    }

    /// The approval of one exact component, if any.
    pub async fn plugin_approval(
        &self,
        plugin_key: &str,
        digest: &str,
    ) -> Result<Option<PluginApproval>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(
                "SELECT plugin_key, digest, version, permissions_json, approved_by, approved_ms \
                 FROM plugin_approvals WHERE plugin_key = $1 AND digest = $2",
            )
            .bind(plugin_key)
            .bind(digest)
            .fetch_optional(p)
            .await
            .map_err(StoreError::db("reading a plugin approval"))?;
            row.as_ref().map(from_row).transpose()
        })
    }
}
