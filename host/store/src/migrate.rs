//! `ward store migrate`: copying a whole store into another database
//! (SQLite to PostgreSQL, when an installation moves up to several
//! daemons).
//!
//! [`copy`] is the one entry point. It walks [`TABLES`], the one list of
//! what the store holds, and copies each table in keyset-ordered batches
//! (`WHERE key > last ORDER BY key LIMIT n`), each batch one
//! `INSERT … ON CONFLICT DO NOTHING` transaction. So:
//!
//! - **idempotent**: a row already in the destination is never written
//!   twice, a second run inserts nothing;
//! - **resumable**: a run cut short leaves whole batches behind and the
//!   next run completes the job;
//! - **verbatim**: credentials, OAuth client secrets and codes stay sealed
//!   under the master key they were sealed with (nothing is decrypted, so
//!   the daemons on the destination need the same key);
//! - **verified**: at the end every table's row count is compared and a
//!   difference fails naming the table.
//!
//! Leases and rate budgets are not copied (they belong to the daemons of
//! the source); the destination's daemons claim the instances afresh and
//! their buckets start full. A destination that
//! live daemons are working (unexpired leases) is refused unless it already
//! holds the same data (then nothing is written).
//!
//! Tables are copied parents first, and `cursors` before `events` and
//! `users`: if the source is still being written during the copy, a cursor
//! copied earlier can only be behind the events copied later, and a daemon
//! resuming from it fetches again what it already has (stored once).

use std::fmt;

use sqlx::Executor as _;

use crate::{Backend, MasterKey, Pool, Store, StoreError, now_ms, redact_url, values_clause};

/// Reads column `$i` of `$row` as `$kind` (a macro: the row type
/// differs per backend arm of [`dispatch!`]).
macro_rules! decode {
    ($row:expr, $i:expr, $kind:expr) => {
        match $kind {
            Kind::Text => sqlx::Row::try_get($row, $i).map(Value::Text),
            Kind::Int => sqlx::Row::try_get($row, $i).map(Value::Int),
            Kind::Int4 => sqlx::Row::try_get($row, $i).map(Value::Int4),
            Kind::Bool => sqlx::Row::try_get($row, $i).map(Value::Bool),
            Kind::Bytes => sqlx::Row::try_get($row, $i).map(Value::Bytes),
        }
    };
}

/// Binds `$v` to the query `$q`.
macro_rules! bind {
    ($q:expr, $v:expr) => {
        match $v.clone() {
            Value::Text(x) => $q.bind(x),
            Value::Int(x) => $q.bind(x),
            Value::Int4(x) => $q.bind(x),
            Value::Bool(x) => $q.bind(x),
            Value::Bytes(x) => $q.bind(x),
        }
    };
}

/// Rows per batch (and per transaction) in the destination.
const BATCH: usize = 500;

/// The type of a copied column, as both backends decode and bind it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    /// BIGINT.
    Int,
    /// INTEGER (PostgreSQL's int4).
    Int4,
    Bool,
    Bytes,
}

/// One table the store holds.
struct Table {
    name: &'static str,
    /// The keyset the source is read in: the primary key, or for a table
    /// whose destination numbers rows itself, the source's `rowid`.
    key: &'static [&'static str],
    /// Every column copied, with its type.
    columns: &'static [(&'static str, Kind)],
    /// A column the destination fills from a sequence; after the copy the
    /// sequence is moved past the largest copied value (PostgreSQL).
    identity: Option<&'static str>,
}

use Kind::{Bool, Bytes, Int, Int4, Text};

