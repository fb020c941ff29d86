//! Open data: what anyone may read without an account (journalists, researchers, the
//! public). Every answer here is a published figure or reference data, never a filer or a
//! narrative; each list pages, streams CSV/NDJSON and carries ETags the same way
//! ([`crate::page`], [`crate::conditional`]).
//!
//! - [`indices`]: `/v1/indices` and its rankings, province composites and trends.
//! - [`responses`]: `/v1/responses`, statistics on government responses.
//! - [`releases`]: `GET /v1/releases...`, the annual releases and their documents.
//! - [`reference`]: `/v1/procedures`, `/v1/provinces`.
//! - [`microdata`]: `/v1/open/observations`, anonymised observations.
//! - [`dictionary`]: `/v1/dictionary`, the columns of every dataset.
//! - [`catalog`]: `/v1/catalog`, the DCAT-AP catalogue.

pub mod catalog;
pub mod dictionary;
pub mod indices;
pub mod microdata;
pub mod reference;
pub mod releases;
pub mod responses;
