//! Open-data conventions shared by every public list (docs/open-data.md):
//!
//! - **Licence**: every dataset is published under one licence (CC BY 4.0 unless configured),
//!   named in a `Link: <...>; rel="license"` header and in the dictionary and catalogue.
//! - **Conditional requests**: a public GET gets an `ETag` derived from the version of the
//!   live data (the projector's checkpoint), the URL and the representation asked for, and
//!   `Cache-Control`. A matching `If-None-Match` is answered `304` before any query runs. The
//!   data only changes when the projector commits, so the ETag changes exactly when an answer
//!   may.
//! - **Keyset pagination** ([`Page`]): a deterministic order, `limit`, and an opaque `cursor`
//!   naming the last row served; the next page's URL is in the body (`next`) and in a
//!   `Link: <...>; rel="next"` header, with every other filter kept.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::problem::ApiError;
use crate::AppState;

/// How long a read of the data version is reused: ETags may lag a commit by this much, far
/// less than the one-minute cache lifetime of live data.
const VERSION_TTL: Duration = Duration::from_secs(1);

/// How long clients and caches may reuse a live answer without asking again.
pub const LIVE_MAX_AGE: &str = "public, max-age=60";

/// The version of the live data: the projector's checkpoint, read at most once a second.
#[derive(Default)]
pub struct DataVersion {
    cached: Mutex<Option<((i64, i64), Instant)>>,
}

impl DataVersion {
    pub async fn get(&self, state: &AppState) -> Result<(i64, i64), ApiError> {
        if let Ok(cached) = self.cached.lock() {
            if let Some((version, at)) = *cached {
                if at.elapsed() < VERSION_TTL {
                    return Ok(version);
                }
            }
        }
        let version = redtape_store::projector::checkpoint(&state.db).await?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((version, Instant::now()));
        }
        Ok(version)
    }
}

/// Public GET endpoints whose answers depend only on the URL, the representation asked for
/// and the live data (release downloads set their own, content-derived ETag).
pub(crate) fn is_open_data(path: &str) -> bool {
    const PREFIXES: [&str; 7] = [
        "/v1/indices",
        "/v1/responses",
        "/v1/procedures",
        "/v1/provinces",
        "/v1/releases",
        "/v1/dictionary",
        "/v1/catalog",
    ];
    PREFIXES.iter().any(|p| path.starts_with(p)) || path.starts_with("/v1/open/")
}

/// A weak ETag for this request on this version of the data.
fn etag(state: &AppState, version: (i64, i64), req: &ServiceRequest) -> String {
    let mut h = Sha256::new();
    h.update(format!("{}.{}\n", version.0, version.1));
    h.update(req.uri().to_string());
    h.update("\n");
    for name in [header::ACCEPT, header::ACCEPT_LANGUAGE] {
        if let Some(v) = req.headers().get(name) {
            h.update(v.as_bytes());
        }
        h.update("\n");
    }
    h.update(state.licence.url.as_bytes());
    h.update(redtape_index::METHODOLOGY_VERSION);
    h.update(state.projector.methodology().k.to_string());
    format!("W/\"{}\"", &hex::encode(h.finalize())[..32])
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, RFC 9110 §13.1.2). `*` is
/// not a match here: it matches only a representation that exists, which only the handler
/// knows (see [`any_representation`]).
pub fn matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    if_none_match.split(',').any(|t| bare(t) == bare(etag))
}

/// Whether an `If-None-Match` value is `*` (any current representation).
pub fn any_representation(if_none_match: &str) -> bool {
    if_none_match.split(',').any(|t| t.trim() == "*")
}

