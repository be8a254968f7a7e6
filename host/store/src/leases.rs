//! Leases: which daemon works which instance, with fencing.
//!
//! A daemon claims free or expired leases (PostgreSQL: `FOR UPDATE SKIP
//! LOCKED`, so daemons claiming at once never wait on each other or take
//! the same row), renews what it holds by heartbeat and releases it on
//! shutdown. Each claim by a new holder increments the lease's epoch; the
//! `*_fenced` page commits check owner and epoch in the page's own
//! transaction, so a daemon that lost its lease (killed, partitioned,
//! paused past the TTL) can never commit a page or move a cursor.
//!
//! On SQLite one daemon holds every lease: a claim takes leases whatever
//! their expiry (the previous holder of the file is gone), through the same
//! queries.

use crate::{Backend, Store, StoreError, StoreRow, col, now_ms};

/// A daemon's hold on an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The instance.
    pub instance_id: String,
    /// The holder's daemon id.
    pub owner: String,
    /// The fencing token of this hold.
    pub epoch: i64,
    /// When the hold lapses unless renewed (ms since the Unix epoch).
    pub expires_ms: i64,
}

impl Lease {
    /// What a page commit presents to prove the hold.
    pub fn fence(&self) -> Fence {
        Fence {
            owner: self.owner.clone(),
            epoch: self.epoch,
        }
    }
}

/// Proof of a lease, checked by the `*_fenced` commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The daemon id that claimed the lease.
    pub owner: String,
    /// The epoch it claimed.
    pub epoch: i64,
}

fn lease_from_row<R: StoreRow>(row: &R) -> Result<Lease, StoreError> {
    Ok(Lease {
        instance_id: col(row, "instance_id")?,
        owner: col(row, "owner")?,
        epoch: col(row, "epoch")?,
        expires_ms: col(row, "expires_ms")?,
    })
}

/// Checks `$fence` for instance `$id` as the first write of transaction
/// `$tx`, so the check and the page commit or roll back together.
///
/// On PostgreSQL the lease row is held `FOR KEY SHARE` until the page is
/// in: a claim (`FOR UPDATE ... SKIP LOCKED`) cannot take it meanwhile,
/// while the holder's heartbeat (which only moves `expires_ms`) and other
/// daemons' lease reads never wait on a page commit. On SQLite the check
/// is a no-op write, which takes the database's write lock up front.
macro_rules! check_fence {
    ($backend:expr, $tx:expr, $id:expr, $fence:expr, $action:expr) => {
        if let Some(fence) = $fence {
            let sql = match $backend {
                $crate::Backend::Sqlite => {
                    "UPDATE leases SET expires_ms = expires_ms \
                     WHERE instance_id = $1 AND owner = $2 AND epoch = $3 RETURNING 1"
                }
                $crate::Backend::Postgres => {
                    "SELECT 1 FROM leases \
                     WHERE instance_id = $1 AND owner = $2 AND epoch = $3 FOR KEY SHARE"
                }
            };
            let held = sqlx::query(sql)
                .bind($id)
                .bind(fence.owner.as_str())
                .bind(fence.epoch)
                .fetch_all(&mut *$tx)
                .await
                .map_err(StoreError::db($action))?
                .len();
            if held == 0 {
                return Err(StoreError::Fenced {
                    instance_id: $id.to_owned(),
                    owner: fence.owner.clone(),
                    epoch: fence.epoch,
                });
            }
        }
    };
}
pub(crate) use check_fence;

