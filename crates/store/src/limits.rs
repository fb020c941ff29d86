//! Abuse control held by the store: the per-token rate limit shared by PostgreSQL replicas,
//! and the per-filer daily cap on both stores.
//!
//! **Daily cap.** A new submission carries a [`DailyQuota`]; the group-commit writer
//! (`crate::writer`) reserves its place in the transaction that commits it: on PostgreSQL one
//! statement locks the counts of every filer-day in the group (in key order, so two replicas'
//! groups cannot deadlock on them) and counts the places it grants. So the cap costs one
//! statement per group rather than several per filing, a filing that does not commit never
//! counts, and every replica counts against the same rows. SQLite's one writer keeps the
//! counts in its memory instead ([`Tally`]). A filer's first filing of a day (or the first
//! since the process started, on SQLite) seeds its count from the observations stored since
//! midnight.
//!
//! **Rate limit** (PostgreSQL; SQLite's one process keeps it in memory, in the API's `limits`
//! module). A GCRA arrival time per token in an unlogged table, with the database's clock so
//! replicas never disagree about it. A replica takes quota a chunk at a time (a twentieth of
//! the quota, at least one request) and spends it locally, so a busy token costs one
//! statement per chunk instead of one per request. A chunk not spent within [`HOLD`] is
//! forfeited, never handed back: replicas together never let more through than the quota,
//! and a token may be refused early by at most one chunk per other replica.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::db::{on_conn, Conn};
use crate::{Db, StoreError};

/// How long a replica keeps quota it took for a token and has not spent.
pub const HOLD: Duration = Duration::from_secs(10);

/// Forget expired chunks once at least this many tokens have one.
const RETAIN_ABOVE: usize = 10_000;

/// The shared rate limit of a PostgreSQL store.
#[derive(Clone)]
pub struct Shared {
    pool: PgPool,
    held: Arc<Mutex<HashMap<String, Held>>>,
    /// Forget expired chunks when more tokens than this have one; twice what was left after
    /// the last time, so that many live tokens are not scanned on every chunk taken.
    retain_above: Arc<AtomicUsize>,
}

/// Quota a replica took for one token and has not spent yet.
struct Held {
    units: u32,
    /// What the database had left for the token after this chunk was taken.
    left: u32,
    taken: Instant,
}

/// Requests taken from the database at once for a token with `per_minute` requests a minute.
pub fn chunk(per_minute: u32) -> u32 {
    (per_minute / 20).max(1)
}

impl Shared {
    /// `Some` on PostgreSQL; SQLite keeps its rate limit in memory.
    pub fn of(db: &Db) -> Option<Shared> {
        match db {
            Db::Postgres(pool) => Some(Shared {
                pool: pool.clone(),
                held: Arc::default(),
                retain_above: Arc::new(AtomicUsize::new(RETAIN_ABOVE)),
            }),
            Db::Sqlite(_) => None,
        }
    }

    /// One request against a GCRA quota of `per_minute` requests a minute, all of which may be
    /// used at once (the same quota as the in-memory limiter): `Ok(remaining)` or
    /// `Err(seconds to wait)`. Spends quota this replica holds for `key` when it has some.
    pub async fn take(&self, key: &str, per_minute: u32) -> Result<Result<u32, u64>, StoreError> {
        if let Some(left) = self.spend_held(key) {
            return Ok(Ok(left));
        }
        let taken = self.take_chunk(key, per_minute).await?;
        if let Ok((units, left)) = taken {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if held.len() > self.retain_above.load(Ordering::Relaxed) {
                held.retain(|_, h| h.taken.elapsed() < HOLD);
                self.retain_above
                    .store((held.len() * 2).max(RETAIN_ABOVE), Ordering::Relaxed);
            }
            let units = units.saturating_sub(1);
            held.insert(
                key.to_string(),
                Held {
                    units,
                    left,
                    taken: Instant::now(),
                },
            );
            return Ok(Ok(left + units));
        }
        Ok(taken.map(|_| 0))
    }

