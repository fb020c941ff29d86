//! Lists: one page of rows in JSON, CSV or NDJSON, the same for every list (docs/open-data.md).
//!
//! **Keyset pagination** ([`Page`]): a deterministic order, `limit`, and an opaque `cursor`
//! naming the last row served; the next page's URL is in the body (`next`) and in a
//! `Link: <...>; rel="next"` header, with every other filter kept. CSV and NDJSON are streamed
//! a chunk of rows at a time; CSV cells are written from each row's JSON form.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::datasets::DatasetId;
use crate::params::{self, FromQuery, QueryString};
use crate::problem::ApiError;

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
    /// A page of `limit` rows after the row `cursor` names; the cursor must hold `key_len`
    /// parts.
    pub fn new(limit: usize, cursor: Option<&str>, key_len: usize) -> Result<Page, ApiError> {
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
        let next = cut(&mut rows, self.limit, key);
        (rows, next)
    }
}

/// Cuts `rows` (in key order, read with one row more than a page when a query did the
/// keyset) to `limit`, and returns the next page's cursor (the key of the last row kept)
/// when rows were cut: a row beyond the page is how a next page is known to exist.
pub fn cut<T>(rows: &mut Vec<T>, limit: usize, key: impl Fn(&T) -> Vec<String>) -> Option<String> {
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(|r| encode_cursor(&key(r)))
}

/// Answers one page of a JSON-only list read with a keyset query (one row more than `limit`):
/// cut with [`cut`], each row shown with `view`, in the [`Paged`] envelope whose `next` keeps
/// the request's own parameters.
pub fn json_page<R, T: Serialize>(
    req: &actix_web::HttpRequest,
    mut rows: Vec<R>,
    limit: usize,
    key: impl Fn(&R) -> Vec<String>,
    view: impl Fn(R) -> Result<T, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let next_cursor = cut(&mut rows, limit, key);
    let items = rows.into_iter().map(view).collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(Paged {
        about: Rows {},
        items,
        next: next_cursor.as_deref().map(|c| next_url(req, c)),
        next_cursor,
    }))
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
    // No key this API pages by holds a control character, and PostgreSQL refuses a U+0000
    // in a parameter (a 500 rather than this 422).
    let controlled = parts
        .iter()
        .any(|p| p.chars().any(redtape_domain::values::forbidden_control));
    if parts.len() != key_len || controlled {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
    Ndjson,
}

impl Format {
    const WORDS: &'static [(&'static str, Format)] = &[
        ("json", Format::Json),
        ("csv", Format::Csv),
        ("ndjson", Format::Ndjson),
    ];

    /// From `format=` if given, else from `Accept` (text/csv, application/x-ndjson), else JSON.
    pub fn of(query: &QueryString, req: &actix_web::HttpRequest) -> Result<Format, ApiError> {
        if let Some(format) = query.optional("format", params::one_of(Self::WORDS))? {
            return Ok(format);
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
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// json (default), csv or ndjson; `Accept: text/csv` or `application/x-ndjson` also
    /// selects the format.
    #[param(value_type = Option<Format>, inline)]
    pub format: Format,
    /// Rows per page, 1 to 10,000 (default 1,000).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    pub limit: usize,
    /// From the previous page's `next` URL (or `next_cursor`).
    pub cursor: Option<String>,
}

impl FromQuery for ListParams {
    fn from_query(query: &QueryString, req: &actix_web::HttpRequest) -> Result<Self, ApiError> {
        Ok(ListParams {
            format: Format::of(query, req)?,
            limit: query
                .optional("limit", params::limit(MAX_LIMIT))?
                .unwrap_or(DEFAULT_LIMIT),
            cursor: query.text("cursor").map(str::to_string),
        })
    }
}

impl ListParams {
    /// The page asked for; the cursor holds `key_len` parts.
    pub fn page(&self, key_len: usize) -> Result<Page, ApiError> {
        Page::new(self.limit, self.cursor.as_deref(), key_len)
    }
}

/// The JSON body of every list: what the page is about (`about`, flattened into the body:
/// the methodology, the filters it answers), its items, and where the next page is. The same
/// for every list, so a client pages any of them with one loop.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Paged<T, A> {
    #[serde(flatten)]
    pub about: A,
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The URL of the next page, every filter kept (also in `Link: <...>; rel="next"`);
    /// absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The `about` of a list that needs nothing said beside its items.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rows {}

/// Live figures: which methodology computed them, and that they are provisional until a
/// reform office publishes the year.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Live {
    #[schema(example = "1.0")]
    pub methodology_version: String,
    /// Always true here; a release's figures are final.
    #[schema(example = true)]
    pub provisional: bool,
}

