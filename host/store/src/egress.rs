//! The egress log: every outbound request a plugin made or attempted.

use sqlx::AssertSqlSafe;

use crate::model::page_limit;
use crate::{
    Backend, EgressRecord, Store, StoreError, StoreRow, col, to_i64, to_u64, values_clause,
};

const EGRESS_CHUNK_ROWS: usize = 500;
const EGRESS_ROW_PARAMS: usize = 13;
const _: () = assert!(EGRESS_CHUNK_ROWS * EGRESS_ROW_PARAMS < crate::MAX_BOUND_PARAMS);

fn insert_egress_sql(backend: Backend, rows: usize) -> String {
    let mut sql = String::with_capacity(256 + rows * 64);
    sql.push_str(
        "INSERT INTO egress (instance_id, plugin_key, plugin_call, at_ms, method, url, allowed, \
         reason, grant_name, http_status, bytes_sent, bytes_received, latency_ms) VALUES ",
    );
    values_clause(backend, &mut sql, rows, EGRESS_ROW_PARAMS);
    sql
}

impl Store {
    /// Appends egress records in one transaction. Records need not belong
    /// to an existing instance (see the schema), so a batch is never refused
    /// for naming one that was just deleted.
    pub async fn append_egress(&self, records: &[EgressRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let action = "appending to the egress log";
        let _turn = self.write_turn().await;
        dispatch!(self, p => {
            let mut tx = p.begin().await.map_err(StoreError::db(action))?;
            for chunk in records.chunks(EGRESS_CHUNK_ROWS) {
                let mut query = sqlx::query(AssertSqlSafe(insert_egress_sql(self.backend(), chunk.len())))
                    .persistent(chunk.len() == EGRESS_CHUNK_ROWS || chunk.len() == 1);
                for r in chunk {
                    query = query
                        .bind(r.instance_id.as_str())
                        .bind(r.plugin_key.as_str())
                        .bind(r.call.as_str())
                        .bind(r.at_ms)
                        .bind(r.method.as_str())
                        .bind(r.url.as_str())
                        .bind(r.allowed)
                        .bind(r.reason.as_deref())
                        .bind(r.grant.as_deref())
                        .bind(r.status.map(i32::from))
                        .bind(to_i64(r.bytes_sent))
                        .bind(to_i64(r.bytes_received))
                        .bind(to_i64(r.latency_ms));
                }
                query
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
            }
            tx.commit().await.map_err(StoreError::db(action))
        })
    }

    /// The instance's most recent egress records, newest first. `limit` is
    /// capped at [`crate::MAX_PAGE`]; 0 means [`crate::DEFAULT_PAGE`].
    pub async fn egress(
        &self,
        instance_id: &str,
        limit: u32,
    ) -> Result<Vec<EgressRecord>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query(
                "SELECT instance_id, plugin_key, plugin_call, at_ms, method, url, allowed, reason, \
                 grant_name, http_status, bytes_sent, bytes_received, latency_ms \
                 FROM egress WHERE instance_id = $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
            )
            .bind(instance_id)
            .bind(page_limit(limit))
            .fetch_all(p)
            .await
            .map_err(StoreError::db("reading the egress log"))?;
            rows.iter().map(egress_from_row).collect()
        })
    }

    /// One page of the instance's egress log, newest first, after the
    /// position `before` (`(at_ms, row id)` of the last record of the
    /// previous page). Each record comes with its row id, the second half
    /// of the position. `limit` as in [`Store::egress`].
    pub async fn egress_page(
        &self,
        instance_id: &str,
        limit: u32,
        before: Option<(i64, i64)>,
    ) -> Result<Vec<(i64, EgressRecord)>, StoreError> {
        const COLUMNS: &str = "SELECT id, instance_id, plugin_key, plugin_call, at_ms, method, \
             url, allowed, reason, grant_name, http_status, bytes_sent, bytes_received, \
             latency_ms FROM egress WHERE instance_id = $1";
        let sql = match before {
            Some(_) => format!(
                "{COLUMNS} AND (at_ms < $2 OR (at_ms = $2 AND id < $3)) \
                 ORDER BY at_ms DESC, id DESC LIMIT $4"
            ),
            None => format!("{COLUMNS} ORDER BY at_ms DESC, id DESC LIMIT $2"),
        };
        dispatch!(self, p => {
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(instance_id);
            if let Some((at_ms, id)) = before {
                query = query.bind(at_ms).bind(id);
            }
            let rows = query
                .bind(page_limit(limit))
                .fetch_all(p)
                .await
                .map_err(StoreError::db("reading a page of the egress log"))?;
            rows.iter()
                .map(|row| Ok((col(row, "id")?, egress_from_row(row)?)))
                .collect()
        })
    }

    /// Deletes egress records older than `before_ms` across all instances;
    /// returns how many went. The log grows with every request, so the
    /// daemon should call this periodically with its retention window.
    pub async fn prune_egress(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = dispatch!(self, p => sqlx::query("DELETE FROM egress WHERE at_ms < $1")
            .bind(before_ms)
            .execute(p).await.map(|d| d.rows_affected()))
        .map_err(StoreError::db("pruning the egress log"))?;
        Ok(done)
    }
}

fn egress_from_row<R: StoreRow>(row: &R) -> Result<EgressRecord, StoreError> {
    let status: Option<i32> = col(row, "http_status")?;
    Ok(EgressRecord {
        instance_id: col(row, "instance_id")?,
        plugin_key: col(row, "plugin_key")?,
        call: col(row, "plugin_call")?,
        at_ms: col(row, "at_ms")?,
        method: col(row, "method")?,
        url: col(row, "url")?,
        allowed: col(row, "allowed")?,
        reason: col(row, "reason")?,
        grant: col(row, "grant_name")?,
        // Only u16 values are ever written.
        status: status.and_then(|s| u16::try_from(s).ok()),
        bytes_sent: to_u64(col(row, "bytes_sent")?),
        bytes_received: to_u64(col(row, "bytes_received")?),
        latency_ms: to_u64(col(row, "latency_ms")?),
    })
}