/// Everything the store holds, parents first. A table added to the store
/// is one entry here (and a column one pair).
const TABLES: &[Table] = &[
    Table {
        name: "instances",
        key: &["id"],
        columns: &[
            ("id", Text),
            ("plugin_key", Text),
            ("plugin_version", Text),
            ("name", Text),
            ("config_json", Text),
            ("tags_json", Text),
            ("status", Text),
            ("status_message", Text),
            ("created_ms", Int),
            ("last_success_ms", Int),
            ("event_count", Int),
            ("token_sha256", Text),
            ("disabled", Bool),
            ("requests_per_minute", Int),
            ("halted", Bool),
            ("users_synced_ms", Int),
        ],
        identity: None,
    },
    Table {
        name: "credentials",
        key: &["instance_id"],
        columns: &[
            ("instance_id", Text),
            ("nonce", Bytes),
            ("ciphertext", Bytes),
            ("updated_ms", Int),
        ],
        identity: None,
    },
    Table {
        name: "cursors",
        key: &["instance_id", "stream"],
        columns: &[
            ("instance_id", Text),
            ("stream", Text),
            ("cursor", Text),
            ("updated_ms", Int),
        ],
        identity: None,
    },
    Table {
        name: "events",
        key: &["instance_id", "time_ms", "event_id"],
        columns: &[
            ("instance_id", Text),
            ("event_id", Text),
            ("time_ms", Int),
            ("action", Text),
            ("actor_id", Text),
            ("actor_kind", Text),
            ("actor_name", Text),
            ("actor_email", Text),
            ("targets_json", Text),
            ("ip", Text),
            ("user_agent", Text),
            ("outcome", Text),
            ("raw_json", Text),
            ("ingested_ms", Int),
            // Ingestion order, kept: sink cursors refer to it.
            ("seq", Int),
        ],
        identity: Some("seq"),
    },
    Table {
        name: "users",
        key: &["instance_id", "user_id"],
        columns: &[
            ("instance_id", Text),
            ("user_id", Text),
            ("email", Text),
            ("login", Text),
            ("name", Text),
            ("status", Text),
            ("is_admin", Bool),
            ("created_ms", Int),
            ("last_login_ms", Int),
            ("raw_json", Text),
            ("updated_ms", Int),
        ],
        identity: None,
    },
    Table {
        name: "egress",
        key: &["id"],
        columns: &[
            ("id", Int),
            ("instance_id", Text),
            ("plugin_key", Text),
            ("plugin_call", Text),
            ("at_ms", Int),
            ("method", Text),
            ("url", Text),
            ("allowed", Bool),
            ("reason", Text),
            ("grant_name", Text),
            ("http_status", Int4),
            ("bytes_sent", Int),
            ("bytes_received", Int),
            ("latency_ms", Int),
        ],
        identity: Some("id"),
    },
    Table {
        // Read in the source's insertion order: the destination numbers
        // the rows as they arrive, which breaks ties on approved_ms alike.
        name: "plugin_approvals",
        key: &["rowid"],
        columns: &[
            ("plugin_key", Text),
            ("digest", Text),
            ("version", Text),
            ("permissions_json", Text),
            ("approved_by", Text),
            ("approved_ms", Int),
        ],
        identity: None,
    },
    Table {
        name: "oauth_states",
        key: &["state_sha256"],
        columns: &[
            ("state_sha256", Text),
            ("element_key", Text),
            ("config_json", Text),
            ("client_id", Text),
            ("secret_nonce", Bytes),
            ("secret_sealed", Bytes),
            ("callback_url", Text),
            ("created_ms", Int),
            ("expires_ms", Int),
            ("phase", Text),
            ("code_sha256", Text),
            ("code_nonce", Bytes),
            ("code_sealed", Bytes),
        ],
        identity: None,
    },
    Table {
        name: "api_secrets",
        key: &["name"],
        columns: &[("name", Text), ("sha256", Text), ("created_ms", Int)],
        identity: None,
    },
    Table {
        name: "sinks",
        key: &["name"],
        columns: &[
            ("name", Text),
            ("cursor_seq", Int),
            ("delivered", Int),
            ("state", Text),
            ("last_error", Text),
            ("last_error_ms", Int),
            ("last_success_ms", Int),
            ("updated_ms", Int),
        ],
        identity: None,
    },
    Table {
        name: "sink_secrets",
        key: &["name"],
        columns: &[
            ("name", Text),
            ("nonce", Bytes),
            ("ciphertext", Bytes),
            ("updated_ms", Int),
        ],
        identity: None,
    },
];

/// One column value, whichever backend it came from.
#[derive(Debug, Clone)]
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Int4(Option<i32>),
    Bool(Option<bool>),
    Bytes(Option<Vec<u8>>),
}

/// What [`copy`] did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// The table.
    pub table: &'static str,
    /// Rows read from the source.
    pub read: u64,
    /// Rows the destination did not hold yet (0 on a second run).
    pub inserted: u64,
    /// Rows in the destination at the end (equal to the source's).
    pub rows: u64,
}

/// What [`copy`] did, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// In copy order.
    pub tables: Vec<TableReport>,
}

impl Report {
    /// Rows inserted over all tables.
    pub fn inserted(&self) -> u64 {
        self.tables.iter().map(|t| t.inserted).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tables {
            writeln!(
                f,
                "{:<18} {:>10} read {:>10} inserted {:>10} rows (equal in both)",
                t.table, t.read, t.inserted, t.rows
            )?;
        }
        Ok(())
    }
}

