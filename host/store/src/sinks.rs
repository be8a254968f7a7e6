//! Sink delivery state: events in ingestion order, one cursor per sink,
//! the sink's sealed secret.
//!
//! The delivery guarantee lives in [`Store::ack_sink`]: a sink's cursor only
//! moves after the sink acknowledged every event up to it, so a crash between
//! sending and acknowledging sends those events again (at least once) and
//! never skips one.

use sqlx::AssertSqlSafe;

use crate::ingest::{EVENT_COLUMNS, event_from_row};
use crate::{Store, StoreError, StoreRow, StoredEvent, col, key, now_ms, to_i64, to_u64};

/// A stored event with its position in the ingestion order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencedEvent {
    /// Ingestion sequence: strictly increasing in commit order, never reused.
    pub seq: i64,
    /// The event.
    pub event: StoredEvent,
}

/// Which events, in ingestion order, [`Store::events_after_seq`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqQuery {
    /// Only events with a sequence strictly above this.
    pub after_seq: i64,
    /// Only these instances (empty: every instance).
    pub instances: Vec<String>,
    /// Only events with `time_ms >= since_ms`.
    pub since_ms: Option<i64>,
    /// Most events returned (at least 1).
    pub limit: u32,
}

/// Delivery state of a sink, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkState {
    /// The sink's name in `ward.toml`.
    pub name: String,
    /// Highest ingestion sequence the sink acknowledged.
    pub cursor_seq: i64,
    /// Events the sink acknowledged (duplicates after a crash count again).
    pub delivered: u64,
    /// The sink refused a batch permanently; delivery holds at the cursor.
    pub dead_letter: bool,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_ms: Option<i64>,
    /// When the sink last acknowledged a batch.
    pub last_success_ms: Option<i64>,
}

/// How far a sink is behind the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkLag {
    /// Events stored after the sink's cursor (instance filter applied).
    pub events: u64,
    /// When the oldest of them was stored.
    pub oldest_ingested_ms: Option<i64>,
}

/// Associated-data label of a sink secret: never an instance id (those hold
/// no NUL), so a sink's sealed secret cannot be replayed as credentials.
fn secret_label(name: &str) -> String {
    format!("sink\0{name}")
}

fn instance_clause(sql: &mut String, first: usize, instances: &[String]) {
    if instances.is_empty() {
        return;
    }
    let params: Vec<String> = (0..instances.len())
        .map(|i| format!("${}", first + i))
        .collect();
    sql.push_str(&format!(" AND instance_id IN ({})", params.join(", ")));
}

fn state_from_row<R: StoreRow>(row: &R) -> Result<SinkState, StoreError> {
    let state: String = col(row, "state")?;
    Ok(SinkState {
        name: col(row, "name")?,
        cursor_seq: col(row, "cursor_seq")?,
        delivered: to_u64(col(row, "delivered")?),
        dead_letter: state == "dead_letter",
        last_error: col(row, "last_error")?,
        last_error_ms: col(row, "last_error_ms")?,
        last_success_ms: col(row, "last_success_ms")?,
    })
}

impl Store {
    /// Events in ingestion order after `q.after_seq`, filtered by `q`.
    pub async fn events_after_seq(&self, q: &SeqQuery) -> Result<Vec<SequencedEvent>, StoreError> {
        let mut sql = format!("SELECT seq, {EVENT_COLUMNS} FROM events WHERE seq > $1");
        let mut next = 2;
        if q.since_ms.is_some() {
            sql.push_str(" AND time_ms >= $2");
            next = 3;
        }
        instance_clause(&mut sql, next, &q.instances);
        next += q.instances.len();
        sql.push_str(&format!(" ORDER BY seq LIMIT ${next}"));
        dispatch!(self, p => {
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(q.after_seq);
            if let Some(since) = q.since_ms {
                query = query.bind(since);
            }
            for id in &q.instances {
                query = query.bind(id.as_str());
            }
            let rows = query
                .bind(i64::from(q.limit.max(1)))
                .fetch_all(p)
                .await
                .map_err(StoreError::db("reading events in ingestion order"))?;
            rows.iter()
                .map(|row| {
                    Ok(SequencedEvent {
                        seq: col(row, "seq")?,
                        event: event_from_row(row)?,
                    })
                })
                .collect()
        })
    }

