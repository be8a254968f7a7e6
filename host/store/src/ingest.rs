//! Cursors, audit events and directory users.

use std::borrow::Cow;
use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use crate::leases::check_fence;
use crate::model::page_limit;
use crate::{
    AUDIT_STREAM, Backend, EventOrder, EventQuery, Fence, NewEvent, NewUser, Store, StoreError,
    StoreRow, StoredEvent, StoredUser, USERS_STREAM, col, now_ms, to_i64, to_u64, values_clause,
};

/// Rows per multi-row INSERT. 500 rows × 14 parameters stays far below
/// SQLite's 32,766 and PostgreSQL's 65,535 bound-parameter limits while
/// amortising per-statement overhead.
const EVENT_CHUNK_ROWS: usize = 500;
const EVENT_ROW_PARAMS: usize = 14;
const USER_CHUNK_ROWS: usize = 500;
const USER_ROW_PARAMS: usize = 11;
const _: () = assert!(EVENT_CHUNK_ROWS * EVENT_ROW_PARAMS < crate::MAX_BOUND_PARAMS);
const _: () = assert!(USER_CHUNK_ROWS * USER_ROW_PARAMS < crate::MAX_BOUND_PARAMS);

/// PostgreSQL advisory lock key held by every transaction that inserts
/// events, so that `events.seq` grows in commit order (see the `0006_sinks`
/// migration). Any fixed 64-bit value unique to this purpose.
pub const EVENT_SEQ_LOCK: i64 = 0x7761_7264_5f73_6571; // "ward_seq"

pub(crate) const EVENT_COLUMNS: &str = "instance_id, event_id, time_ms, action, actor_id, actor_kind, \
     actor_name, actor_email, targets_json, ip, user_agent, outcome, raw_json, ingested_ms";

fn insert_events_sql(backend: Backend, rows: usize) -> String {
    let mut sql = String::with_capacity(128 + rows * 64);
    sql.push_str(
        "INSERT INTO events (instance_id, ingested_ms, event_id, time_ms, action, actor_id, \
         actor_kind, actor_name, actor_email, targets_json, ip, user_agent, outcome, raw_json) VALUES ",
    );
    values_clause(backend, &mut sql, rows, EVENT_ROW_PARAMS);
    sql.push_str(" ON CONFLICT (instance_id, time_ms, event_id) DO NOTHING");
    sql
}

/// The page without any event whose id appeared earlier in it: the first
/// one wins. The unique key is `(instance, time, event_id)` (see the
/// `0009_events_time_key` migration), so without this the same id at two
/// times within one page would be stored twice.
fn first_of_each_id(events: Vec<NewEvent>) -> Vec<NewEvent> {
    let keep: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(events.len());
        events
            .iter()
            .map(|e| seen.insert(e.event_id.as_str()))
            .collect()
    };
    events
        .into_iter()
        .zip(keep)
        .filter_map(|(e, keep)| keep.then_some(e))
        .collect()
}

fn upsert_users_sql(backend: Backend, rows: usize) -> String {
    let mut sql = String::with_capacity(256 + rows * 48);
    sql.push_str(
        "INSERT INTO users (instance_id, updated_ms, user_id, email, login, name, status, \
         is_admin, created_ms, last_login_ms, raw_json) VALUES ",
    );
    values_clause(backend, &mut sql, rows, USER_ROW_PARAMS);
    sql.push_str(
        " ON CONFLICT (instance_id, user_id) DO UPDATE SET \
         email = excluded.email, login = excluded.login, name = excluded.name, \
         status = excluded.status, is_admin = excluded.is_admin, \
         created_ms = excluded.created_ms, last_login_ms = excluded.last_login_ms, \
         raw_json = excluded.raw_json, updated_ms = excluded.updated_ms",
    );
    sql
}

