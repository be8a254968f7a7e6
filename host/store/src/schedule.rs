//! What the scheduler keeps about each instance between daemon runs.

use crate::{Store, StoreError};

impl Store {
    /// Marks an instance as stopped until the operator acts (`true`), or
    /// releases it (`false`).
    pub async fn set_halted(&self, id: &str, halted: bool) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query("UPDATE instances SET halted = $1 WHERE id = $2")
            .bind(halted)
            .bind(id)
            .execute(p).await.map(|d| d.rows_affected()))
        .map_err(StoreError::db("updating an instance's halted flag"))?;
        Ok(())
    }

    /// Whether the instance waits for the operator.
    pub async fn is_halted(&self, id: &str) -> Result<bool, StoreError> {
        let halted: Option<bool> =
            dispatch!(self, p => sqlx::query_scalar("SELECT halted FROM instances WHERE id = $1")
            .bind(id)
            .fetch_optional(p).await)
            .map_err(StoreError::db("reading an instance's halted flag"))?;
        Ok(halted.unwrap_or(false))
    }

    /// Ids of the instances a starting daemon resumes: not disabled and not
    /// waiting for the operator.
    pub async fn resumable_instances(&self) -> Result<Vec<String>, StoreError> {
        dispatch!(self, p => sqlx::query_scalar(
            "SELECT id FROM instances WHERE status <> 'disabled' AND disabled = FALSE AND halted = FALSE \
             ORDER BY created_ms, id",
        )
        .fetch_all(p).await)
        .map_err(StoreError::db("listing instances to resume"))
    }

    /// Records that the user directory was read to the end at `at_ms`.
    pub async fn set_users_synced(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query("UPDATE instances SET users_synced_ms = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(id)
            .execute(p).await.map(|d| d.rows_affected()))
        .map_err(StoreError::db("recording a user sync"))?;
        Ok(())
    }

    /// When the user directory was last read to the end.
    pub async fn users_synced_ms(&self, id: &str) -> Result<Option<i64>, StoreError> {
        let v: Option<Option<i64>> =
            dispatch!(self, p => sqlx::query_scalar("SELECT users_synced_ms FROM instances WHERE id = $1")
                .bind(id)
                .fetch_optional(p).await)
                .map_err(StoreError::db("reading an instance's user sync time"))?;
        Ok(v.flatten())
    }
}
