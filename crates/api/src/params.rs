//! Query strings, parsed into a typed struct once, before the handler runs.
//!
//! A handler takes `Query<T>`; `T` names its parameters as typed fields (the OpenAPI document
//! is derived from the same struct with `IntoParams`, so a year is an integer and a required
//! parameter is marked required there) and says in [`FromQuery`] how each is read, with the
//! shared readers below. Every refusal is a 422 naming the parameter and the rule
//! (problem+json `errors`). The conventions, the same for every endpoint:
//!
//! - an empty value is an absent one (`?province=` is no filter), so an HTML form with an empty
//!   field asks for what a missing field asks for;
//! - a parameter given twice is refused (`duplicate`): which one was meant cannot be known;
//! - parameters the endpoint does not know are ignored, as HTTP caches and trackers add some.

use std::collections::BTreeMap;
use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use redtape_domain::validation::FieldViolation;
use redtape_domain::{Geography, ProcedureCode, Provinces};

use crate::problem::ApiError;

/// Query parameters of type `T`, parsed and validated.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// How a parameter struct is read from a query string. `req` is there for what a request
/// says outside its query string about the same choice (`Accept` for the format).
pub trait FromQuery: Sized {
    fn from_query(query: &QueryString, req: &HttpRequest) -> Result<Self, ApiError>;
}

impl<T: FromQuery> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            QueryString::parse(req.query_string())
                .and_then(|q| T::from_query(&q, req))
                .map(Query),
        )
    }
}

/// The decoded pairs of a query string, each name at most once.
#[derive(Debug, Default)]
pub struct QueryString(BTreeMap<String, String>);

impl QueryString {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text)
            .map_err(|e| ApiError::parameter("query", "format", e.to_string()))?;
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(ApiError::parameter(
                    &name,
                    "duplicate",
                    format!("give {name} at most once"),
                ));
            }
            map.insert(name, value);
        }
        Ok(QueryString(map))
    }

    /// The value of a parameter that was given and is not empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|t| !t.is_empty())
    }

    /// A parameter read with `read` when given.
    pub fn optional<T>(
        &self,
        name: &str,
        read: impl FnOnce(&str) -> Result<T, FieldViolation>,
    ) -> Result<Option<T>, ApiError> {
        self.text(name)
            .map(|text| value(name, text, read))
            .transpose()
    }

    /// A parameter that must be given; the refusal shows an example value.
    pub fn required<T>(
        &self,
        name: &str,
        example: &str,
        read: impl FnOnce(&str) -> Result<T, FieldViolation>,
    ) -> Result<T, ApiError> {
        self.optional(name, read)?.ok_or_else(|| {
            ApiError::parameter(
                name,
                "required",
                format!("give a {name}, e.g. {name}={example}"),
            )
        })
    }

    /// `geography`: vn-34 when absent.
    pub fn geography(&self) -> Result<Geography, ApiError> {
        Ok(self
            .optional("geography", |g| Geography::parse("", g))?
            .unwrap_or(Geography::Vn34))
    }
}

/// `text`, the value of parameter `name` (of the query or of the path), read with `read`.
pub fn value<T>(
    name: &str,
    text: &str,
    read: impl FnOnce(&str) -> Result<T, FieldViolation>,
) -> Result<T, ApiError> {
    read(text).map_err(|v| ApiError::parameter(name, &v.rule, v.detail))
}

fn refusal(rule: &str, detail: String) -> FieldViolation {
    FieldViolation {
        pointer: String::new(),
        rule: rule.to_string(),
        detail,
    }
}

/// A UUID (a filer's, a token's).
pub fn uuid(text: &str) -> Result<uuid::Uuid, FieldViolation> {
    uuid::Uuid::parse_str(text)
        .map_err(|_| refusal("format", format!("must be a UUID, got {text:?}")))
}

/// A year redtape can hold observations for: from the earliest accepted date to 2100.
pub fn year(text: &str) -> Result<i32, FieldViolation> {
    let first = chrono::Datelike::year(&redtape_domain::submission::report::earliest_date());
    text.parse::<i32>()
        .ok()
        .filter(|y| (first..=2100).contains(y))
        .ok_or_else(|| {
            refusal(
                "range",
                format!("must be a year from {first} to 2100, got {text:?}"),
            )
        })
}

/// A national procedure code, by its format (whether it is registered is the caller's rule).
pub fn procedure(text: &str) -> Result<ProcedureCode, FieldViolation> {
    ProcedureCode::parse_format("", text)
}

/// A province code of `geography`.
pub fn province(geography: Geography) -> impl Fn(&str) -> Result<String, FieldViolation> {
    move |code| match Provinces::get().find(geography, code) {
        Some(_) => Ok(code.to_string()),
        None => Err(refusal(
            "unknown_province",
            format!(
                "{code:?} is not a province of {}; see GET /v1/provinces?geography={}",
                geography.as_str(),
                geography.as_str()
            ),
        )),
    }
}

