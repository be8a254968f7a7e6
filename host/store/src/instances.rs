//! Instance rows.

use std::collections::BTreeMap;

use rand::RngCore;

use crate::{Instance, InstanceStatus, NewInstance, Store, StoreError, StoreRow, col, now_ms};

macro_rules! select_instance {
    () => {
        "SELECT i.id, i.plugin_key, i.plugin_version, i.name, i.config_json, i.tags_json, \
         i.status, i.status_message, i.created_ms, i.last_success_ms, \
         c.updated_ms AS credentials_updated_ms \
         FROM instances i LEFT JOIN credentials c ON c.instance_id = i.id"
    };
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Creates an instance in status `connecting`, with a fresh random id.
    pub async fn create_instance(&self, new: &NewInstance) -> Result<Instance, StoreError> {
        let instance = Instance {
            id: new_id(),
            plugin_key: new.plugin_key.clone(),
            plugin_version: new.plugin_version.clone(),
            name: new.name.clone(),
            config: new.config.clone(),
            tags: new.tags.clone(),
            status: InstanceStatus::Connecting,
            status_message: None,
            created_ms: now_ms(),
            last_success_ms: None,
            credentials_updated_ms: None,
        };
        // Serializing string maps and lists cannot fail.
        let config_json = serde_json::to_string(&instance.config).unwrap_or_default();
        let tags_json = serde_json::to_string(&instance.tags).unwrap_or_default();
        dispatch!(self, p => sqlx::query(
            "INSERT INTO instances (id, plugin_key, plugin_version, name, config_json, tags_json, \
             status, status_message, created_ms, last_success_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, NULL)",
        )
        .bind(&instance.id)
        .bind(&instance.plugin_key)
        .bind(&instance.plugin_version)
        .bind(&instance.name)
        .bind(config_json)
        .bind(tags_json)
        .bind(instance.status.as_str())
        .bind(instance.created_ms)
        .execute(p).await.map(|d| d.rows_affected()))
        .map_err(StoreError::db("creating an instance"))?;
        Ok(instance)
    }

    /// The instance with this id, if any.
    pub async fn instance(&self, id: &str) -> Result<Option<Instance>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(concat!(select_instance!(), " WHERE i.id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await
                .map_err(StoreError::db("reading an instance"))?;
            row.as_ref().map(instance_from_row).transpose()
        })
    }

    /// Every instance, oldest first.
    pub async fn instances(&self) -> Result<Vec<Instance>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query(concat!(select_instance!(), " ORDER BY i.created_ms, i.id"))
                .fetch_all(p)
                .await
                .map_err(StoreError::db("listing instances"))?;
            rows.iter().map(instance_from_row).collect()
        })
    }

    /// Sets the status and its message (cleared when `None`).
    pub async fn set_status(
        &self,
        id: &str,
        status: InstanceStatus,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        let done =
            dispatch!(self, p => sqlx::query("UPDATE instances SET status = $1, status_message = $2 WHERE id = $3")
                .bind(status.as_str())
                .bind(message)
                .bind(id)
                .execute(p).await.map(|d| d.rows_affected()))
                .map_err(StoreError::db("updating an instance's status"))?;
        found(done, id)
    }

    /// Records that a fetch succeeded at `at_ms`.
    pub async fn record_success(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        let done = dispatch!(self, p => sqlx::query("UPDATE instances SET last_success_ms = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(id)
            .execute(p).await.map(|d| d.rows_affected()))
            .map_err(StoreError::db("recording a successful fetch"))?;
        found(done, id)
    }

    /// Deletes an instance with its credentials, cursors, events, users and
    /// egress records.
    pub async fn delete_instance(&self, id: &str) -> Result<(), StoreError> {
        let action = "deleting an instance";
        let _turn = self.write_turn().await;
        dispatch!(self, p => {
            let mut tx = p.begin().await.map_err(StoreError::db(action))?;
            // Credentials, cursors, events and users go by ON DELETE CASCADE.
            let done = sqlx::query("DELETE FROM instances WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            found(done.rows_affected(), id)?;
            // Egress has no foreign key (see the migration), so clear it by hand.
            sqlx::query("DELETE FROM egress WHERE instance_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            tx.commit().await.map_err(StoreError::db(action))
        })
    }
}

fn found(rows: u64, id: &str) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::InstanceNotFound { id: id.to_owned() })
    } else {
        Ok(())
    }
}

fn instance_from_row<R: StoreRow>(row: &R) -> Result<Instance, StoreError> {
    let id: String = col(row, "id")?;
    let corrupt = |what: &'static str, detail: String| StoreError::Corrupt {
        instance_id: id.clone(),
        what,
        detail,
    };
    let config: BTreeMap<String, String> =
        serde_json::from_str(&col::<String, _>(row, "config_json")?)
            .map_err(|e| corrupt("config", e.to_string()))?;
    let tags: Vec<String> = serde_json::from_str(&col::<String, _>(row, "tags_json")?)
        .map_err(|e| corrupt("tags", e.to_string()))?;
    let status = col::<String, _>(row, "status")?
        .parse::<InstanceStatus>()
        .map_err(|e| corrupt("status", e.to_string()))?;
    Ok(Instance {
        plugin_key: col(row, "plugin_key")?,
        plugin_version: col(row, "plugin_version")?,
        name: col(row, "name")?,
        config,
        tags,
        status,
        status_message: col(row, "status_message")?,
        created_ms: col(row, "created_ms")?,
        last_success_ms: col(row, "last_success_ms")?,
        credentials_updated_ms: col(row, "credentials_updated_ms")?,
        id,
    })
}