/// Middleware: ETag, Cache-Control, licence link and 304 for open data.
pub async fn conditional(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|_| req.method() == Method::GET && is_open_data(req.path()))
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let version = match state.data_version.get(&state).await {
        Ok(v) => v,
        // Without a version there is no ETag; the handler reports the database itself.
        Err(_) => return Ok(next.call(req).await?.map_into_boxed_body()),
    };
    let tag = etag(&state, version, &req);
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // A tag we handed out was on a 200 for this URL and data version, so the representation
    // exists and the handler need not run; `*` must let the handler validate and resolve.
    let fresh = matches(if_none_match, &tag);
    let star = !fresh && any_representation(if_none_match);
    let headers = [
        (header::ETAG, tag),
        (header::CACHE_CONTROL, LIVE_MAX_AGE.to_string()),
        (header::LINK, state.licence.link()),
    ];
    if fresh {
        return Ok(req.into_response(not_modified(headers, None)));
    }
    let mut res = next.call(req).await?.map_into_boxed_body();
    if star && res.status() == StatusCode::OK {
        let own = res.headers().get(header::ETAG).cloned();
        return Ok(res.into_response(not_modified(headers, own)));
    }
    if res.status() == StatusCode::OK && !res.headers().contains_key(header::ETAG) {
        for (name, value) in headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                match name {
                    // Keep a `rel="next"` link the handler set.
                    header::LINK => {
                        res.headers_mut().append(name, v);
                    }
                    _ => {
                        res.headers_mut().insert(name, v);
                    }
                }
            }
        }
    }
    Ok(res)
}

/// A 304 with the representation's validators and cache headers; `own_etag` (a handler's own,
/// content-derived tag) replaces the data-version tag when there is one.
fn not_modified(
    headers: [(header::HeaderName, String); 3],
    own_etag: Option<HeaderValue>,
) -> HttpResponse {
    let mut response = HttpResponse::NotModified();
    for (name, value) in headers {
        response.insert_header((name, value));
    }
    if let Some(own) = own_etag {
        response.insert_header((header::ETAG, own));
    }
    response.finish()
}

/// Largest page of any open list.
pub const MAX_LIMIT: usize = 10_000;
/// The page size when none is asked for: large enough that most lists fit in one page.
pub const DEFAULT_LIMIT: usize = 1_000;

/// A page request: how many, after which row.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: usize,
    /// The sort key of the last row of the previous page.
    pub after: Option<Vec<String>>,
}

impl Page {
    /// Parses `limit` and `cursor`; the cursor must hold `key_len` parts.
    pub fn parse(
        limit: Option<&str>,
        cursor: Option<&str>,
        key_len: usize,
    ) -> Result<Page, ApiError> {
        let limit = parse_limit(limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(decode_cursor(c, key_len)?),
        };
        Ok(Page { limit, after })
    }

    /// Keeps the rows after the cursor, up to the limit; `key` gives a row's sort key (the
    /// rows must already be in that order). Returns the page and the next page's cursor.
    pub fn apply<T>(
        &self,
        rows: Vec<T>,
        key: impl Fn(&T) -> Vec<String>,
    ) -> (Vec<T>, Option<String>) {
        let mut rows: Vec<T> = match &self.after {
            None => rows,
            Some(after) => rows.into_iter().filter(|r| key(r) > *after).collect(),
        };
        let next = if rows.len() > self.limit {
            rows.truncate(self.limit);
            rows.last().map(|r| encode_cursor(&key(r)))
        } else {
            None
        };
        (rows, next)
    }
}

/// Parses a `limit` parameter: `default` when absent, else 1 to `max`.
pub fn parse_limit(text: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(default),
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::parameter(
                    "limit",
                    "range",
                    format!("must be a whole number from 1 to {max}, got {t:?}"),
                )
            }),
    }
}

/// A cursor is the key parts joined by a unit separator, hex-encoded: opaque to clients.
pub fn encode_cursor(parts: &[String]) -> String {
    hex::encode(parts.join("\u{1f}"))
}

pub fn decode_cursor(text: &str, key_len: usize) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::parameter("cursor", "format", "not a cursor this API gave out");
    let bytes = hex::decode(text).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let parts: Vec<String> = text.split('\u{1f}').map(str::to_string).collect();
    if parts.len() != key_len {
        return Err(bad());
    }
    Ok(parts)
}

/// The URL of the next page: this request's URL with `cursor` replaced.
pub fn next_url(req: &actix_web::HttpRequest, cursor: &str) -> String {
    let mut query: Vec<(String, String)> = url_pairs(req.query_string())
        .into_iter()
        .filter(|(k, _)| k != "cursor")
        .collect();
    query.push(("cursor".into(), cursor.into()));
    let encoded: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{}?{}", req.path(), encoded.join("&"))
}

/// The `Link` header value of a next page.
pub fn next_link(url: &str) -> String {
    format!("<{url}>; rel=\"next\"")
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
}

fn encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// The representation a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Ndjson,
}