/// Why [`copy`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A store could not be opened.
    #[error("{which} store: {source}")]
    Open {
        /// `source` or `destination`.
        which: &'static str,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// Source and destination are the same database.
    #[error(
        "--from and --to name the same database ({url}); name the SQLite file to copy from and the PostgreSQL database to copy into"
    )]
    SameStore {
        /// The URL, password redacted.
        url: String,
    },
    /// Daemons are working the destination and it holds other data.
    #[error(
        "the destination {url} is in use: daemon(s) {owners} hold live leases there and it does not hold the same data as the source ({table}: {source_rows} rows in the source, {dest_rows} in the destination); stop the daemons using the destination (or wait until their leases expire) and run `ward store migrate` again"
    )]
    DestinationInUse {
        /// The destination URL, password redacted.
        url: String,
        /// The daemons holding leases.
        owners: String,
        /// The first table found to differ.
        table: &'static str,
        /// Its rows in the source.
        source_rows: u64,
        /// Its rows in the destination.
        dest_rows: u64,
    },
    /// A query failed.
    #[error(
        "copying table {table}: {detail}; fix the cause and run `ward store migrate` again (rows already copied are kept and not copied twice)"
    )]
    Copy {
        /// The table being copied.
        table: &'static str,
        /// The database error.
        detail: String,
    },
    /// The counts differ after the copy.
    #[error(
        "table {table} differs after the copy: {source_rows} rows in the source, {dest_rows} in the destination; if a daemon was still writing the source, stop it and run `ward store migrate` again (it copies only what is missing); if the destination held other data, copy into an empty database"
    )]
    CountMismatch {
        /// The table.
        table: &'static str,
        /// Rows in the source.
        source_rows: u64,
        /// Rows in the destination.
        dest_rows: u64,
    },
}

/// Copies everything the store at `from` holds into the store at `to`
/// (both `store.url`s; the destination's schema is created or upgraded
/// first), calling `progress` after every batch with the table and the
/// rows read from it so far. See the module documentation.
pub async fn copy(
    from: &str,
    to: &str,
    mut progress: impl FnMut(&str, u64),
) -> Result<Report, MigrateError> {
    if from == to {
        return Err(MigrateError::SameStore {
            url: redact_url(from),
        });
    }
    // Rows are copied sealed and never opened: the key is not used.
    let unused = MasterKey::generate();
    let source = Store::open(from, unused.clone())
        .await
        .map_err(|source| MigrateError::Open {
            which: "source",
            source,
        })?;
    let dest = Store::open(to, unused)
        .await
        .map_err(|source| MigrateError::Open {
            which: "destination",
            source,
        })?;
    let result = run(&source, &dest, to, &mut progress).await;
    source.close().await;
    dest.close().await;
    result
}

async fn run(
    source: &Store,
    dest: &Store,
    to: &str,
    progress: &mut impl FnMut(&str, u64),
) -> Result<Report, MigrateError> {
    let owners = live_lease_owners(dest).await?;
    if !owners.is_empty() {
        // Daemons are at work there: only a destination that already holds
        // everything is acceptable, and then nothing is written.
        for table in TABLES {
            let (source_rows, dest_rows) = (count(source, table).await?, count(dest, table).await?);
            if source_rows != dest_rows {
                return Err(MigrateError::DestinationInUse {
                    url: redact_url(to),
                    owners: owners.join(", "),
                    table: table.name,
                    source_rows,
                    dest_rows,
                });
            }
        }
        let mut report = Report::default();
        for table in TABLES {
            let rows = count(dest, table).await?;
            report.tables.push(TableReport {
                table: table.name,
                read: 0,
                inserted: 0,
                rows,
            });
        }
        return Ok(report);
    }

    let mut report = Report::default();
    for table in TABLES {
        let (read, inserted) = copy_table(source, dest, table, progress).await?;
        report.tables.push(TableReport {
            table: table.name,
            read,
            inserted,
            rows: 0,
        });
    }
    fix_up(dest).await?;
    for (table, entry) in TABLES.iter().zip(report.tables.iter_mut()) {
        let (source_rows, dest_rows) = (count(source, table).await?, count(dest, table).await?);
        if source_rows != dest_rows {
            return Err(MigrateError::CountMismatch {
                table: table.name,
                source_rows,
                dest_rows,
            });
        }
        entry.rows = dest_rows;
    }
    Ok(report)
}

fn copy_err(table: &'static str) -> impl Fn(sqlx::Error) -> MigrateError {
    move |e| MigrateError::Copy {
        table,
        detail: e.to_string(),
    }
}

