//! Rate budgets held in the database, so that several daemons on one
//! PostgreSQL store share each provider tenant's budget (the daemon's
//! `budget` module decides when to use them; one SQLite daemon keeps its
//! budgets in memory).
//!
//! A budget is a token bucket: `tokens` as of `refilled_ms`, refilled at
//! the caller's `per_minute / 60` a second up to `per_minute`. Taking a
//! token is one `UPDATE … WHERE <enough tokens and not blocked> RETURNING`:
//! PostgreSQL re-checks the condition on the row it locked, so two daemons
//! racing for the last token cannot both get it. Times are the daemons'
//! wall clocks (keep them in sync, as for lease expiry).

use std::time::Duration;

use crate::{Store, StoreError};

/// What [`Store::take_rate_token`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateTake {
    /// A token was taken: the call may start.
    Taken,
    /// Not yet: try again after this long (the tenant is blocked, or the
    /// bucket is short of a token).
    Wait(Duration),
}

/// `tokens` refilled to `$now` at `$rate` tokens a millisecond, capped at
/// `$cap` (placeholders: `$3` now, `$4` rate, `$5` cap). Written with CASE
/// rather than LEAST/GREATEST, which SQLite lacks.
const REFILLED: &str = "(CASE WHEN tokens + (CASE WHEN $3 > refilled_ms THEN $3 - refilled_ms ELSE 0 END) * $4 > $5 \
     THEN $5 \
     ELSE tokens + (CASE WHEN $3 > refilled_ms THEN $3 - refilled_ms ELSE 0 END) * $4 END)";

const LATEST: &str = "(CASE WHEN $3 > refilled_ms THEN $3 ELSE refilled_ms END)";

impl Store {
    /// Takes one token from the shared budget of `tenant` of `plugin`
    /// running at `per_minute`, at wall-clock `now_ms`; a budget seen for
    /// the first time starts full.
    pub async fn take_rate_token(
        &self,
        plugin: &str,
        tenant: &str,
        per_minute: u32,
        now_ms: i64,
    ) -> Result<RateTake, StoreError> {
        let action = "taking a rate-budget token";
        let cap = f64::from(per_minute.max(1));
        let rate = cap / 60_000.0;
        let take = format!(
            "UPDATE rate_budgets SET tokens = {REFILLED} - 1, refilled_ms = {LATEST} \
             WHERE plugin_key = $1 AND tenant = $2 AND blocked_until_ms <= $3 AND {REFILLED} >= 1 \
             RETURNING tokens"
        );
        for _ in 0..2 {
            let taken: Option<f64> =
                dispatch!(self, p => sqlx::query_scalar(sqlx::AssertSqlSafe(take.clone()))
                .bind(plugin)
                .bind(tenant)
                .bind(now_ms)
                .bind(rate)
                .bind(cap)
                .fetch_optional(p)
                .await)
                .map_err(StoreError::db(action))?;
            if taken.is_some() {
                return Ok(RateTake::Taken);
            }
            let row: Option<(f64, i64, i64)> = dispatch!(self, p => sqlx::query_as(
                "SELECT tokens, refilled_ms, blocked_until_ms FROM rate_budgets \
                 WHERE plugin_key = $1 AND tenant = $2")
                .bind(plugin)
                .bind(tenant)
                .fetch_optional(p)
                .await)
            .map_err(StoreError::db(action))?;
            let Some((tokens, refilled_ms, blocked_until_ms)) = row else {
                self.create_rate_budget(plugin, tenant, cap, now_ms).await?;
                continue;
            };
            if blocked_until_ms > now_ms {
                return Ok(RateTake::Wait(ms(blocked_until_ms - now_ms)));
            }
            let elapsed = (now_ms - refilled_ms).max(0) as f64;
            let refilled = (tokens + elapsed * rate).min(cap);
            let wait = ((1.0 - refilled) / rate).ceil().max(1.0);
            return Ok(RateTake::Wait(Duration::from_millis(wait as u64)));
        }
        // Created just now by us or another daemon: the next call takes.
        Ok(RateTake::Wait(Duration::from_millis(1)))
    }

    /// Charges `requests` more to the budget (a call made more requests
    /// than the one token it took); the balance may go negative.
    pub async fn charge_rate_budget(
        &self,
        plugin: &str,
        tenant: &str,
        requests: f64,
    ) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query(
            "UPDATE rate_budgets SET tokens = tokens - $3 WHERE plugin_key = $1 AND tenant = $2")
            .bind(plugin)
            .bind(tenant)
            .bind(requests)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(StoreError::db("charging a rate budget"))
    }

    /// Holds the budget to what the provider allows: the balance (refilled
    /// to `now_ms` first) at most `max_tokens`, and nobody calls the tenant
    /// before `blocked_until_ms` (an earlier block than the one stored
    /// changes nothing).
    pub async fn limit_rate_budget(
        &self,
        plugin: &str,
        tenant: &str,
        per_minute: u32,
        now_ms: i64,
        max_tokens: f64,
        blocked_until_ms: i64,
    ) -> Result<(), StoreError> {
        let cap = f64::from(per_minute.max(1));
        self.create_rate_budget(plugin, tenant, cap, now_ms).await?;
        let sql = format!(
            "UPDATE rate_budgets SET \
             tokens = CASE WHEN {REFILLED} > $6 THEN $6 ELSE {REFILLED} END, \
             refilled_ms = {LATEST}, \
             blocked_until_ms = CASE WHEN blocked_until_ms > $7 THEN blocked_until_ms ELSE $7 END \
             WHERE plugin_key = $1 AND tenant = $2"
        );
        dispatch!(self, p => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(plugin)
            .bind(tenant)
            .bind(now_ms)
            .bind(cap / 60_000.0)
            .bind(cap)
            .bind(max_tokens)
            .bind(blocked_until_ms)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(StoreError::db("limiting a rate budget"))
    }

    async fn create_rate_budget(
        &self,
        plugin: &str,
        tenant: &str,
        tokens: f64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, p => sqlx::query(
            "INSERT INTO rate_budgets (plugin_key, tenant, tokens, refilled_ms, blocked_until_ms) \
             VALUES ($1, $2, $3, $4, 0) ON CONFLICT DO NOTHING")
            .bind(plugin)
            .bind(tenant)
            .bind(tokens)
            .bind(now_ms)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(StoreError::db("creating a rate budget"))
    }
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}
