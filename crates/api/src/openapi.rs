//! The OpenAPI document, generated from the handlers' annotations. The same JSON is committed
//! as `api-spec/openapi.json`; a test fails when the two differ.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    catalog, dictionary, health, indices, microdata, moderation, procedures, reference, releases,
    responses, submissions,
};

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
                        "A token from `redtape token issue`; shown once, stored only as a hash.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "redtape",
        description = "Business-to-government feedback on the time and cost of administrative \
procedures in Vietnam. Businesses file procedure timings and compliance-cost complaints; every \
change is an immutable event. Errors are RFC 9457 problem details (application/problem+json).",
        license(name = "Apache-2.0")
    ),
    paths(
        submissions::report_timing,
        submissions::file_complaint,
        submissions::get_submission,
        submissions::amend_submission,
        submissions::withdraw_submission,
        moderation::queue,
        moderation::verify,
        moderation::reject,
        moderation::respond,
        moderation::audit_trail,
        responses::response_statistics,
        releases::publish,
        releases::list,
        releases::latest,
        releases::download,
        indices::list_indices,
        indices::rankings,
        indices::province_composites,
        indices::trends,
        procedures::register,
        procedures::reform,
        procedures::abolish,
        reference::list_procedures,
        reference::get_procedure,
        reference::list_provinces,
        dictionary::dictionary,
        catalog::catalog,
        microdata::observations,
        health::healthz,
        health::readyz,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "submissions", description = "Businesses file and manage their submissions"),
        (name = "moderation", description = "Reform-office officers moderate submissions, answer filers and read the audit trail"),
        (name = "responses", description = "Open statistics on government responses, no account needed"),
        (name = "procedures", description = "Officers register procedures, reform their statutory terms and abolish them"),
        (name = "releases", description = "Annual releases: frozen, citable figures (CSV + SHA-256)"),
        (name = "indices", description = "Open compliance-burden figures (methodology 1.0), no account needed"),
        (name = "open data", description = "The data dictionary and the catalogue of datasets"),
        (name = "reference", description = "Open reference data: procedures and provinces"),
        (name = "operations", description = "Probes for operators"),
    )
)]
pub struct ApiDoc;

/// The document as committed in api-spec/openapi.json (pretty, trailing newline).
pub fn json() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
