//! The data dictionary (`GET /v1/dictionary`): every column of every published dataset
//! ([`crate::datasets`]), so a journalist can read a figure without reading the code.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::datasets::{datasets, Dataset};
use crate::AppState;

/// The dictionary: every dataset, with the licence they are published under.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dictionary {
    #[schema(example = "1.0")]
    pub methodology_version: &'static str,
    pub licence: crate::licence::Licence,
    pub datasets: Vec<Dataset>,
}

/// The data dictionary.
///
/// Every column of every published dataset: type, unit, definition and the section of the
/// methodology it comes from, with the licence the data is published under.
#[utoipa::path(
    tag = "open data",
    responses((status = 200, description = "Every dataset and its columns", body = Dictionary))
)]
#[get("/v1/dictionary")]
pub async fn dictionary(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=3600"))
        .json(Dictionary {
            methodology_version: redtape_index::METHODOLOGY_VERSION,
            licence: state.licence.clone(),
            datasets: datasets(),
        })
}