/// The daemons holding unexpired leases in `store`.
async fn live_lease_owners(store: &Store) -> Result<Vec<String>, MigrateError> {
    let sql = "SELECT DISTINCT owner FROM leases WHERE expires_ms > $1 ORDER BY owner";
    let rows: Vec<String> = dispatch!(store, p => sqlx::query_scalar(sql)
        .bind(now_ms())
        .fetch_all(p)
        .await)
    .map_err(copy_err("leases"))?;
    Ok(rows)
}

async fn count(store: &Store, table: &Table) -> Result<u64, MigrateError> {
    let sql = format!("SELECT COUNT(*) FROM {}", table.name);
    let n: i64 =
        dispatch!(store, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(p).await)
            .map_err(copy_err(table.name))?;
    Ok(crate::to_u64(n))
}

/// Copies one table; returns (rows read, rows inserted).
async fn copy_table(
    source: &Store,
    dest: &Store,
    table: &'static Table,
    progress: &mut impl FnMut(&str, u64),
) -> Result<(u64, u64), MigrateError> {
    let err = copy_err(table.name);
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    let key = table.key.join(", ");
    let key_params: Vec<String> = (1..=table.key.len()).map(|i| format!("${i}")).collect();
    let select = |after: bool| {
        format!(
            "SELECT {key}, {cols} FROM {name} {cond} ORDER BY {key} LIMIT {BATCH}",
            cols = columns.join(", "),
            name = table.name,
            cond = if after {
                format!("WHERE ({key}) > ({})", key_params.join(", "))
            } else {
                String::new()
            },
        )
    };
    let key_kinds: Vec<Kind> = table
        .key
        .iter()
        .map(|k| {
            table
                .columns
                .iter()
                .find(|(c, _)| c == k)
                .map_or(Kind::Int, |(_, kind)| *kind)
        })
        .collect();
    let mut last: Option<Vec<Value>> = None;
    let (mut read, mut inserted) = (0u64, 0u64);
    loop {
        let sql = select(last.is_some());
        let rows: Vec<Vec<Value>> = dispatch!(source, p => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for v in last.iter().flatten() {
                q = bind!(q, v);
            }
            let rows = q.fetch_all(p).await.map_err(&err)?;
            rows.iter()
                .map(|row| {
                    key_kinds
                        .iter()
                        .chain(table.columns.iter().map(|(_, k)| k))
                        .enumerate()
                        .map(|(i, kind)| decode!(row, i, *kind))
                        .collect::<Result<Vec<Value>, sqlx::Error>>()
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(&err)?
        });
        let Some(tail) = rows.last() else { break };
        last = Some(tail[..table.key.len()].to_vec());
        read += rows.len() as u64;
        inserted += insert(dest, table, &columns, &rows).await?;
        progress(table.name, read);
        if rows.len() < BATCH {
            break;
        }
    }
    Ok((read, inserted))
}

/// Inserts one batch (each row: key values, then the columns) in one
/// statement; returns the rows that were new.
async fn insert(
    dest: &Store,
    table: &'static Table,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<u64, MigrateError> {
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        table.name,
        columns.join(", ")
    );
    values_clause(dest.backend(), &mut sql, rows.len(), columns.len());
    sql.push_str(" ON CONFLICT DO NOTHING");
    let skip = table.key.len();
    let done = dispatch!(dest, p => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in rows {
            for v in &row[skip..] {
                q = bind!(q, v);
            }
        }
        q.execute(p).await.map(|r| r.rows_affected())
    })
    .map_err(copy_err(table.name))?;
    Ok(done)
}

/// What the copy leaves to put right: identity sequences past the copied
/// ids (PostgreSQL), and each instance's event count recounted (a source
/// still written during the copy may have copied an older count).
async fn fix_up(dest: &Store) -> Result<(), MigrateError> {
    for table in TABLES {
        if let (Some(column), Backend::Postgres) = (table.identity, dest.backend()) {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{t}', '{column}'), \
                 COALESCE((SELECT MAX({column}) FROM {t}), 0) + 1, false)",
                t = table.name
            );
            if let Pool::Postgres(p) = dest.pool() {
                p.execute(sqlx::AssertSqlSafe(sql))
                    .await
                    .map_err(copy_err(table.name))?;
            }
        }
    }
    let recount = "UPDATE instances SET event_count = \
                   (SELECT COUNT(*) FROM events WHERE events.instance_id = instances.id)";
    dispatch!(dest, p => sqlx::query(recount).execute(p).await.map(|_| ()))
        .map_err(copy_err("instances"))?;
    Ok(())
}