    /// The sink's delivery state, created (cursor 0: everything stored is
    /// still to deliver) on first use.
    pub async fn sink_state(&self, name: &str) -> Result<SinkState, StoreError> {
        let action = "reading a sink's delivery state";
        dispatch!(self, p => {
            sqlx::query(
                "INSERT INTO sinks (name, updated_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(now_ms())
            .execute(p)
            .await
            .map_err(StoreError::db(action))?;
            let row = sqlx::query(
                "SELECT name, cursor_seq, delivered, state, last_error, last_error_ms, \
                 last_success_ms FROM sinks WHERE name = $1",
            )
            .bind(name)
            .fetch_one(p)
            .await
            .map_err(StoreError::db(action))?;
            state_from_row(&row)
        })
    }

    /// Records that the sink acknowledged every event up to `cursor_seq`,
    /// `delivered` of which it received. The cursor never moves backwards:
    /// an acknowledgement older than the stored cursor changes nothing but
    /// the counts.
    pub async fn ack_sink(
        &self,
        name: &str,
        cursor_seq: i64,
        delivered: u64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        // `CASE` rather than SQLite's two-argument `MAX` or PostgreSQL's
        // `GREATEST`: the same statement on both backends.
        dispatch!(self, p => sqlx::query(
            "UPDATE sinks SET cursor_seq = CASE WHEN cursor_seq > $2 THEN cursor_seq ELSE $2 END, \
             delivered = delivered + $3, last_success_ms = $4, updated_ms = $4, \
             last_error = NULL, last_error_ms = NULL WHERE name = $1",
        )
        .bind(name)
        .bind(cursor_seq)
        .bind(to_i64(delivered))
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))
        .map_err(StoreError::db("recording a sink's acknowledgement"))?;
        Ok(())
    }

    /// Records a failed delivery; `dead_letter` holds the sink until
    /// [`Store::resume_sink`]. The cursor does not move.
    pub async fn sink_failed(
        &self,
        name: &str,
        error: &str,
        dead_letter: bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let sql = if dead_letter {
            "UPDATE sinks SET last_error = $2, last_error_ms = $3, updated_ms = $3, \
             state = 'dead_letter' WHERE name = $1"
        } else {
            "UPDATE sinks SET last_error = $2, last_error_ms = $3, updated_ms = $3 WHERE name = $1"
        };
        dispatch!(self, p => sqlx::query(sql)
            .bind(name)
            .bind(error)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(StoreError::db("recording a sink's delivery error"))?;
        Ok(())
    }

    /// Takes the sink out of dead-letter: delivery retries the held batch.
    /// Returns whether the sink was in dead-letter.
    pub async fn resume_sink(&self, name: &str) -> Result<bool, StoreError> {
        let affected = dispatch!(self, p => sqlx::query(
            "UPDATE sinks SET state = 'active', updated_ms = $2 \
             WHERE name = $1 AND state = 'dead_letter'",
        )
        .bind(name)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|d| d.rows_affected()))
        .map_err(StoreError::db("resuming a sink"))?;
        Ok(affected > 0)
    }

    /// How many events (of `instances`, empty: all) are stored after
    /// `cursor_seq`, and when the oldest of them was stored.
    pub async fn sink_lag(
        &self,
        cursor_seq: i64,
        instances: &[String],
    ) -> Result<SinkLag, StoreError> {
        let mut sql = "SELECT COUNT(*) AS n, MIN(ingested_ms) AS oldest FROM events WHERE seq > $1"
            .to_owned();
        instance_clause(&mut sql, 2, instances);
        dispatch!(self, p => {
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(cursor_seq);
            for id in instances {
                query = query.bind(id.as_str());
            }
            let row = query
                .fetch_one(p)
                .await
                .map_err(StoreError::db("measuring a sink's lag"))?;
            let n: i64 = col(&row, "n")?;
            Ok(SinkLag {
                events: to_u64(n),
                oldest_ingested_ms: col(&row, "oldest")?,
            })
        })
    }

    /// Stores (replaces) the sink's secret, sealed with the master key and
    /// bound to the sink's name.
    pub async fn put_sink_secret(&self, name: &str, secret: &str) -> Result<(), StoreError> {
        let (nonce, ciphertext) =
            key::seal(&self.inner.cipher, &secret_label(name), secret.as_bytes()).map_err(
                |_| StoreError::SinkSecret {
                    name: name.to_owned(),
                    what: "encrypted",
                },
            )?;
        dispatch!(self, p => sqlx::query(
            "INSERT INTO sink_secrets (name, nonce, ciphertext, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET nonce = excluded.nonce, \
             ciphertext = excluded.ciphertext, updated_ms = excluded.updated_ms",
        )
        .bind(name)
        .bind(nonce)
        .bind(ciphertext)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|_| ()))
        .map_err(StoreError::db("storing a sink secret"))?;
        Ok(())
    }

    /// The sink's decrypted secret; `None` if the operator has not set it.
    pub async fn sink_secret(&self, name: &str) -> Result<Option<String>, StoreError> {
        let sealed: Option<(Vec<u8>, Vec<u8>)> = dispatch!(self, p => {
            let row = sqlx::query("SELECT nonce, ciphertext FROM sink_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(p)
                .await
                .map_err(StoreError::db("reading a sink secret"))?;
            match row {
                Some(row) => Some((col(&row, "nonce")?, col(&row, "ciphertext")?)),
                None => None,
            }
        });
        let Some((nonce, ciphertext)) = sealed else {
            return Ok(None);
        };
        let fail = || StoreError::SinkSecret {
            name: name.to_owned(),
            what: "decrypted",
        };
        let plaintext = key::open(&self.inner.cipher, &secret_label(name), &nonce, &ciphertext)
            .map_err(|_| fail())?;
        String::from_utf8(plaintext).map(Some).map_err(|_| fail())
    }
}