/// Sets (or clears, when `None`) a cursor on `$conn`, a connection or
/// transaction of either backend. A macro because the SQL is the same for
/// both while the connection types are not.
macro_rules! write_cursor {
    ($conn:expr, $id:expr, $stream:expr, $cursor:expr, $action:expr) => {
        match $cursor {
            Some(cursor) => sqlx::query(
                "INSERT INTO cursors (instance_id, stream, cursor, updated_ms) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (instance_id, stream) DO UPDATE SET \
                 cursor = excluded.cursor, updated_ms = excluded.updated_ms",
            )
            .bind($id)
            .bind($stream)
            .bind(cursor)
            .bind(now_ms())
            .execute(&mut *$conn)
            .await
            .map(drop)
            .map_err(StoreError::db_for($action, $id)),
            None => sqlx::query("DELETE FROM cursors WHERE instance_id = $1 AND stream = $2")
                .bind($id)
                .bind($stream)
                .execute(&mut *$conn)
                .await
                .map(drop)
                .map_err(StoreError::db($action)),
        }
    };
}

impl Store {
    /// The stored cursor of `stream` (e.g. [`AUDIT_STREAM`]) for the instance.
    pub async fn cursor(&self, id: &str, stream: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query("SELECT cursor FROM cursors WHERE instance_id = $1 AND stream = $2")
                .bind(id)
                .bind(stream)
                .fetch_optional(p)
                .await
                .map_err(StoreError::db("reading a cursor"))?;
            row.map(|r| col(&r, "cursor")).transpose()
        })
    }

    /// Sets (or clears, when `None`) a cursor on its own, e.g. to restart a
    /// backfill. Ingestion should use the `commit_*_page` methods instead.
    pub async fn set_cursor(
        &self,
        id: &str,
        stream: &str,
        cursor: Option<&str>,
    ) -> Result<(), StoreError> {
        let action = "setting a cursor";
        dispatch!(self, p => {
            let mut conn = p.acquire().await.map_err(StoreError::db(action))?;
            write_cursor!(conn, id, stream, cursor, action)
        })
    }

    /// Stores a page of audit events and the cursor that follows it in one
    /// transaction: either both land or neither does. Events already stored
    /// (same instance, time and `event_id`: a re-fetched page carries its
    /// events with their times) are skipped, so committing the same page
    /// again is harmless, and an id repeated within the page is stored once.
    /// Returns how many events were new.
    ///
    /// Fails with [`StoreError::Rejected`] (storing nothing) if any event is
    /// invalid, e.g. has an empty `event_id`.
    ///
    /// Takes the page as `Vec<NewEvent>` (its strings are moved into the
    /// statement: what ingestion passes) or as `&[NewEvent]`/`&Vec` (copied
    /// once, as binding borrowed strings would).
    pub async fn commit_audit_page<'e>(
        &self,
        id: &str,
        events: impl Into<Cow<'e, [NewEvent]>>,
        cursor: &str,
    ) -> Result<u64, StoreError> {
        self.commit_audit(None, id, events.into(), cursor).await
    }

    /// [`Store::commit_audit_page`] by the holder of the instance's lease:
    /// fails with [`StoreError::Fenced`], storing nothing and leaving the
    /// cursor where it was, once another daemon has claimed the instance.
    pub async fn commit_audit_page_fenced<'e>(
        &self,
        fence: &Fence,
        id: &str,
        events: impl Into<Cow<'e, [NewEvent]>>,
        cursor: &str,
    ) -> Result<u64, StoreError> {
        self.commit_audit(Some(fence), id, events.into(), cursor)
            .await
    }

    async fn commit_audit(
        &self,
        fence: Option<&Fence>,
        id: &str,
        events: Cow<'_, [NewEvent]>,
        cursor: &str,
    ) -> Result<u64, StoreError> {
        let action = "committing an audit page";
        let _turn = self.write_turn().await;
        dispatch!(self, p => {
            let mut tx = p.begin().await.map_err(StoreError::db(action))?;
            if self.backend() == Backend::Postgres && !events.is_empty() {
                // Event sequence numbers must follow commit order (sinks read
                // `seq > cursor`): one event-inserting transaction at a time.
                // Taken first, before any row lock, so it cannot deadlock.
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(EVENT_SEQ_LOCK)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
            }
            check_fence!(self.backend(), tx, id, fence, action);
            // Write first: a deferred SQLite transaction that reads and then
            // writes cannot wait on the busy timeout if another writer committed
            // in between; starting with a write takes the lock up front. The
            // cursor's foreign key also reports a missing instance.
            write_cursor!(tx, id, AUDIT_STREAM, Some(cursor), action)?;

            let ingested_ms = now_ms();
            let mut inserted = 0;
            // Owned rows are bound by moving their strings into the query;
            // borrowed ones are copied once, here, as binding `&str` would.
            let mut rows = first_of_each_id(events.into_owned()).into_iter().peekable();
            while rows.peek().is_some() {
                let chunk: Vec<NewEvent> = rows.by_ref().take(EVENT_CHUNK_ROWS).collect();
                // Only full chunks share one SQL text; caching every odd-sized
                // tail statement would evict the useful ones.
                let persistent = chunk.len() == EVENT_CHUNK_ROWS;
                let mut query =
                    sqlx::query(AssertSqlSafe(insert_events_sql(self.backend(), chunk.len()))).persistent(persistent);
                for row in chunk {
                    let NewEvent {
                        event_id,
                        time_ms,
                        action,
                        actor_id,
                        actor_kind,
                        actor_name,
                        actor_email,
                        targets_json,
                        ip,
                        user_agent,
                        outcome,
                        raw_json,
                    } = row;
                    query = query
                        .bind(id)
                        .bind(ingested_ms)
                        .bind(event_id)
                        .bind(time_ms)
                        .bind(action)
                        .bind(actor_id)
                        .bind(actor_kind)
                        .bind(actor_name)
                        .bind(actor_email)
                        .bind(targets_json)
                        .bind(ip)
                        .bind(user_agent)
                        .bind(outcome)
                        .bind(raw_json);
                }
                let done = query
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db_for(action, id))?;
                inserted += done.rows_affected();
            }
            if inserted > 0 {
                sqlx::query("UPDATE instances SET event_count = event_count + $1 WHERE id = $2")
                    .bind(to_i64(inserted))
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(action))?;
            }
            tx.commit().await.map_err(StoreError::db(action))?;
            self.wal_written();
            Ok(inserted)
        })
    }

    /// Upserts a page of users (keyed by `(instance, user_id)`) and sets the
    /// users cursor, or clears it when `None` (the listing is complete), in
    /// one transaction. Returns how many users were inserted or updated.
    ///
    /// If a page lists the same user twice, the later entry wins.
    pub async fn commit_users_page(
        &self,
        id: &str,
        users: &[NewUser],
        cursor: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.commit_users(None, id, users, cursor).await
    }

    /// [`Store::commit_users_page`] by the holder of the instance's lease
    /// (see [`Store::commit_audit_page_fenced`]).
    pub async fn commit_users_page_fenced(
        &self,
        fence: &Fence,
        id: &str,
        users: &[NewUser],
        cursor: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.commit_users(Some(fence), id, users, cursor).await
    }

    async fn commit_users(
        &self,
        fence: Option<&Fence>,
        id: &str,
        users: &[NewUser],
        cursor: Option<&str>,
    ) -> Result<u64, StoreError> {
        let action = "committing a users page";
        // PostgreSQL refuses an upsert that touches one row twice, so
        // collapse duplicates here rather than rely on SQLite's leniency.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(users.len());
        for (i, u) in users.iter().enumerate() {
            last.insert(u.user_id.as_str(), i);
        }
        let unique: Vec<&NewUser> = users
            .iter()
            .enumerate()
            .filter(|(i, u)| last.get(u.user_id.as_str()) == Some(i))
            .map(|(_, u)| u)
            .collect();

        let _turn = self.write_turn().await;
        dispatch!(self, p => {
            let mut tx = p.begin().await.map_err(StoreError::db(action))?;
            check_fence!(self.backend(), tx, id, fence, action);
            write_cursor!(tx, id, USERS_STREAM, cursor, action)?;
            // Clearing a cursor has no foreign key to catch a missing instance.
            let found = sqlx::query("SELECT 1 FROM instances WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            if found.is_none() {
                return Err(StoreError::InstanceNotFound { id: id.to_owned() });
            }

            let updated_ms = now_ms();
            let mut written = 0;
            for chunk in unique.chunks(USER_CHUNK_ROWS) {
                let persistent = chunk.len() == USER_CHUNK_ROWS;
                let mut query =
                    sqlx::query(AssertSqlSafe(upsert_users_sql(self.backend(), chunk.len()))).persistent(persistent);
                for u in chunk {
                    query = query
                        .bind(id)
                        .bind(updated_ms)
                        .bind(u.user_id.as_str())
                        .bind(u.email.as_deref())
                        .bind(u.login.as_deref())
                        .bind(u.name.as_deref())
                        .bind(u.status.as_deref())
                        .bind(u.is_admin)
                        .bind(u.created_ms)
                        .bind(u.last_login_ms)
                        .bind(u.raw_json.as_str());
                }
                let done = query
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db_for(action, id))?;
                written += done.rows_affected();
            }
            tx.commit().await.map_err(StoreError::db(action))?;
            self.wal_written();
            Ok(written)
        })
    }

    /// How many events the instance has stored (0 for an unknown instance).
    /// Reads a counter kept in step with inserts, so it is cheap to call for
    /// every instance in a status listing.
    pub async fn event_count(&self, id: &str) -> Result<u64, StoreError> {
        self.count(
            "SELECT COALESCE((SELECT event_count FROM instances WHERE id = $1), 0)",
            id,
            "counting events",
        )
        .await
    }

    /// How many users the instance has stored (0 for an unknown instance).
    pub async fn user_count(&self, id: &str) -> Result<u64, StoreError> {
        self.count(
            "SELECT COUNT(*) FROM users WHERE instance_id = $1",
            id,
            "counting users",
        )
        .await
    }

    async fn count(
        &self,
        sql: &'static str,
        id: &str,
        action: &'static str,
    ) -> Result<u64, StoreError> {
        let n: i64 = dispatch!(self, p => sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(p).await)
        .map_err(StoreError::db(action))?;
        Ok(to_u64(n))
    }

    /// A page of the instance's events, filtered and ordered by `q`, using
    /// keyset pagination on `(time_ms, event_id)`: pass the last row of one
    /// page as `q.after` to get the next.
    pub async fn events(&self, id: &str, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        enum Arg<'a> {
            Int(i64),
            Text(&'a str),
        }
        let mut args: Vec<Arg<'_>> = vec![Arg::Text(id)];
        let next = |args: &Vec<Arg<'_>>| args.len() + 1;
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE instance_id = $1");

        if let Some(since) = q.since_ms {
            sql.push_str(&format!(" AND time_ms >= ${}", next(&args)));
            args.push(Arg::Int(since));
        }
        if let Some(until) = q.until_ms {
            sql.push_str(&format!(" AND time_ms < ${}", next(&args)));
            args.push(Arg::Int(until));
        }
        if let Some(action) = &q.action {
            sql.push_str(&format!(" AND action = ${}", next(&args)));
            args.push(Arg::Text(action));
        }
        if let Some(actor) = &q.actor {
            let n = next(&args);
            sql.push_str(&format!(
                " AND (actor_id = ${n} OR actor_email = ${n} OR actor_name = ${n})"
            ));
            args.push(Arg::Text(actor));
        }
        let (cmp, dir) = match q.order {
            EventOrder::NewestFirst => ("<", "DESC"),
            EventOrder::OldestFirst => (">", "ASC"),
        };
        if let Some((time_ms, event_id)) = &q.after {
            let n = next(&args);
            // Row-value comparison is standard SQL, understood by SQLite
            // (3.15+) and PostgreSQL, and both turn it into an index range.
            sql.push_str(&format!(
                " AND (time_ms, event_id) {cmp} (${n}, ${})",
                n + 1
            ));
            args.push(Arg::Int(*time_ms));
            args.push(Arg::Text(event_id));
        }
        let n = next(&args);
        sql.push_str(&format!(
            " ORDER BY time_ms {dir}, event_id {dir} LIMIT ${n}"
        ));
        args.push(Arg::Int(page_limit(q.limit)));

        dispatch!(self, p => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for arg in &args {
                query = match arg {
                    Arg::Int(v) => query.bind(*v),
                    Arg::Text(v) => query.bind(*v),
                };
            }
            let rows = query
                .fetch_all(p)
                .await
                .map_err(StoreError::db("querying events"))?;
            rows.iter().map(event_from_row).collect()
        })
    }

    /// A page of the instance's users ordered by `user_id`, starting after
    /// `after_user_id`. `limit` is capped at [`crate::MAX_PAGE`]; 0 means
    /// [`crate::DEFAULT_PAGE`].
    pub async fn users(
        &self,
        id: &str,
        limit: u32,
        after_user_id: Option<&str>,
    ) -> Result<Vec<StoredUser>, StoreError> {
        const COLUMNS: &str = "SELECT instance_id, user_id, email, login, name, status, \
             is_admin, created_ms, last_login_ms, raw_json, updated_ms FROM users";
        let sql = match after_user_id {
            Some(_) => format!(
                "{COLUMNS} WHERE instance_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3"
            ),
            None => format!("{COLUMNS} WHERE instance_id = $1 ORDER BY user_id LIMIT $2"),
        };
        dispatch!(self, p => {
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(id);
            if let Some(after) = after_user_id {
                query = query.bind(after);
            }
            let rows = query
                .bind(page_limit(limit))
                .fetch_all(p)
                .await
                .map_err(StoreError::db("listing users"))?;
            rows.iter().map(user_from_row).collect()
        })
    }
}

