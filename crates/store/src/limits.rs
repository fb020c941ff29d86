//! The rate limit and the daily cap held in PostgreSQL, so that every replica on a database
//! counts against the same quota (migration 0016). The SQLite store keeps them in memory in
//! its one process (the API's `limits` module); this module is PostgreSQL only.
//!
//! Both are single statements whose row lock makes concurrent replicas take turns, and whose
//! clock is the database's, so replicas' clocks never disagree about a quota.

use chrono::NaiveDate;
use sqlx::PgPool;

use crate::{Db, StoreError};

/// The shared limits of a PostgreSQL store.
#[derive(Clone)]
pub struct Shared {
    pool: PgPool,
}

impl Shared {
    /// `Some` on PostgreSQL; SQLite keeps its limits in memory.
    pub fn of(db: &Db) -> Option<Shared> {
        match db {
            Db::Postgres(pool) => Some(Shared { pool: pool.clone() }),
            Db::Sqlite(_) => None,
        }
    }

    /// One request against a GCRA quota of `per_minute` requests a minute, all of which may be
    /// used at once (the same quota as the in-memory limiter): `Ok(remaining)` or
    /// `Err(seconds to wait)`.
    pub async fn take(&self, key: &str, per_minute: u32) -> Result<Result<u32, u64>, StoreError> {
        let per_minute = i64::from(per_minute.max(1));
        // Emission interval and burst tolerance, in microseconds.
        let t = 60_000_000 / per_minute;
        let tau = t * (per_minute - 1);
        let taken: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO rate_limits AS r (key, tat) \
         VALUES ($1, now() + make_interval(secs => $2::float8 / 1e6)) \
         ON CONFLICT (key) DO UPDATE \
             SET tat = greatest(r.tat, now()) + make_interval(secs => $2::float8 / 1e6) \
             WHERE greatest(r.tat, now()) - make_interval(secs => $3::float8 / 1e6) <= now() \
         RETURNING (EXTRACT(EPOCH FROM (r.tat - now())) * 1e6)::int8",
        )
        .bind(key)
        .bind(t)
        .bind(tau)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((ahead,)) = taken {
            // `ahead`: how far the new arrival time is past now; each interval of it is a request
            // of the burst used up.
            let remaining = (tau + t - ahead).div_euclid(t).clamp(0, per_minute);
            return Ok(Ok(u32::try_from(remaining).unwrap_or(0)));
        }
        let (wait,): (i64,) = sqlx::query_as(
        "SELECT (EXTRACT(EPOCH FROM (tat - now())) * 1e6)::int8 - $2 FROM rate_limits WHERE key = $1",
    )
    .bind(key)
    .bind(tau)
    .fetch_one(&self.pool)
    .await?;
        Ok(Err(u64::try_from(wait.max(1))
            .unwrap_or(1)
            .div_ceil(1_000_000)))
    }

    /// Reserves one of `cap` submissions for `filer` on `day`, or refuses (`false`).
    /// `count_filed` is asked for the filings already stored that day the first time the filer
    /// files that day (or after the table was created by an upgrade).
    pub async fn reserve<F, Fut, E>(
        &self,
        filer: &str,
        day: NaiveDate,
        cap: u32,
        count_filed: F,
    ) -> Result<Result<bool, E>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<u32, E>>,
    {
        let cap = i32::try_from(cap).unwrap_or(i32::MAX);
        let updated = sqlx::query(
            "UPDATE daily_filings SET filed = filed + 1 \
         WHERE filer_id = $1 AND day = $2 AND filed < $3",
        )
        .bind(filer)
        .bind(day)
        .bind(cap)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 1 {
            return Ok(Ok(true));
        }
        let exists: Option<(i32,)> =
            sqlx::query_as("SELECT filed FROM daily_filings WHERE filer_id = $1 AND day = $2")
                .bind(filer)
                .bind(day)
                .fetch_optional(&self.pool)
                .await?;
        if exists.is_some() {
            return Ok(Ok(false));
        }
        let seed = match count_filed().await {
            Ok(n) => i32::try_from(n).unwrap_or(i32::MAX),
            Err(e) => return Ok(Err(e)),
        };
        if seed >= cap {
            return Ok(Ok(false));
        }
        // Another replica may have inserted the row meanwhile: then count on it.
        let inserted: Option<(i32,)> = sqlx::query_as(
            "INSERT INTO daily_filings AS d (filer_id, day, filed) VALUES ($1, $2, $3 + 1) \
         ON CONFLICT (filer_id, day) DO UPDATE SET filed = d.filed + 1 WHERE d.filed < $4 \
         RETURNING filed",
        )
        .bind(filer)
        .bind(day)
        .bind(seed)
        .bind(cap)
        .fetch_optional(&self.pool)
        .await?;
        Ok(Ok(inserted.is_some()))
    }

    /// Gives back a reservation whose filing did not happen.
    pub async fn release(&self, filer: &str, day: NaiveDate) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE daily_filings SET filed = filed - 1 \
         WHERE filer_id = $1 AND day = $2 AND filed > 0",
        )
        .bind(filer)
        .bind(day)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets rate-limit state that no longer limits anyone and daily counts of past days.
    pub async fn forget_stale(&self, today: NaiveDate) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM rate_limits WHERE tat < now()")
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM daily_filings WHERE day < $1")
            .bind(today - chrono::Duration::days(1))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