impl Format {
    /// From `format=` if given, else from `Accept` (text/csv, application/x-ndjson), else JSON.
    pub fn of(req: &actix_web::HttpRequest, given: Option<&str>) -> Result<Format, ApiError> {
        match given.filter(|g| !g.is_empty()) {
            Some("json") => return Ok(Format::Json),
            Some("csv") => return Ok(Format::Csv),
            Some("ndjson") => return Ok(Format::Ndjson),
            Some(other) => {
                return Err(ApiError::parameter(
                    "format",
                    "one_of",
                    format!("format must be one of json, csv, ndjson, got {other:?}"),
                ))
            }
            None => {}
        }
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Ok(if accept.contains("text/csv") {
            Format::Csv
        } else if accept.contains("application/x-ndjson") {
            Format::Ndjson
        } else {
            Format::Json
        })
    }
}

/// Rows per chunk of a streamed CSV or NDJSON body.
const ROWS_PER_CHUNK: usize = 256;

/// The format, page size and cursor of any open list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// json (default), csv or ndjson; `Accept: text/csv` or `application/x-ndjson` also
    /// selects the format.
    pub format: Option<String>,
    /// Rows per page, 1 to 10,000 (default 1,000).
    pub limit: Option<String>,
    /// From the previous page's `next` URL (or `next_cursor`).
    pub cursor: Option<String>,
}

impl ListParams {
    /// The format and page asked for; the cursor holds `key_len` parts.
    pub fn parse(
        &self,
        req: &actix_web::HttpRequest,
        key_len: usize,
    ) -> Result<(Format, Page), ApiError> {
        Ok((
            Format::of(req, self.format.as_deref())?,
            Page::parse(self.limit.as_deref(), self.cursor.as_deref(), key_len)?,
        ))
    }
}

/// One page of a list, ready to answer in any format.
pub struct List<T> {
    pub items: Vec<T>,
    /// The next page's URL, if any (sent as `Link: <...>; rel="next"` in every format).
    pub next: Option<String>,
    /// The CSV header (the dictionary's columns of the dataset, in order): sent even when the
    /// page is empty. Nested values (arrays, objects) are written as compact JSON.
    pub columns: Vec<&'static str>,
    /// The download's file name, without extension.
    pub filename: &'static str,
}

impl<T: Serialize + 'static> List<T> {
    /// A page of the dictionary dataset `id`.
    pub fn of(
        id: crate::dictionary::DatasetId,
        items: Vec<T>,
        next: Option<String>,
        filename: &'static str,
    ) -> Self {
        List {
            items,
            next,
            columns: crate::dictionary::columns_of(id),
            filename,
        }
    }

    /// Answers in `format`: JSON through `envelope`; CSV and NDJSON streamed in chunks of rows,
    /// so a large page is never held as one body.
    pub fn respond<E: Serialize>(
        self,
        format: Format,
        envelope: impl FnOnce(Vec<T>) -> E,
    ) -> Result<HttpResponse, ApiError> {
        let mut response = HttpResponse::Ok();
        if let Some(next) = &self.next {
            response.insert_header((header::LINK, next_link(next)));
        }
        let header_line = csv_header(&self.columns)?;
        match format {
            Format::Json => Ok(response.json(envelope(self.items))),
            Format::Ndjson => Ok(response
                .content_type("application/x-ndjson")
                .streaming(chunks(self.items, None, move |rows| ndjson_chunk(rows)))),
            Format::Csv => {
                let columns = self.columns;
                Ok(response
                    .content_type("text/csv; charset=utf-8")
                    .insert_header((
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}.csv\"", self.filename),
                    ))
                    .streaming(chunks(self.items, Some(header_line), move |rows| {
                        csv_chunk(&columns, rows)
                    })))
            }
        }
    }
}

pub fn csv_header(columns: &[&str]) -> Result<web::Bytes, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(columns)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    writer
        .into_inner()
        .map(web::Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// CSV lines of `rows`, one field per column, from each row's JSON form: so every dataset
/// writes its values exactly as its JSON does (null as an empty field; nested values as
/// compact JSON).
pub fn csv_chunk<T: Serialize>(columns: &[&str], rows: &[T]) -> Result<web::Bytes, String> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for row in rows {
        let value = serde_json::to_value(row).map_err(|e| e.to_string())?;
        let record = columns.iter().map(|c| match value.get(c) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => neutralise(s),
            Some(other) => other.to_string(),
        });
        writer.write_record(record).map_err(|e| e.to_string())?;
    }
    writer
        .into_inner()
        .map(web::Bytes::from)
        .map_err(|e| e.to_string())
}