    /// Spends one unit of quota held for `key`; `Some(remaining)` if there was one.
    fn spend_held(&self, key: &str) -> Option<u32> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let h = held.get_mut(key)?;
        if h.units == 0 || h.taken.elapsed() >= HOLD {
            held.remove(key);
            return None;
        }
        h.units -= 1;
        Some(h.left + h.units)
    }

    /// Takes up to [`chunk`] requests of `key`'s quota at once: `Ok((taken, left in the
    /// database))`, or `Err(seconds until one request is allowed)`.
    async fn take_chunk(
        &self,
        key: &str,
        per_minute: u32,
    ) -> Result<Result<(u32, u32), u64>, StoreError> {
        let n = i64::from(per_minute.max(1));
        // Emission interval and burst tolerance, in microseconds.
        let t = 60_000_000 / n;
        let tau = t * (n - 1);
        // `ahead`: how far the arrival time is past now. Free units: (tau + t - ahead) / t,
        // of which at most $4 are taken; `taken` keeps how many, as SET sees the old row.
        let taken: Option<(i32, i64)> = sqlx::query_as(
            "INSERT INTO rate_limits AS r (key, tat, taken) \
             VALUES ($1, now() + make_interval(secs => $2::float8 * $4 / 1e6), $4) \
             ON CONFLICT (key) DO UPDATE \
                 SET tat = greatest(r.tat, now()) + make_interval(secs => $2::float8 / 1e6 * \
                         least($4, floor(($3 + $2 - extract(epoch FROM greatest(r.tat, now()) \
                         - now()) * 1e6) / $2))), \
                     taken = least($4, floor(($3 + $2 - extract(epoch FROM \
                         greatest(r.tat, now()) - now()) * 1e6) / $2))::int \
                 WHERE greatest(r.tat, now()) - make_interval(secs => $3::float8 / 1e6) <= now() \
             RETURNING taken, (extract(epoch FROM (r.tat - now())) * 1e6)::int8",
        )
        .bind(key)
        .bind(t)
        .bind(tau)
        .bind(i32::try_from(chunk(per_minute)).unwrap_or(i32::MAX))
        .fetch_optional(&self.pool)
        .await?;
        if let Some((taken, ahead)) = taken {
            let left = (tau + t - ahead).div_euclid(t).clamp(0, n);
            return Ok(Ok((
                u32::try_from(taken.max(1)).unwrap_or(1),
                u32::try_from(left).unwrap_or(0),
            )));
        }
        let (wait,): (i64,) = sqlx::query_as(
            "SELECT (extract(epoch FROM (tat - now())) * 1e6)::int8 - $2 \
             FROM rate_limits WHERE key = $1",
        )
        .bind(key)
        .bind(tau)
        .fetch_one(&self.pool)
        .await?;
        Ok(Err(u64::try_from(wait.max(1))
            .unwrap_or(1)
            .div_ceil(1_000_000)))
    }
}

/// A new submission's place under its filer's daily cap, reserved by the writer in the
/// transaction that commits the submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyQuota {
    pub filer: String,
    /// The Vietnam day the filing counts on.
    pub day: NaiveDate,
    /// Submissions allowed per filer per day.
    pub cap: u32,
    /// The midnight starting `day`: a filer's first filing of a day counts the observations
    /// stored since.
    pub since: DateTime<Utc>,
}

/// A filer's count on one day.
pub(crate) type Day = (String, NaiveDate);

impl DailyQuota {
    pub(crate) fn day_key(&self) -> Day {
        (self.filer.clone(), self.day)
    }
}

/// The daily counts of SQLite's one writer task, in its memory: the embedded store is served
/// by one process, whose writer commits every filing, so a table would only add a page to
/// every group's commit (measured: a quarter of the filing rate). A filer-day not seen since
/// the process started is seeded from the observations stored since its midnight (the
/// projector has caught up before the service starts).
#[derive(Debug, Default)]
pub(crate) struct Tally(HashMap<Day, u32>);

impl Tally {
    /// Takes the counts of a committed group, and forgets days before the day before the
    /// newest.
    pub(crate) fn settle(&mut self, counts: HashMap<Day, u32>) {
        let Some(newest) = counts.keys().map(|(_, d)| *d).max() else {
            return;
        };
        if self
            .0
            .keys()
            .any(|(_, d)| *d < newest - chrono::Duration::days(1))
        {
            self.0
                .retain(|(_, d), _| *d >= newest - chrono::Duration::days(1));
        }
        self.0.extend(counts);
    }
}

/// What [`reserve`] counted for a group.
#[derive(Debug, Default)]
pub(crate) struct Reserved {
    /// Per filer-day, how many of its writes got a place: the first that many.
    pub granted: HashMap<Day, u32>,
    /// SQLite: per filer-day, the count before this group, for [`Tally::settle`].
    pub before: HashMap<Day, u32>,
}