pub(crate) fn event_from_row<R: StoreRow>(row: &R) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        instance_id: col(row, "instance_id")?,
        event_id: col(row, "event_id")?,
        time_ms: col(row, "time_ms")?,
        action: col(row, "action")?,
        actor_id: col(row, "actor_id")?,
        actor_kind: col(row, "actor_kind")?,
        actor_name: col(row, "actor_name")?,
        actor_email: col(row, "actor_email")?,
        targets_json: col(row, "targets_json")?,
        ip: col(row, "ip")?,
        user_agent: col(row, "user_agent")?,
        outcome: col(row, "outcome")?,
        raw_json: col(row, "raw_json")?,
        ingested_ms: col(row, "ingested_ms")?,
    })
}

fn user_from_row<R: StoreRow>(row: &R) -> Result<StoredUser, StoreError> {
    Ok(StoredUser {
        instance_id: col(row, "instance_id")?,
        user_id: col(row, "user_id")?,
        email: col(row, "email")?,
        login: col(row, "login")?,
        name: col(row, "name")?,
        status: col(row, "status")?,
        is_admin: col(row, "is_admin")?,
        created_ms: col(row, "created_ms")?,
        last_login_ms: col(row, "last_login_ms")?,
        raw_json: col(row, "raw_json")?,
        updated_ms: col(row, "updated_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_has_one_tuple_per_row() {
        let sql = insert_events_sql(Backend::Sqlite, 2);
        let tuple = format!("({})", vec!["?"; EVENT_ROW_PARAMS].join(","));
        assert!(sql.ends_with(&format!(
            "VALUES {tuple},{tuple} ON CONFLICT (instance_id, time_ms, event_id) DO NOTHING"
        )));
    }
}
