//! What the router cannot say by itself, answered from the OpenAPI document (the one list of
//! endpoints): which methods a path has, for `405 Method Not Allowed` with `Allow`, and `HEAD`
//! on every `GET`.
//!
//! actix-web's attribute routes put the method guard on the resource, so a wrong method on an
//! existing path falls through to the default service as if the path did not exist; the
//! default service ([`not_routed`]) looks the path up here instead of always answering 404.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use utoipa::OpenApi;

use crate::problem::ApiError;

/// Paths served outside the OpenAPI document (the dashboard, the document itself, Swagger UI's
/// entry), all GET only.
const UNDOCUMENTED_GETS: [&str; 3] = ["/", "/openapi.json", "/docs"];

/// The keys of an OpenAPI path item that are methods (the others are summaries, parameters).
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Each documented path template, split into segments, with its methods (upper case).
fn table() -> &'static Vec<(Vec<String>, BTreeSet<String>)> {
    static TABLE: OnceLock<Vec<(Vec<String>, BTreeSet<String>)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let doc = crate::openapi::ApiDoc::openapi();
        let spec = serde_json::to_value(&doc).unwrap_or_default();
        let mut table: Vec<(Vec<String>, BTreeSet<String>)> = spec["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(template, item)| {
                        let methods = item
                            .as_object()
                            .map(|item| {
                                item.keys()
                                    .filter(|k| METHODS.contains(&k.as_str()))
                                    .map(|m| m.to_ascii_uppercase())
                                    .collect()
                            })
                            .unwrap_or_default();
                        (segments(template), methods)
                    })
                    .collect()
            })
            .unwrap_or_default();
        for path in UNDOCUMENTED_GETS {
            table.push((segments(path), BTreeSet::from(["GET".to_string()])));
        }
        table
    })
}

fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The methods `path` answers, `HEAD` included wherever `GET` is; empty if no route has it.
pub fn allowed(path: &str) -> BTreeSet<String> {
    let asked = segments(path);
    let mut methods = BTreeSet::new();
    for (template, ops) in table() {
        let fits = template.len() == asked.len()
            && template
                .iter()
                .zip(&asked)
                .all(|(t, a)| (t.starts_with('{') && t.ends_with('}')) || t == a);
        if fits {
            methods.extend(ops.iter().cloned());
        }
    }
    if methods.contains("GET") {
        methods.insert("HEAD".into());
    }
    methods
}

/// The default service: 405 with `Allow` for a known path, else 404.
pub async fn not_routed(req: HttpRequest) -> HttpResponse {
    let methods = allowed(req.path());
    let error = if methods.is_empty() {
        ApiError::NotFound("no such endpoint; see /openapi.json".into())
    } else {
        ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow: methods.into_iter().collect::<Vec<_>>().join(", "),
        }
    };
    error.error_response()
}

/// Middleware: a `HEAD` is served as the `GET` of the same URL (RFC 9110 §9.3.2). The HTTP
/// layer remembers the request was a `HEAD` and sends the headers (Content-Length included)
/// without the body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(path: &str) -> String {
        allowed(path).into_iter().collect::<Vec<_>>().join(", ")
    }

    #[test]
    fn methods_come_from_the_document() {
        assert_eq!(list("/v1/procedures"), "GET, HEAD, POST");
        assert_eq!(
            list("/v1/submissions/0190c3d4-0000-7000-8000-000000000000/withdrawal"),
            "POST"
        );
        assert_eq!(list("/v1/releases/2025/1.csv"), "GET, HEAD");
        assert_eq!(list("/"), "GET, HEAD");
        assert_eq!(list("/v1/nothing"), "");
        assert_eq!(list("/v1/procedures/a/b/c/d"), "");
    }
}