/// A free-text filter (an agency's name), trimmed; `None` when blank. Control characters are
/// refused as they are in stored names (PostgreSQL cannot even compare a string holding
/// U+0000: it was a 500, found by schemathesis).
pub fn free_text(text: &str) -> Result<Option<String>, FieldViolation> {
    let trimmed = text.trim();
    if trimmed
        .chars()
        .any(redtape_domain::values::forbidden_control)
    {
        return Err(refusal(
            "control_characters",
            redtape_domain::values::CONTROL_CHARACTERS.to_string(),
        ));
    }
    Ok((!trimmed.is_empty()).then(|| trimmed.to_string()))
}

/// A profile dimension of methodology §7.
pub fn dimension(text: &str) -> Result<redtape_index::area::Dimension, FieldViolation> {
    redtape_index::area::Dimension::parse(text).ok_or_else(|| {
        let names: Vec<&str> = redtape_index::area::Dimension::ALL
            .iter()
            .map(|d| d.as_str())
            .collect();
        refusal(
            "enum",
            format!("must be one of {}, got {text:?}", names.join(", ")),
        )
    })
}

/// A province code of `geography`, or `all` for the national cell (methodology §3, 1.1).
pub fn province_or_all(geography: Geography) -> impl Fn(&str) -> Result<String, FieldViolation> {
    let province = province(geography);
    move |code| {
        if code == redtape_index::area::NATIONAL {
            return Ok(code.to_string());
        }
        province(code).map_err(|_| {
            refusal(
                "unknown_province",
                format!(
                    "{code:?} is neither `all` nor a province of {}; see GET \
                     /v1/provinces?geography={}",
                    geography.as_str(),
                    geography.as_str()
                ),
            )
        })
    }
}

/// A whole number from 1 to `max` (page sizes).
pub fn limit(max: usize) -> impl Fn(&str) -> Result<usize, FieldViolation> {
    move |text| {
        text.parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                refusal(
                    "range",
                    format!("must be a whole number from 1 to {max}, got {text:?}"),
                )
            })
    }
}

/// One of a closed list of words, each mapped to its value.
/// A submission status, as the moderation queue and a filer's own list filter by it.
pub const STATUSES: &[(&str, redtape_domain::submission::Status)] = {
    use redtape_domain::submission::Status;
    &[
        ("received", Status::Received),
        ("verified", Status::Verified),
        ("rejected", Status::Rejected),
        ("withdrawn", Status::Withdrawn),
    ]
};

pub fn one_of<T: Copy>(
    choices: &'static [(&'static str, T)],
) -> impl Fn(&str) -> Result<T, FieldViolation> {
    move |text| {
        choices
            .iter()
            .find(|(word, _)| *word == text)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
                refusal(
                    "one_of",
                    format!("must be one of {}, got {text:?}", words.join(", ")),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(result: Result<impl std::fmt::Debug, ApiError>) -> (String, String) {
        match result {
            Err(ApiError::Invalid(fields)) => (
                fields[0].parameter.clone().unwrap_or_default(),
                fields[0].rule.clone(),
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn values_are_read_once_and_refusals_name_parameter_and_rule() {
        let q = QueryString::parse("year=2025&procedure=&province=79&x=1").unwrap();
        assert_eq!(q.required("year", "2025", year).unwrap(), 2025);
        assert_eq!(
            q.optional("procedure", procedure).unwrap(),
            None,
            "empty is absent"
        );
        assert_eq!(
            q.optional("province", province(Geography::Vn34)).unwrap(),
            Some("79".to_string())
        );
        assert_eq!(q.geography().unwrap(), Geography::Vn34);
        assert_eq!(
            refused(q.required("procedure", "1.001612", procedure)),
            ("procedure".into(), "required".into())
        );
        let q = QueryString::parse("year=1999&geography=vn-99&province=99&limit=0").unwrap();
        assert_eq!(
            refused(q.required("year", "2025", year)),
            ("year".into(), "range".into())
        );
        assert_eq!(
            refused(q.geography()),
            ("geography".into(), "one_of".into())
        );
        assert_eq!(
            refused(q.optional("province", province(Geography::Vn34))),
            ("province".into(), "unknown_province".into())
        );
        assert_eq!(
            refused(q.optional("limit", limit(10))),
            ("limit".into(), "range".into())
        );
        assert_eq!(
            refused(QueryString::parse("year=2024&year=2025")),
            ("year".into(), "duplicate".into())
        );
        const WORDS: &[(&str, u8)] = &[("a", 1), ("b", 2)];
        let q = QueryString::parse("w=b&v=c").unwrap();
        assert_eq!(q.optional("w", one_of(WORDS)).unwrap(), Some(2));
        assert_eq!(
            refused(q.optional("v", one_of(WORDS))),
            ("v".into(), "one_of".into())
        );
    }
}