impl Live {
    pub fn now() -> Self {
        Live {
            methodology_version: redtape_index::METHODOLOGY_VERSION.to_string(),
            provisional: true,
        }
    }
}

/// One page of a list, ready to answer in any format.
pub struct List<T> {
    pub items: Vec<T>,
    /// The cursor of the next page, if any.
    pub cursor: Option<String>,
    /// The next page's URL, if any (sent as `Link: <...>; rel="next"` in every format).
    pub next: Option<String>,
    pub dataset: DatasetId,
}

impl<T: Serialize + 'static> List<T> {
    /// A page of the dictionary dataset `dataset`, answering `req`; `cursor` names the next
    /// page (its URL is `req`'s with the cursor replaced).
    pub fn of(
        dataset: DatasetId,
        items: Vec<T>,
        cursor: Option<String>,
        req: &actix_web::HttpRequest,
    ) -> Self {
        List {
            items,
            next: cursor.as_deref().map(|c| next_url(req, c)),
            cursor,
            dataset,
        }
    }

    /// Answers in `format`: JSON as a [`Paged`] body with `about`; CSV (the dictionary's
    /// columns of the dataset, a header line even when the page is empty, nested values as
    /// compact JSON) and NDJSON streamed in chunks of rows, so a large page is never held as
    /// one body.
    pub fn respond<A: Serialize>(self, format: Format, about: A) -> Result<HttpResponse, ApiError> {
        let mut response = HttpResponse::Ok();
        if let Some(next) = &self.next {
            response.insert_header((header::LINK, next_link(next)));
        }
        let columns = crate::datasets::columns_of(self.dataset);
        let header_line = csv_header(&columns)?;
        match format {
            Format::Json => Ok(response.json(Paged {
                about,
                items: self.items,
                next_cursor: self.cursor,
                next: self.next,
            })),
            Format::Ndjson => Ok(response
                .content_type("application/x-ndjson")
                .streaming(chunks(self.items, None, move |rows| ndjson_chunk(rows)))),
            Format::Csv => Ok(response
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"redtape-{}.csv\"",
                        self.dataset.as_str()
                    ),
                ))
                .streaming(chunks(self.items, Some(header_line), move |rows| {
                    csv_chunk(&columns, rows)
                }))),
        }
    }
}

pub fn csv_header(columns: &[&str]) -> Result<web::Bytes, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(columns).map_err(ApiError::internal)?;
    writer
        .into_inner()
        .map(web::Bytes::from)
        .map_err(ApiError::internal)
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
            let page = Page::new(10, cursor.as_deref(), 1).unwrap();
            let (items, next) = page.apply(rows.clone(), key);
            seen.extend(items);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, rows);
        assert!(Page::new(10, Some("zz"), 1).is_err());
        assert!(Page::new(10, Some(&encode_cursor(&["a".into(), "b".into()])), 1).is_err());
        // A forged cursor holding a NUL (or any control character) is refused here, before
        // PostgreSQL would refuse the parameter with a 500.
        for forged in ["2025\u{1f}\0\u{1f}79", "2025\u{1f}1.001612\u{1f}7\u{7}9"] {
            assert!(
                Page::new(10, Some(&hex::encode(forged)), 3).is_err(),
                "{forged:?}"
            );
        }
        assert!(Page::new(10, Some(&hex::encode("2025\u{1f}1.001612\u{1f}all")), 3).is_ok());
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
}
