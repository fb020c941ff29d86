use super::*;

#[test]
fn causes_are_kept_with_their_sources() {
    // A pool timeout is the database not answering: a 503 whose cause is the sqlx error.
    let command: CommandError = redtape_store::db::SqlxError::PoolTimedOut.into();
    let e = ApiError::from(command);
    assert!(matches!(e, ApiError::Unavailable(_)));
    let source = std::error::Error::source(&e).unwrap();
    assert_eq!(
        Chain(source).to_string(),
        "pool timed out while waiting for an open connection"
    );
    // A message alone is a cause too; the client never sees it.
    let e = ApiError::internal("bad status \"x\"");
    assert_eq!(
        e.problem().detail,
        "an unexpected error occurred; it has been logged"
    );
    assert_eq!(
        Chain(std::error::Error::source(&e).unwrap()).to_string(),
        "bad status \"x\""
    );
}

/// One error of every kind. The match below is exhaustive: a new variant does not compile
/// until it is listed here, and then the documentation test checks it.
fn one_of_each() -> Vec<ApiError> {
    let mut all = vec![
        ApiError::MalformedJson(String::new()),
        ApiError::Invalid(Vec::new()),
        ApiError::UnsupportedMediaType,
        ApiError::PayloadTooLarge { limit: 1 },
        ApiError::BodyTimeout { seconds: 1.0 },
        ApiError::BadRequest(String::new()),
        ApiError::Unauthorized(""),
        ApiError::Forbidden(""),
        ApiError::NotFound(String::new()),
        ApiError::MethodNotAllowed {
            method: String::new(),
            allow: String::new(),
        },
        ApiError::IdempotencyMismatch,
        ApiError::KeyTaken,
        ApiError::TooManyRequests {
            detail: String::new(),
            retry_after: 1,
        },
        ApiError::unavailable(""),
        ApiError::internal(""),
    ];
    all.extend(Conflict::ALL.map(|kind| ApiError::Conflict {
        kind,
        detail: String::new(),
    }));
    for e in &all {
        match e {
            ApiError::MalformedJson(_)
            | ApiError::Invalid(_)
            | ApiError::UnsupportedMediaType
            | ApiError::PayloadTooLarge { .. }
            | ApiError::BodyTimeout { .. }
            | ApiError::BadRequest(_)
            | ApiError::Unauthorized(_)
            | ApiError::Forbidden(_)
            | ApiError::NotFound(_)
            | ApiError::MethodNotAllowed { .. }
            | ApiError::Conflict { .. }
            | ApiError::IdempotencyMismatch
            | ApiError::KeyTaken
            | ApiError::TooManyRequests { .. }
            | ApiError::Unavailable(_)
            | ApiError::Internal(_) => {}
        }
    }
    all
}

/// docs/api.md's table of problem types lists every type the API can answer, with its
/// status.
#[test]
fn every_problem_type_is_documented_with_its_status() {
    let doc = include_str!("../../../../docs/api.md");
    let mut slugs = std::collections::BTreeSet::new();
    for e in one_of_each() {
        let (status, slug, _) = e.parts();
        slugs.insert(slug);
        let row = format!("| `/problems/{slug}` | {} |", status.as_u16());
        assert!(doc.contains(&row), "docs/api.md lacks the row {row}");
    }
    assert_eq!(
        slugs.len(),
        15 + Conflict::ALL.len(),
        "every slug is distinct"
    );
}

#[test]
fn only_a_concurrent_change_says_when_to_retry() {
    for kind in Conflict::ALL {
        let response = ApiError::Conflict {
            kind,
            detail: String::new(),
        }
        .error_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let retry = response.headers().get(header::RETRY_AFTER);
        assert_eq!(
            retry.is_some(),
            kind == Conflict::ConcurrentChange,
            "{kind:?}"
        );
    }
}
