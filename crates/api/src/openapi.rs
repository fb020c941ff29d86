//! The OpenAPI document, generated from the handlers' annotations. The same JSON is committed
//! as `api-spec/openapi.json`; a test fails when the two differ.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `POST /v1/admin/tokens` or `redtape token issue`; shown once, stored only as a hash.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every status the server can answer, on every operation that can get it, from the rules
/// that produce them (middleware and extractors shared by every handler), so that no handler's
/// annotation can forget one. An operation's own, more specific description of a status wins.
///
/// - any operation: 429 (a request that carries a token counts against its rate limit, even
///   on an open endpoint) and, except `/healthz`, 503 (the store does not answer);
/// - a token-only operation: 401 and 403;
/// - an operation with parameters or a body: 422; with a body: 400 and 415; any but a GET:
///   408 and 413 (a body is read and bounded whether or not one is expected);
/// - an open-data GET: 304 to a matching `If-None-Match` (see `conditional`);
/// - a list (an operation with `format`): its 200 in CSV and NDJSON beside JSON.
struct EveryStatus;

impl EveryStatus {
    fn problem(description: &str, retry_after: bool) -> RefOr<Response> {
        let mut response = ResponseBuilder::new().description(description).content(
            crate::problem::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
        if retry_after {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::Integer))
                    .description(Some("Seconds to wait before retrying"))
                    .build(),
            );
        }
        RefOr::T(response.build())
    }

    fn complete(path: &str, method: &str, op: &mut Operation) {
        let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
        let has_body = op.request_body.is_some();
        let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || has_body;
        let mut add = |status: &str, description: &str, retry_after: bool| {
            op.responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| Self::problem(description, retry_after));
        };
        add(
            "429",
            "The token's rate limit is used up (every request that carries a token counts): \
             retry after `Retry-After` seconds",
            true,
        );
        if path != "/healthz" && path != "/metrics" {
            add(
                "503",
                "The store does not answer; retry after `Retry-After`",
                true,
            );
        }
        if secured {
            add(
                "401",
                "No token, another scheme, or an unknown or revoked token",
                false,
            );
            add("403", "The token's role may not use this endpoint", false);
        }
        if has_params {
            add(
                "422",
                "A parameter or field breaks a rule (see `errors`: where, and the rule code)",
                false,
            );
        }
        if has_body {
            add("400", "The body is not JSON, or could not be read", false);
            add("415", "The body is not `application/json`", false);
        }
        // Any body is read (and bounded) before routing, even where none is expected.
        if method != "get" {
            add(
                "408",
                "The body did not arrive in time (the connection is closed)",
                false,
            );
            add("413", "The body is over 64 KiB", false);
        }
        // A list (it takes `format`) answers CSV and NDJSON as well as JSON (`page::List`).
        let list = op.parameters.iter().flatten().any(|p| p.name == "format");
        if let (true, Some(RefOr::T(ok))) = (list, op.responses.responses.get_mut("200")) {
            for (content_type, description) in [
                (
                    "text/csv",
                    "CSV: a header line with the dictionary's columns, then one line per item",
                ),
                ("application/x-ndjson", "NDJSON: one JSON item per line"),
            ] {
                ok.content
                    .entry(content_type.to_string())
                    .or_insert_with(|| {
                        ContentBuilder::new()
                            .schema(Some(
                                ObjectBuilder::new()
                                    .schema_type(Type::String)
                                    .description(Some(description)),
                            ))
                            .build()
                    });
            }
        }
        if method == "get" && crate::conditional::is_open_data(path) {
            op.responses
                .responses
                .entry("304".to_string())
                .or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description("Not modified: `If-None-Match` matched the ETag")
                            .build(),
                    )
                });
        }
    }
}

impl Modify for EveryStatus {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, op) in operations {
                if let Some(op) = op {
                    Self::complete(path, method, op);
                }
            }
        }
    }
}

/// The one list of endpoints (issue 12): each handler is named once, here, and this list both
/// documents it (the `paths` of the OpenAPI document) and registers it on the application
/// ([`services`], used by `crate::app`), so a route cannot exist without its documentation or
/// the reverse. The order is the registration order, which actix matches in. Only the
/// dashboard (HTML) and the document's own routes are registered outside it (`crate::app`).
macro_rules! endpoints {
    ($($($segment:ident)::+),* $(,)?) => {
        #[derive(OpenApi)]
        #[openapi(
            info(
                title = "redtape",
                description = "Business-to-government feedback on the time and cost of administrative \
        procedures in Vietnam. Businesses file procedure timings and compliance-cost complaints; every \
        change is an immutable event. Errors are RFC 9457 problem details (application/problem+json).",
                license(name = "Apache-2.0")
            ),
            paths($(crate::$($segment)::+),*),
            modifiers(&BearerAuth, &EveryStatus),
            tags(
                (name = "submissions", description = "Businesses file and manage their submissions"),
                (name = "account", description = "A filer's own account: who it is, its profile, its submissions; an intermediary's members"),
                (name = "moderation", description = "Reform-office officers moderate submissions, answer filers and read the audit trail"),
                (name = "responses", description = "Open statistics on government responses, no account needed"),
                (name = "procedures", description = "Officers register procedures, reform their statutory terms and abolish them"),
                (name = "releases", description = "Annual releases: frozen, citable figures (CSV + SHA-256)"),
                (name = "indices", description = "Open compliance-burden figures (methodology 1.0), no account needed"),
                (name = "open data", description = "The data dictionary and the catalogue of datasets"),
                (name = "reference", description = "Open reference data: procedures and provinces"),
                (name = "admin", description = "Administrators onboard filers and staff: register filers, issue, list and revoke tokens"),
                (name = "operations", description = "Probes for operators"),
            )
        )]
        pub struct ApiDoc;

        /// Registers every documented endpoint, in the list's order.
        pub fn services(config: &mut actix_web::web::ServiceConfig) {
            $(config.service(crate::$($segment)::+);)*
        }
    };
}

endpoints!(
    business::submissions::report_timing,
    business::submissions::file_complaint,
    business::submissions::get_submission,
    business::submissions::amend_submission,
    business::submissions::withdraw_submission,
    business::account::list_own,
    business::account::me,
    business::account::change_profile,
    business::members::register_member,
    business::members::list_members,
    business::members::change_member_profile,
    officer::moderation::queue,
    officer::moderation::verify,
    officer::moderation::reject,
    officer::moderation::respond,
    officer::moderation::audit_trail,
    open::responses::response_statistics,
    officer::releases::publish,
    open::releases::list,
    open::releases::latest,
    open::releases::download,
    open::indices::list_indices,
    open::indices::breakdowns,
    open::indices::rankings,
    open::indices::province_composites,
    open::indices::trends,
    officer::procedures::register,
    officer::procedures::reform,
    officer::procedures::abolish,
    open::reference::list_procedures,
    open::reference::get_procedure,
    open::reference::list_provinces,
    open::dictionary::dictionary,
    open::catalog::catalog,
    open::microdata::observations,
    admin::accounts::register_filer,
    admin::accounts::list_filers,
    admin::accounts::get_filer,
    admin::accounts::issue_token,
    admin::accounts::list_tokens,
    admin::accounts::revoke_token,
    ops::health::healthz,
    ops::health::readyz,
    ops::metrics::metrics,
);

/// The document as committed in api-spec/openapi.json (pretty, trailing newline).
pub fn json() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
