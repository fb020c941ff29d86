//! Abuse control: a rate limit per bearer token, and a cap on new submissions per filer per
//! day (Vietnam time).
//!
//! - The rate limit is GCRA (governor) keyed by the token's hash, read from the header as
//!   authentication reads it (`bearer`, `BEARER` and extra spaces share one quota), so unknown
//!   tokens are limited too. Every answer to a request with a token carries `RateLimit-Policy` and `RateLimit`
//!   (draft-ietf-httpapi-ratelimit-headers); a refused request is a 429 problem with
//!   `Retry-After`. Anonymous open-data reads are not limited here: they are cacheable, and a
//!   reverse proxy or CDN in front is the place to shape them (deploy/).
//! - The daily cap counts a filer's acknowledged submissions since midnight in Vietnam,
//!   seeded from the store the first time a filer is seen each day. Refusals and failed
//!   filings do not count.
//!
//! Where the counts live depends on the store. On PostgreSQL, which several replicas may
//! share, both are rows in the database (`redtape_store::limits`): a token's quota and a
//! filer's cap are the same whichever replica answers, and survive a replica's death. On
//! SQLite, served by one process, they are kept in that process's memory.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use redtape_domain::submission::aggregate::vietnam_date;
use redtape_domain::submission::FilerId;

use crate::problem::ApiError;
use crate::AppState;

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Forget idle tokens' state once this many are tracked.
const RETAIN_ABOVE: usize = 10_000;

/// How often a process sweeps the shared tables of state that no longer limits anyone.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The configured limits.
pub struct Limits {
    /// Requests per minute per token; `None` turns the limit off.
    per_minute: Option<NonZeroU32>,
    limiter: Option<Limiter>,
    /// New submissions per filer per day; `None` turns the cap off.
    daily_cap: Option<u32>,
    filed: Mutex<HashMap<(FilerId, NaiveDate), u32>>,
    /// The PostgreSQL pool holding both limits for every replica; `None`: in memory.
    shared: Option<redtape_store::limits::Shared>,
    swept: Mutex<std::time::Instant>,
}

