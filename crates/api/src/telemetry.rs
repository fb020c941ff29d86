//! What every answered request adds to the Prometheus series (redtape-metrics): its count and
//! latency by route template, method and status, and for filings and changes their outcome
//! and the rule that refused them (the problem type and field rule that
//! [`crate::problem::ApiError`] leaves on its response as a [`Refusal`]).

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::Method;
use redtape_metrics::{FilingLabels, RequestLabels};

/// Why a request was refused, left on the error's response for the metrics.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The problem type's slug (`invalid`, `too-many-requests`, ...).
    pub problem: &'static str,
    /// For a validation problem, its first field's rule.
    pub rule: Option<String>,
}

/// The route labels stand for: the template the request matched, or `unmatched`, so no id or
/// probing path becomes a series.
fn route(res: &ServiceResponse<impl MessageBody>) -> String {
    res.request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into())
}

fn method(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The filing operation a POST to `route` is, if any.
fn operation(route: &str) -> Option<&'static str> {
    match route {
        "/v1/timings" => Some("timing"),
        "/v1/complaints" => Some("complaint"),
        "/v1/submissions/{id}/amendments" => Some("amendment"),
        "/v1/submissions/{id}/withdrawal" => Some("withdrawal"),
        _ => None,
    }
}

/// Records one answered request.
pub fn record(res: &ServiceResponse<impl MessageBody>, m: &Method, elapsed: std::time::Duration) {
    let metrics = redtape_metrics::get();
    let route = route(res);
    let status = res.status();
    let labels = RequestLabels {
        route,
        method: method(m),
        status: status.as_u16(),
    };
    metrics.http_requests.get_or_create(&labels).inc();
    metrics
        .http_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    let Some(operation) = operation(&labels.route).filter(|_| *m == Method::POST) else {
        return;
    };
    let refusal = res.response().extensions().get::<Refusal>().cloned();
    let outcome = if status.is_success() {
        "accepted"
    } else if status.is_server_error() {
        "failed"
    } else {
        "refused"
    };
    metrics
        .filings
        .get_or_create(&FilingLabels {
            operation,
            outcome,
            problem: refusal
                .as_ref()
                .map(|r| r.problem.to_string())
                .unwrap_or_default(),
            rule: refusal.and_then(|r| r.rule).unwrap_or_default(),
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_filing_routes_are_operations() {
        assert_eq!(operation("/v1/timings"), Some("timing"));
        assert_eq!(
            operation("/v1/submissions/{id}/withdrawal"),
            Some("withdrawal")
        );
        assert_eq!(operation("/v1/submissions/{id}"), None);
        assert_eq!(method(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