impl Store {
    /// Claims up to `max` leases of resumable instances (not disabled, not
    /// halted) that no daemon holds or whose holder (`owner` included) let
    /// them expire, for `ttl_ms`. Returns the leases claimed, each under a
    /// new epoch; unexpired leases of `owner` are left alone.
    pub async fn claim_leases(
        &self,
        owner: &str,
        ttl_ms: i64,
        max: usize,
    ) -> Result<Vec<Lease>, StoreError> {
        let action = "claiming instance leases";
        let steal = self.backend() == Backend::Sqlite;
        let lock = match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE OF l SKIP LOCKED",
        };
        let select = format!(
            "SELECT l.instance_id FROM leases l JOIN instances i ON i.id = l.instance_id \
             WHERE i.status <> 'disabled' AND i.disabled = FALSE AND i.halted = FALSE \
             AND (l.expires_ms < $2 OR ($3 AND l.owner <> $1)) \
             ORDER BY i.created_ms, i.id LIMIT $4{lock}"
        );
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let _turn = self.write_turn().await;
        dispatch!(self, p => {
            let mut tx = p.begin().await.map_err(StoreError::db(action))?;
            // Every instance gets a lease row the first time anyone claims.
            // Only missing rows are inserted: checking a conflict on a row
            // a page commit holds would wait for that commit.
            sqlx::query(
                "INSERT INTO leases (instance_id, owner, epoch, expires_ms) \
                 SELECT i.id, '', 0, 0 FROM instances i \
                 WHERE NOT EXISTS (SELECT 1 FROM leases l WHERE l.instance_id = i.id) \
                 ORDER BY i.id ON CONFLICT (instance_id) DO NOTHING",
            )
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
            let now = now_ms();
            let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(select))
                .bind(owner)
                .bind(now)
                .bind(steal)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                let row = sqlx::query(
                    "UPDATE leases SET owner = $1, epoch = epoch + 1, expires_ms = $2 \
                     WHERE instance_id = $3 \
                     RETURNING instance_id, owner, epoch, expires_ms",
                )
                .bind(owner)
                .bind(now.saturating_add(ttl_ms))
                .bind(&id)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
                claimed.push(lease_from_row(&row)?);
            }
            tx.commit().await.map_err(StoreError::db(action))?;
            Ok(claimed)
        })
    }

    /// Claims the lease of one instance (the operator started it) if it is
    /// free, expired, or already held by `owner` (then it is renewed).
    /// `None` when another daemon holds it.
    pub async fn claim_lease(
        &self,
        owner: &str,
        instance_id: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        let action = "claiming an instance lease";
        let steal = self.backend() == Backend::Sqlite;
        let now = now_ms();
        let _turn = self.write_turn().await;
        dispatch!(self, p => {
            let mut tx = p.begin().await.map_err(StoreError::db_for(action, instance_id))?;
            if self.backend() == Backend::Postgres {
                // An upsert only takes a no-key lock, which a page commit's
                // fence (`FOR KEY SHARE`) lets through: lock the row as a
                // claim first, so a page in flight finishes under the
                // epoch it checked.
                sqlx::query("SELECT 1 FROM leases WHERE instance_id = $1 FOR UPDATE")
                    .bind(instance_id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(StoreError::db_for(action, instance_id))?;
            }
            let row = sqlx::query(
                "INSERT INTO leases (instance_id, owner, epoch, expires_ms) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (instance_id) DO UPDATE SET \
                 epoch = CASE WHEN leases.owner = $2 AND leases.expires_ms >= $4 \
                         THEN leases.epoch ELSE leases.epoch + 1 END, \
                 owner = $2, expires_ms = $3 \
                 WHERE leases.owner = $2 OR leases.expires_ms < $4 OR $5 \
                 RETURNING instance_id, owner, epoch, expires_ms",
            )
            .bind(instance_id)
            .bind(owner)
            .bind(now.saturating_add(ttl_ms))
            .bind(now)
            .bind(steal)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db_for(action, instance_id))?;
            tx.commit().await.map_err(StoreError::db_for(action, instance_id))?;
            row.as_ref().map(lease_from_row).transpose()
        })
    }

    /// Pushes the expiry of every lease `owner` holds to now + `ttl_ms`
    /// and returns them. A lease missing from the answer, or back with
    /// another epoch, was taken over: its worker must stop.
    pub async fn renew_leases(&self, owner: &str, ttl_ms: i64) -> Result<Vec<Lease>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query(
                "UPDATE leases SET expires_ms = $2 WHERE owner = $1 \
                 RETURNING instance_id, owner, epoch, expires_ms",
            )
            .bind(owner)
            .bind(now_ms().saturating_add(ttl_ms))
            .fetch_all(p)
            .await
            .map_err(StoreError::db("renewing instance leases"))?;
            rows.iter().map(lease_from_row).collect()
        })
    }

    /// Gives up `owner`'s lease of one instance (its worker stopped), so
    /// another daemon may claim it at once.
    pub async fn release_lease(&self, owner: &str, instance_id: &str) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query(
            "UPDATE leases SET expires_ms = 0 WHERE owner = $1 AND instance_id = $2",
        )
        .bind(owner)
        .bind(instance_id)
        .execute(p)
        .await
        .map(drop))
        .map_err(StoreError::db("releasing an instance lease"))
    }

    /// Gives up every lease `owner` holds (graceful shutdown).
    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        dispatch!(self, p => sqlx::query("UPDATE leases SET expires_ms = 0 WHERE owner = $1")
            .bind(owner)
            .execute(p)
            .await
            .map(|d| d.rows_affected()))
        .map_err(StoreError::db("releasing instance leases"))
    }

    /// When the next lease held by another daemon lapses (ms since the
    /// Unix epoch), among instances a daemon would claim (not disabled, not
    /// halted); `None` when no such lease is held. A daemon with room
    /// wakes then, so a dead daemon's instances are taken over as soon as
    /// their lease allows.
    pub async fn next_foreign_lapse_ms(&self, owner: &str) -> Result<Option<i64>, StoreError> {
        dispatch!(self, p => sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(l.expires_ms) FROM leases l JOIN instances i ON i.id = l.instance_id \
             WHERE i.status <> 'disabled' AND i.disabled = FALSE AND i.halted = FALSE \
             AND l.owner <> $1 AND l.owner <> '' AND l.expires_ms >= $2",
        )
        .bind(owner)
        .bind(now_ms())
        .fetch_one(p)
        .await)
        .map_err(StoreError::db("reading when the next lease lapses"))
    }

    /// Every lease row, held or lapsed, by instance id (one query: what a
    /// watcher of several daemons samples).
    pub async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        dispatch!(self, p => {
            let rows = sqlx::query(
                "SELECT instance_id, owner, epoch, expires_ms FROM leases ORDER BY instance_id",
            )
            .fetch_all(p)
            .await
            .map_err(StoreError::db("reading the instance leases"))?;
            rows.iter().map(lease_from_row).collect()
        })
    }

    /// The lease of an instance, held or lapsed; `None` if no daemon ever
    /// claimed it.
    pub async fn lease(&self, instance_id: &str) -> Result<Option<Lease>, StoreError> {
        dispatch!(self, p => {
            let row = sqlx::query(
                "SELECT instance_id, owner, epoch, expires_ms FROM leases WHERE instance_id = $1",
            )
            .bind(instance_id)
            .fetch_optional(p)
            .await
            .map_err(StoreError::db("reading an instance lease"))?;
            row.as_ref().map(lease_from_row).transpose()
        })
    }
}