impl Limits {
    /// Limits kept in this process's memory; `per_minute` 0 or `daily_cap` 0 turns that limit
    /// off.
    pub fn new(per_minute: u32, daily_cap: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute);
        Self {
            per_minute,
            limiter: per_minute.map(|n| {
                RateLimiter::keyed(Quota::per_minute(n))
                    .with_middleware::<StateInformationMiddleware>()
            }),
            daily_cap: (daily_cap > 0).then_some(daily_cap),
            filed: Mutex::new(HashMap::new()),
            shared: None,
            swept: Mutex::new(std::time::Instant::now()),
        }
    }

    /// Limits for a service on `db`: shared through the database on PostgreSQL, in memory on
    /// SQLite (one process).
    pub fn on(db: &redtape_store::Db, per_minute: u32, daily_cap: u32) -> Self {
        let mut limits = Self::new(per_minute, daily_cap);
        limits.shared = redtape_store::limits::Shared::of(db);
        if limits.shared.is_some() {
            limits.limiter = None;
        }
        limits
    }

    /// No limits (tests of other things, benchmarks).
    pub fn off() -> Self {
        Self::new(0, 0)
    }

    /// Whether requests with a token are limited at all.
    fn limits_rate(&self) -> bool {
        self.per_minute.is_some()
    }

    /// Checks and counts one request for `key`: `Ok(remaining)` or `Err(seconds to wait)`.
    async fn check(&self, key: &str) -> Result<Option<Result<u32, u64>>, ApiError> {
        let Some(per_minute) = self.per_minute else {
            return Ok(None);
        };
        let Some(shared) = &self.shared else {
            return Ok(self.check_here(key));
        };
        self.sweep(shared).await;
        Ok(Some(shared.take(key, per_minute.get()).await?))
    }

    /// Deletes expired shared state, at most once per [`SWEEP_EVERY`] in this process.
    async fn sweep(&self, shared: &redtape_store::limits::Shared) {
        let due = self.swept.lock().is_ok_and(|mut at| {
            let due = at.elapsed() >= SWEEP_EVERY;
            if due {
                *at = std::time::Instant::now();
            }
            due
        });
        if due {
            let today = vietnam_date(chrono::Utc::now());
            if let Err(e) = shared.forget_stale(today).await {
                tracing::warn!(error = %e, "expired rate-limit state not swept");
            }
        }
    }

    /// [`Self::check`] in this process's memory.
    fn check_here(&self, key: &str) -> Option<Result<u32, u64>> {
        let limiter = self.limiter.as_ref()?;
        if limiter.len() > RETAIN_ABOVE {
            limiter.retain_recent();
        }
        Some(match limiter.check_key(&key.to_string()) {
            Ok(snapshot) => Ok(snapshot.remaining_burst_capacity()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
        })
    }

    /// Reserves one submission for `filer` on the Vietnam day of `at`, or refuses with the
    /// seconds until that day ends. `count_since_midnight` is asked the first time the filer
    /// is seen that day.
    pub async fn reserve_filing<F, Fut>(
        &self,
        filer: FilerId,
        at: DateTime<Utc>,
        count_since_midnight: F,
    ) -> Result<(), ApiError>
    where
        F: FnOnce(DateTime<Utc>) -> Fut,
        Fut: std::future::Future<Output = Result<u32, ApiError>>,
    {
        let Some(cap) = self.daily_cap else {
            return Ok(());
        };
        let day = vietnam_date(at);
        let midnight = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc() - Duration::hours(7))
            .unwrap_or(at);
        if let Some(shared) = &self.shared {
            let seeded = shared
                .reserve(&filer.to_string(), day, cap, || {
                    count_since_midnight(midnight)
                })
                .await?;
            return if seeded? {
                Ok(())
            } else {
                Err(self.cap_reached(cap, midnight, at))
            };
        }
        let known = self
            .filed
            .lock()
            .map_err(|_| ApiError::internal("daily cap lock poisoned"))?
            .contains_key(&(filer, day));
        let seed = if known {
            0
        } else {
            count_since_midnight(midnight).await?
        };
        let mut filed = self
            .filed
            .lock()
            .map_err(|_| ApiError::internal("daily cap lock poisoned"))?;
        filed.retain(|(_, d), _| *d >= day);
        let count = filed.entry((filer, day)).or_insert(seed);
        if *count >= cap {
            return Err(self.cap_reached(cap, midnight, at));
        }
        *count += 1;
        Ok(())
    }

    /// The refusal of a filing over the cap (counted), to retry at the next midnight.
    fn cap_reached(&self, cap: u32, midnight: DateTime<Utc>, at: DateTime<Utc>) -> ApiError {
        refused("daily_cap");
        let tomorrow = midnight + Duration::days(1);
        let wait = (tomorrow - at).num_seconds().max(1) as u64;
        ApiError::TooManyRequests {
            detail: format!(
                "this business has filed {cap} submissions today (Vietnam time), the daily \
                 cap; more are accepted from midnight"
            ),
            retry_after: wait,
        }
    }

    /// Gives back a reservation whose filing did not happen. On PostgreSQL a failure is only
    /// logged: the filing failed already, and at worst the filer may file one fewer today.
    pub async fn release_filing(&self, filer: FilerId, at: DateTime<Utc>) {
        if self.daily_cap.is_none() {
            return;
        }
        if let Some(shared) = &self.shared {
            let day = vietnam_date(at);
            if let Err(e) = shared.release(&filer.to_string(), day).await {
                tracing::warn!(error = %e, "daily-cap reservation not given back");
            }
            return;
        }
        if let Ok(mut filed) = self.filed.lock() {
            if let Some(count) = filed.get_mut(&(filer, vietnam_date(at))) {
                *count = count.saturating_sub(1);
            }
        }
    }

    fn policy(&self) -> Option<String> {
        self.per_minute.map(|n| format!("\"per-token\";q={n};w=60"))
    }

    /// The `RateLimit` field: units left, and seconds until the whole quota is back.
    fn state(&self, remaining: u32) -> Option<String> {
        let n = self.per_minute?.get();
        let used = n.saturating_sub(remaining);
        let reset = (u64::from(used) * 60).div_ceil(u64::from(n));
        Some(format!("\"per-token\";r={remaining};t={reset}"))
    }
}

/// Counts a refusal in `redtape_limit_refusals_total`.
fn refused(limit: &'static str) {
    redtape_metrics::get()
        .limit_refusals
        .get_or_create(&redtape_metrics::LimitLabels { limit })
        .inc();
}

