//! The outbox relay's queries.
//!
//! A relay *claims* a batch of due, unpublished events by writing its id and a lease expiry into
//! them, in one `UPDATE … RETURNING`. On PostgreSQL, where several replicas' relays run at once,
//! the rows are picked with `FOR UPDATE SKIP LOCKED`: a relay passes over the rows another one is
//! claiming at that moment and takes the next ones, instead of waiting for them. The claim
//! conditions are repeated in the outer `WHERE` as well, so a row claimed by a committed update
//! is re-checked and skipped: two replicas never hold the same event at once. A relay that dies
//! leaves claims that expire after the lease. SQLite (one machine, writes serialized anyway) runs
//! the same statement without the row locks it does not have.

use sqlx::{AnyPool, Row};

use super::placeholders;

/// An event a relay holds and must publish.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub routing_key: String,
    pub payload: String,
    pub attempts: i64,
}

/// Claim up to `limit` events that are unpublished, due (`next_attempt_at <= now`) and not held
/// by a live claim; oldest first. `skip_locked` (PostgreSQL) passes over rows another relay is
/// claiming concurrently.
///
/// A read first looks for one such event: on SQLite the claim takes the database's single write
/// lock even when it matches nothing, and the ledger writer would wait for it; most rounds find
/// nothing to do.
pub async fn claim(
    pool: &AnyPool,
    skip_locked: bool,
    relay_id: &str,
    now: i64,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let due: Option<String> = sqlx::query_scalar(
        "SELECT id FROM events \
         WHERE published_at IS NULL AND next_attempt_at <= $1 \
           AND (claimed_until IS NULL OR claimed_until <= $1) \
         LIMIT 1",
    )
    .bind(now)
    .fetch_optional(pool)
    .await?;
    if due.is_none() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(if skip_locked {
        CLAIM_SKIP_LOCKED
    } else {
        CLAIM
    })
    .bind(relay_id)
    .bind(now.saturating_add(lease_ms))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Claimed {
                id: row.try_get(0)?,
                routing_key: row.try_get(1)?,
                payload: row.try_get(2)?,
                attempts: row.try_get(3)?,
            })
        })
        .collect()
}

/// The claim statement; `$lock` goes after the inner `LIMIT` (row locks, PostgreSQL only).
macro_rules! claim_statement {
    ($lock:literal) => {
        concat!(
            "UPDATE events SET claimed_by = $1, claimed_until = $2 \
             WHERE published_at IS NULL AND next_attempt_at <= $3 \
               AND (claimed_until IS NULL OR claimed_until <= $3) \
               AND id IN (SELECT id FROM events \
                          WHERE published_at IS NULL AND next_attempt_at <= $3 \
                            AND (claimed_until IS NULL OR claimed_until <= $3) \
                          ORDER BY next_attempt_at LIMIT $4",
            $lock,
            ") RETURNING id, routing_key, payload, publish_attempts"
        )
    };
}

const CLAIM: &str = claim_statement!("");
const CLAIM_SKIP_LOCKED: &str = claim_statement!(" FOR UPDATE SKIP LOCKED");

/// Give events back: retry each at its own time (`next_attempt_at`), counting the attempt.
pub async fn defer(
    pool: &AnyPool,
    relay_id: &str,
    retries: &[(String, i64)],
) -> Result<(), sqlx::Error> {
    if retries.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for (id, next_attempt_at) in retries {
        sqlx::query(
            "UPDATE events SET next_attempt_at = $1, publish_attempts = publish_attempts + 1, \
             claimed_by = NULL, claimed_until = NULL \
             WHERE id = $2 AND claimed_by = $3 AND published_at IS NULL",
        )
        .bind(*next_attempt_at)
        .bind(id.as_str())
        .bind(relay_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Drop this relay's claims on `ids` so they are due again at once (the broker went away before
/// they were confirmed).
pub async fn release(pool: &AnyPool, relay_id: &str, ids: &[String]) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(500) {
        let list = placeholders(chunk.len(), 1, 2, true).replace(['(', ')'], "");
        let sql = format!(
            "UPDATE events SET claimed_by = NULL, claimed_until = NULL \
             WHERE claimed_by = $1 AND id IN ({list})"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(relay_id);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        query.execute(pool).await?;
    }
    Ok(())
}

/// Events committed but not yet published.
pub async fn backlog(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
}
