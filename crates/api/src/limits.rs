//! Abuse control: a rate limit per bearer token, and a cap on new submissions per filer per
//! day (Vietnam time).
//!
//! - The rate limit is GCRA (governor) keyed by the token's hash, read from the header as
//!   authentication reads it (`bearer`, `BEARER` and extra spaces share one quota), so unknown
//!   tokens are limited too. Every answer to a request with a token carries `RateLimit-Policy` and `RateLimit`
//!   (draft-ietf-httpapi-ratelimit-headers); a refused request is a 429 problem with
//!   `Retry-After`. Anonymous open-data reads are not limited here: they are cacheable, and a
//!   reverse proxy or CDN in front is the place to shape them (deploy/).
//! - The daily cap counts a filer's acknowledged submissions since midnight in Vietnam. The
//!   handler attaches a [`DailyQuota`] to a new submission and the store's writer reserves it in
//!   the transaction that commits the submission (`redtape_store::limits`), on both stores:
//!   refusals and failed filings never count, and on PostgreSQL every replica counts against
//!   the same rows.
//!
//! The rate limit's state depends on the store: on PostgreSQL, which several replicas may
//! share, it is a row per token in the database, taken a chunk at a time
//! (`redtape_store::limits::Shared`), the same whichever replica answers; on SQLite, served
//! by one process, it is kept in that process's memory.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};

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
use redtape_store::limits::DailyQuota;

use crate::problem::ApiError;
use crate::AppState;

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Forget idle tokens' state once at least this many are tracked.
const RETAIN_ABOVE: usize = 10_000;

/// The configured limits.
pub struct Limits {
    /// Requests per minute per token; `None` turns the limit off.
    per_minute: Option<NonZeroU32>,
    limiter: Option<Limiter>,
    /// Forget idle tokens when more than this many are tracked; twice what was left after
    /// the last time, so that many active tokens are not scanned on every request.
    retain_above: AtomicUsize,
    /// New submissions per filer per day; `None` turns the cap off.
    daily_cap: Option<u32>,
    /// The rate limit held in PostgreSQL for every replica; `None`: in memory.
    shared: Option<redtape_store::limits::Shared>,
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
            retain_above: AtomicUsize::new(RETAIN_ABOVE),
            shared: None,
        }
    }

    /// Limits for a service on `db`: the rate limit shared through the database on
    /// PostgreSQL, in memory on SQLite (one process); the daily cap in the store on both.
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
        Ok(Some(shared.take(key, per_minute.get()).await?))
    }

    /// [`Self::check`] in this process's memory.
    fn check_here(&self, key: &str) -> Option<Result<u32, u64>> {
        let limiter = self.limiter.as_ref()?;
        if limiter.len() > self.retain_above.load(Ordering::Relaxed) {
            limiter.retain_recent();
            self.retain_above
                .store((limiter.len() * 2).max(RETAIN_ABOVE), Ordering::Relaxed);
        }
        Some(match limiter.check_key(&key.to_string()) {
            Ok(snapshot) => Ok(snapshot.remaining_burst_capacity()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
        })
    }

    /// The place of a new submission by `filer` at `at` under the daily cap, which the
    /// writer reserves in the transaction that commits it; `None` when the cap is off.
    pub fn quota(&self, filer: FilerId, at: DateTime<Utc>) -> Option<DailyQuota> {
        let cap = self.daily_cap?;
        let day = vietnam_date(at);
        Some(DailyQuota {
            filer: filer.to_string(),
            day,
            cap,
            since: midnight(day).unwrap_or(at),
        })
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

/// The UTC instant at which Vietnam's `day` starts (UTC+7, no daylight saving).
fn midnight(day: NaiveDate) -> Option<DateTime<Utc>> {
    Some(day.and_hms_opt(0, 0, 0)?.and_utc() - Duration::hours(7))
}

/// The refusal of a filing over the daily cap of `cap` at `at` (counted), to retry at the
/// next midnight in Vietnam.
pub fn cap_reached(cap: u32, at: DateTime<Utc>) -> ApiError {
    refused("daily_cap");
    let tomorrow = midnight(vietnam_date(at) + Duration::days(1)).unwrap_or(at);
    let wait = (tomorrow - at).num_seconds().max(1) as u64;
    ApiError::TooManyRequests {
        detail: format!(
            "this business has filed {cap} submissions today (Vietnam time), the daily cap; \
             more are accepted from midnight"
        ),
        retry_after: wait,
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

    #[test]
    fn a_quota_counts_on_the_vietnam_day_until_its_midnight() {
        let limits = Limits::new(0, 2);
        let filer = FilerId(uuid::Uuid::from_u128(7));
        // 16:30 UTC is 23:30 in Vietnam; 17:30 UTC is already the next day there.
        let late = "2025-10-01T16:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let next_day = "2025-10-01T17:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let quota = limits.quota(filer, late).unwrap();
        assert_eq!(quota.filer, filer.to_string());
        assert_eq!(quota.day, NaiveDate::from_ymd_opt(2025, 10, 1).unwrap());
        assert_eq!(quota.cap, 2);
        assert_eq!(
            quota.since,
            "2025-09-30T17:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let next = limits.quota(filer, next_day).unwrap();
        assert_eq!(next.day, NaiveDate::from_ymd_opt(2025, 10, 2).unwrap());
        assert_eq!(
            next.since,
            "2025-10-01T17:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(Limits::new(5, 0).quota(filer, late), None, "cap off");
        // Refused half an hour before midnight: retry in 1,800 s.
        match cap_reached(2, late) {
            ApiError::TooManyRequests {
                retry_after,
                detail,
            } => {
                assert_eq!(retry_after, 1800);
                assert!(detail.contains("filed 2 submissions today"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }
}