/// A text cell a spreadsheet would run as a formula (OWASP's CSV injection rule: it begins
/// with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`, which spreadsheets show
/// as text and hide. A name such as `=HYPERLINK(...)` is written `'=HYPERLINK(...)`. Numbers
/// are never touched: JSON numbers are not text cells, and text that is a whole number
/// (`-12.5`, a date never starts with a sign) stays as it is, so no figure changes.
pub fn neutralise(text: &str) -> String {
    let risky = text
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    if risky && text.parse::<f64>().is_err() {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

fn ndjson_chunk<T: Serialize>(rows: &[T]) -> Result<web::Bytes, String> {
    let mut out = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut out, row).map_err(|e| e.to_string())?;
        out.push(b'\n');
    }
    Ok(web::Bytes::from(out))
}

/// A body stream: an optional first chunk, then the rows serialized a chunk at a time as
/// the client reads.
fn chunks<T: 'static>(
    items: Vec<T>,
    first: Option<web::Bytes>,
    encode: impl Fn(&[T]) -> Result<web::Bytes, String> + 'static,
) -> impl futures::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    let mut items = items.into_iter().peekable();
    let head = futures::stream::iter(first.map(Ok));
    let rows = futures::stream::poll_fn(move |_| {
        if items.peek().is_none() {
            return std::task::Poll::Ready(None);
        }
        let chunk: Vec<T> = items.by_ref().take(ROWS_PER_CHUNK).collect();
        std::task::Poll::Ready(Some(encode(&chunk).map_err(|e| {
            tracing::error!(error = %e, "serializing a streamed row failed");
            actix_web::error::ErrorInternalServerError(e)
        })))
    });
    futures::StreamExt::chain(head, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_cursor_without_gaps_or_repeats() {
        let rows: Vec<u32> = (1..=25).collect();
        let key = |r: &u32| vec![format!("{r:04}")];
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = Page::parse(Some("10"), cursor.as_deref(), 1).unwrap();
            let (items, next) = page.apply(rows.clone(), key);
            seen.extend(items);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, rows);
        assert!(Page::parse(Some("0"), None, 1).is_err());
        assert!(Page::parse(Some("10001"), None, 1).is_err());
        assert!(Page::parse(None, Some("zz"), 1).is_err());
        assert!(Page::parse(None, Some(&encode_cursor(&["a".into(), "b".into()])), 1).is_err());
        assert_eq!(Page::parse(None, None, 1).unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn formulas_become_text_and_numbers_stay() {
        assert_eq!(
            neutralise("=HYPERLINK(\"http://x\",\"y\")"),
            "'=HYPERLINK(\"http://x\",\"y\")"
        );
        for risky in ["+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "-", "=1"] {
            assert_eq!(neutralise(risky), format!("'{risky}"), "{risky:?}");
        }
        for safe in ["-12.5", "+3", "Sở Kế hoạch", "2025-01-01", "", "a=b"] {
            assert_eq!(neutralise(safe), safe, "{safe:?}");
        }
        #[derive(Serialize)]
        struct Row {
            name: &'static str,
            n: i64,
            delta: f64,
        }
        let rows = [Row {
            name: "=cmd|' /C calc'!A0",
            n: -5,
            delta: -0.25,
        }];
        let text = csv_chunk(&["name", "n", "delta"], &rows).unwrap();
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "'=cmd|' /C calc'!A0,-5,-0.25\n"
        );
    }

    #[test]
    fn etags_match_weakly_and_by_list() {
        assert!(matches("W/\"abc\"", "W/\"abc\""));
        assert!(matches("\"abc\"", "W/\"abc\""));
        assert!(matches("\"x\", W/\"abc\"", "W/\"abc\""));
        assert!(!matches("*", "W/\"abc\""), "* is left to the handler");
        assert!(any_representation("\"x\", *"));
        assert!(!any_representation("W/\"abc\""));
        assert!(!matches("W/\"abd\"", "W/\"abc\""));
    }
}
