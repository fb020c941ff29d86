//! The catalogue of datasets (`GET /v1/catalog`): DCAT-AP in JSON-LD, so national and
//! international data portals can harvest redtape. Every dataset of the dictionary is a
//! `dcat:Dataset` with its distributions (JSON, CSV, NDJSON where offered); every published
//! annual release is a `dcat:Dataset` too, each revision's CSV and JSON a distribution with its
//! SHA-256 checksum.

use actix_web::{get, web, HttpRequest, HttpResponse};
use redtape_domain::release::{sha256_hex, ReleaseEvent};
use serde_json::{json, Value};

use crate::datasets::DatasetId;
use crate::problem::ApiError;
use crate::AppState;

/// EU vocabulary for `dct:accrualPeriodicity`.
const FREQUENCY: &str = "http://publications.europa.eu/resource/authority/frequency/";

/// Datasets that answer in CSV and NDJSON as well as JSON.
const TABULAR: [DatasetId; 2] = [DatasetId::Indices, DatasetId::Breakdowns];

/// Datasets that need query parameters (a year, a procedure...): their distributions give an
/// access URL only, documented in the dictionary, not a download URL.
const PARAMETERISED: [DatasetId; 4] = [
    DatasetId::Rankings,
    DatasetId::ProvinceComposites,
    DatasetId::Trends,
    DatasetId::Observations,
];

fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

fn distribution(url: String, media_type: &str, title: &str) -> Value {
    json!({
        "@type": "dcat:Distribution",
        "dct:title": title,
        "dcat:accessURL": {"@id": url},
        "dcat:downloadURL": {"@id": url},
        "dcat:mediaType": media_type,
    })
}

fn period(start: String, end: String) -> Value {
    json!({
        "@type": "dct:PeriodOfTime",
        "dcat:startDate": {"@value": start, "@type": "xsd:date"},
        "dcat:endDate": {"@value": end, "@type": "xsd:date"},
    })
}

/// The catalogue of datasets (DCAT-AP, JSON-LD).
///
/// Every dataset with its licence, temporal coverage, update frequency and download URLs,
/// and every annual release revision as a distribution with its SHA-256.
#[utoipa::path(
    tag = "open data",
    responses((status = 200, description = "A dcat:Catalog in JSON-LD", content_type = "application/ld+json", body = Object))
)]
#[get("/v1/catalog")]
pub async fn catalog(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&req);
    let licence = json!({"@id": state.licence.url});
    let years = redtape_store::cells::year_range(&state.db).await?;
    let dictionary = format!("{base}/v1/dictionary");
    let mut datasets: Vec<Value> = crate::datasets::datasets()
        .into_iter()
        .map(|d| {
            let url = format!("{base}{}", d.url);
            let mut distributions = vec![distribution(url.clone(), "application/json", "JSON")];
            if PARAMETERISED.contains(&d.id) {
                if let Some(d) = distributions[0].as_object_mut() {
                    d.remove("dcat:downloadURL");
                    d.insert(
                        "dct:description".into(),
                        json!("Query parameters select the year, procedure or province; see the OpenAPI document."),
                    );
                }
            }
            if TABULAR.contains(&d.id) {
                distributions.push(distribution(format!("{url}?format=csv"), "text/csv", "CSV"));
                distributions.push(distribution(
                    format!("{url}?format=ndjson"),
                    "application/x-ndjson",
                    "NDJSON",
                ));
            }
            let mut dataset = json!({
                "@id": url,
                "@type": "dcat:Dataset",
                "dct:identifier": d.id.as_str(),
                "dct:title": d.title,
                "dct:description": d.description,
                "dct:license": licence,
                "dct:conformsTo": {"@id": format!("{dictionary}#{}", d.id.as_str())},
                "dcat:landingPage": {"@id": dictionary},
                "dct:accrualPeriodicity": {"@id": format!("{FREQUENCY}CONT")},
                "dcat:distribution": distributions,
            });
            if let Some((first, last)) = years {
                dataset["dct:temporal"] = period(format!("{first}-01-01"), format!("{last}-12-31"));
            }
            dataset
        })
        .collect();
    for year in state.releases.years().await? {
        let mut distributions = Vec::new();
        for event in state.releases.revisions(year).await? {
            let ReleaseEvent::ReleasePublished {
                revision,
                sha256,
                json,
                generated_at,
                ..
            } = &event;
            for (ext, media, checksum) in [
                ("csv", "text/csv", sha256.clone()),
                ("json", "application/json", sha256_hex(json.as_bytes())),
            ] {
                let mut d = distribution(
                    format!("{base}/v1/releases/{year}/{revision}.{ext}"),
                    media,
                    &format!(
                        "{year} release, revision {revision} ({})",
                        ext.to_uppercase()
                    ),
                );
                d["dct:issued"] =
                    json!({"@value": generated_at.to_rfc3339(), "@type": "xsd:dateTime"});
                d["dct:license"] = licence.clone();
                d["spdx:checksum"] = json!({
                    "@type": "spdx:Checksum",
                    "spdx:algorithm": {"@id": "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"},
                    "spdx:checksumValue": checksum,
                });
                distributions.push(d);
            }
        }
        datasets.push(json!({
            "@id": format!("{base}/v1/releases/{year}"),
            "@type": "dcat:Dataset",
            "dct:identifier": format!("release-{year}"),
            "dct:title": format!("Compliance-burden figures {year} (annual release)"),
            "dct:description": format!("Every index cell of {year}, frozen by a reform office; each revision's CSV is byte-identical forever and cited by its SHA-256."),
            "dct:license": licence,
            "dct:temporal": period(format!("{year}-01-01"), format!("{year}-12-31")),
            "dct:accrualPeriodicity": {"@id": format!("{FREQUENCY}ANNUAL")},
            "dct:conformsTo": {"@id": format!("{dictionary}#indices")},
            "dcat:distribution": distributions,
        }));
    }
    let body = json!({
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "spdx": "http://spdx.org/rdf/terms#",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
        },
        "@id": format!("{base}/v1/catalog"),
        "@type": "dcat:Catalog",
        "dct:title": "redtape: compliance burden of administrative procedures in Vietnam",
        "dct:description": "Open figures on the time and cost businesses spend on administrative procedures, by procedure, province and year (methodology version 1.0), with annual releases.",
        "dct:license": licence,
        "dct:language": [{"@id": "http://publications.europa.eu/resource/authority/language/VIE"}, {"@id": "http://publications.europa.eu/resource/authority/language/ENG"}],
        "foaf:homepage": {"@id": format!("{base}/docs/")},
        "dcat:dataset": datasets,
    });
    Ok(HttpResponse::Ok()
        .content_type("application/ld+json")
        .body(body.to_string()))
}