fn insert(
    res: &mut actix_web::HttpResponse<impl MessageBody>,
    name: &'static str,
    value: Option<String>,
) {
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        res.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// What a request's quota is keyed by: the hash of its bearer token as authentication reads
/// it (so every spelling of `Bearer` shares one quota), or of the raw header when it is not a
/// bearer token at all (still limited: it will only get 401s, but those cost a lookup).
fn rate_key(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(AUTHORIZATION)?;
    let token = crate::extract::bearer(headers)
        .ok()
        .unwrap_or_else(|| String::from_utf8_lossy(raw.as_bytes()).into_owned());
    Some(redtape_store::tokens::hash(&token))
}

/// Middleware: applies the per-token rate limit to every request that presents a token.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .filter(|s| s.limits.limits_rate())
        .cloned();
    let key = state.as_ref().and_then(|_| rate_key(req.headers()));
    let (Some(key), Some(state)) = (key, state) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let limits = &state.limits;
    let checked = match limits.check(&key).await {
        Ok(checked) => checked,
        Err(error) => return Ok(req.into_response(error.error_response())),
    };
    match checked {
        None => Ok(next.call(req).await?.map_into_boxed_body()),
        Some(Ok(remaining)) => {
            let mut res = next.call(req).await?.map_into_boxed_body();
            insert(res.response_mut(), "ratelimit-policy", limits.policy());
            insert(res.response_mut(), "ratelimit", limits.state(remaining));
            Ok(res)
        }
        Some(Err(wait)) => {
            refused("rate");
            let error = ApiError::TooManyRequests {
                detail: format!(
                    "this token has used its {} requests per minute; retry in {wait} s",
                    limits.per_minute.map_or(0, NonZeroU32::get)
                ),
                retry_after: wait,
            };
            let mut response = error.error_response();
            insert(&mut response, "ratelimit-policy", limits.policy());
            insert(
                &mut response,
                "ratelimit",
                limits
                    .per_minute
                    .map(|_| format!("\"per-token\";r=0;t={wait}")),
            );
            Ok(req.into_response(response))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_its_quota_then_waits() {
        let limits = Limits::new(3, 0);
        assert_eq!(limits.check_here("a"), Some(Ok(2)));
        assert_eq!(limits.check_here("a"), Some(Ok(1)));
        assert_eq!(limits.check_here("a"), Some(Ok(0)));
        // One unit comes back every 20 s.
        assert!(matches!(limits.check_here("a"), Some(Err(s)) if (19..=20).contains(&s)));
        assert_eq!(
            limits.check_here("b"),
            Some(Ok(2)),
            "tokens do not share a quota"
        );
        assert_eq!(Limits::off().check_here("a"), None);
        assert_eq!(limits.state(0).as_deref(), Some("\"per-token\";r=0;t=60"));
        assert_eq!(limits.state(2).as_deref(), Some("\"per-token\";r=2;t=20"));
        assert_eq!(limits.policy().as_deref(), Some("\"per-token\";q=3;w=60"));
    }

    #[test]
    fn every_spelling_of_the_scheme_shares_one_key() {
        let key = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            rate_key(&headers)
        };
        let canonical = key("Bearer rt_abc");
        assert!(canonical.is_some());
        for spelling in [
            "bearer rt_abc",
            "BEARER rt_abc",
            "Bearer    rt_abc  ",
            "bEaReR rt_abc",
        ] {
            assert_eq!(key(spelling), canonical, "{spelling:?}");
        }
        assert_ne!(key("Bearer rt_abd"), canonical);
        assert_ne!(key("Basic rt_abc"), canonical);
        assert_eq!(rate_key(&HeaderMap::new()), None);
    }

    #[actix_web::test]
    async fn the_daily_cap_counts_per_vietnam_day() {
        let limits = Limits::new(0, 2);
        let filer = FilerId(uuid::Uuid::from_u128(7));
        // 16:30 UTC is 23:30 in Vietnam; 17:30 UTC is already the next day there.
        let late = "2025-10-01T16:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let next_day = "2025-10-01T17:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let seeded = |n: u32| {
            move |since: DateTime<Utc>| async move {
                assert_eq!(
                    since,
                    "2025-09-30T17:00:00Z".parse::<DateTime<Utc>>().unwrap()
                );
                Ok(n)
            }
        };
        // One already filed today (from the store), one more allowed.
        limits.reserve_filing(filer, late, seeded(1)).await.unwrap();
        let refused = limits.reserve_filing(filer, late, seeded(99)).await;
        match refused {
            Err(ApiError::TooManyRequests { retry_after, .. }) => assert_eq!(retry_after, 1800),
            other => panic!("{other:?}"),
        }
        // A failed filing gives its slot back.
        limits.release_filing(filer, late).await;
        limits
            .reserve_filing(filer, late, seeded(99))
            .await
            .unwrap();
        // The next Vietnam day starts afresh (seeded from its own midnight).
        let fresh = |since: DateTime<Utc>| async move {
            assert_eq!(
                since,
                "2025-10-01T17:00:00Z".parse::<DateTime<Utc>>().unwrap()
            );
            Ok(0)
        };
        limits.reserve_filing(filer, next_day, fresh).await.unwrap();
        assert!(Limits::new(0, 0)
            .reserve_filing(filer, late, seeded(1000))
            .await
            .is_ok());
    }
}