/// Reserves a place for each of `quotas` (one per write, in the group's order).
///
/// PostgreSQL: one statement locks the group's filer-day rows, in key order, and counts the
/// places (rows not there yet are seeded first). SQLite: the counts come from `tally`, and
/// the writer settles them after the commit.
pub(crate) async fn reserve(
    conn: &mut Conn<'_>,
    quotas: &[&DailyQuota],
    tally: &Tally,
) -> Result<Reserved, sqlx::Error> {
    let mut wanted: BTreeMap<Day, (&DailyQuota, u32)> = BTreeMap::new();
    for q in quotas {
        wanted.entry(q.day_key()).or_insert((q, 0)).1 += 1;
    }
    let wants: Vec<(&DailyQuota, u32)> = wanted.into_values().collect();
    if let Conn::Lite(_) = conn {
        let mut reserved = Reserved::default();
        for (q, n) in wants {
            let filed = match tally.0.get(&q.day_key()) {
                Some(filed) => *filed,
                None => filed_since(conn, q).await?,
            };
            reserved
                .granted
                .insert(q.day_key(), n.min(q.cap.saturating_sub(filed)));
            reserved.before.insert(q.day_key(), filed);
        }
        return Ok(reserved);
    }
    let mut granted = take(conn, &wants).await?;
    let missing: Vec<(&DailyQuota, u32)> = wants
        .into_iter()
        .filter(|(q, _)| !granted.contains_key(&q.day_key()))
        .collect();
    if !missing.is_empty() {
        for (q, _) in &missing {
            let filed = filed_since(conn, q).await?;
            on_conn!(conn, c, DB => sqlx::query(
                "INSERT INTO daily_filings (filer_id, day, filed) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&q.filer)
            .bind(q.day)
            .bind(i32::try_from(filed).unwrap_or(i32::MAX))
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        }
        granted.extend(take(conn, &missing).await?);
    }
    Ok(Reserved {
        granted,
        before: HashMap::new(),
    })
}

/// The observations of `q`'s filer stored since its day began, read in the writer's
/// transaction (the pool may have no other connection: SQLite's has one).
async fn filed_since(conn: &mut Conn<'_>, q: &DailyQuota) -> Result<u32, sqlx::Error> {
    let (n,): (i64,) = on_conn!(conn, c, DB => sqlx::query_as(
        "SELECT count(*) FROM observations WHERE filer_id = $1 AND filed_at >= $2",
    )
    .bind(&q.filer)
    .bind(crate::timestamp(q.since))
    .fetch_one(c)
    .await)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Counts up to `n` more filings for each stored filer-day of `wants` (sorted, distinct),
/// within its cap; returns how many were counted, for the filer-days that have a row.
async fn take(
    conn: &mut Conn<'_>,
    wants: &[(&DailyQuota, u32)],
) -> Result<HashMap<Day, u32>, sqlx::Error> {
    let Conn::Pg(c) = conn else {
        return Ok(HashMap::new());
    };
    let as_int = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    let rows: Vec<(String, NaiveDate, i32)> = sqlx::query_as(
        "WITH want AS (SELECT * FROM unnest($1::text[], $2::date[], $3::int[], $4::int[]) \
             AS w (f, d, n, cap)), \
         old AS (SELECT x.filer_id, x.day, x.filed FROM daily_filings x \
             JOIN want ON (x.filer_id, x.day) = (want.f, want.d) \
             ORDER BY x.filer_id, x.day FOR UPDATE OF x) \
         UPDATE daily_filings u \
         SET filed = old.filed + least(want.n, greatest(want.cap - old.filed, 0)) \
         FROM old JOIN want ON (old.filer_id, old.day) = (want.f, want.d) \
         WHERE (u.filer_id, u.day) = (old.filer_id, old.day) \
         RETURNING u.filer_id, u.day, u.filed - old.filed",
    )
    .bind(
        wants
            .iter()
            .map(|(q, _)| q.filer.clone())
            .collect::<Vec<_>>(),
    )
    .bind(wants.iter().map(|(q, _)| q.day).collect::<Vec<_>>())
    .bind(wants.iter().map(|(_, n)| as_int(*n)).collect::<Vec<_>>())
    .bind(wants.iter().map(|(q, _)| as_int(q.cap)).collect::<Vec<_>>())
    .fetch_all(&mut **c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(f, d, n)| ((f, d), u32::try_from(n).unwrap_or(0)))
        .collect())
}

/// Gives back `n` places of a filer-day reserved in this transaction by writes that then
/// lost (a conflict, a key answered first). PostgreSQL; SQLite's writer settles its tally
/// without them.
pub(crate) async fn give_back(conn: &mut Conn<'_>, day: &Day, n: u32) -> Result<(), sqlx::Error> {
    let Conn::Pg(c) = conn else {
        return Ok(());
    };
    sqlx::query("UPDATE daily_filings SET filed = filed - $3 WHERE filer_id = $1 AND day = $2")
        .bind(&day.0)
        .bind(day.1)
        .bind(i32::try_from(n).unwrap_or(i32::MAX))
        .execute(&mut **c)
        .await?;
    Ok(())
}

/// Deletes, every `every`, the PostgreSQL state that no longer limits anyone: rate-limit
/// arrival times in the past and daily counts of days before yesterday (Vietnam time). A
/// background task, so no request waits for it; it ends when the pool closes.
pub fn sweep_in_background(db: &Db, every: Duration) {
    if !matches!(db, Db::Postgres(_)) {
        return;
    }
    let db = db.clone();
    tokio::spawn(async move {
        while !db.is_closed() {
            tokio::time::sleep(every).await;
            let today = redtape_domain::submission::aggregate::vietnam_date(Utc::now());
            if let Err(e) = sweep(&db, today).await {
                tracing::warn!(error = %e, "expired abuse-control state not swept");
            }
        }
    });
}

/// Forgets rate-limit state that no longer limits anyone and the daily counts of days
/// before yesterday.
pub async fn sweep(db: &Db, today: NaiveDate) -> Result<(), StoreError> {
    let before = today - chrono::Duration::days(1);
    if let Db::Postgres(pool) = db {
        sqlx::query("DELETE FROM rate_limits WHERE tat < now()")
            .execute(pool)
            .await?;
        sqlx::query("DELETE FROM daily_filings WHERE day < $1")
            .bind(before)
            .execute(pool)
            .await?;
    }
    Ok(())
}
