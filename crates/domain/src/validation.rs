//! Field-level validation results.
//!
//! Every rule failure names the field (as a JSON pointer into the request body, e.g.
//! `/costs/official_fees`) and a stable rule code, so that a client can map the error back onto
//! its form without parsing English prose. The API turns [`Violations`] into an RFC 9457
//! problem with an `errors` member.

use serde::{Deserialize, Serialize};

/// One broken rule on one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldViolation {
    /// JSON pointer to the offending field in the request body.
    pub pointer: String,
    /// Stable machine-readable rule code (`range`, `required`, `unknown_code`, ...).
    pub rule: String,
    /// Human-readable explanation, including the allowed values or bounds.
    pub detail: String,
}

/// All rule failures found in one request; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation; `field` is a JSON pointer such as `/visits`.
    pub fn push(&mut self, field: impl Into<String>, rule: &str, detail: impl Into<String>) {
        self.0.push(FieldViolation {
            pointer: field.into(),
            rule: rule.to_string(),
            detail: detail.into(),
        });
    }

    /// A single-violation error, for rules that stand alone.
    pub fn single(field: impl Into<String>, rule: &str, detail: impl Into<String>) -> Self {
        let mut v = Self::new();
        v.push(field, rule, detail);
        v
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the value of a parse if it succeeded, records the violation otherwise, so a
    /// parser can report every bad field in one answer instead of stopping at the first.
    pub fn collect<T>(&mut self, result: Result<T, FieldViolation>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// Ok(()) when nothing was recorded.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|v| format!("{} ({}): {}", v.pointer, v.rule, v.detail))
            .collect();
        write!(f, "{}", parts.join("; "))
    }
}

impl std::error::Error for Violations {}

pub(crate) fn violation(pointer: &str, rule: &str, detail: impl Into<String>) -> FieldViolation {
    FieldViolation {
        pointer: pointer.to_string(),
        rule: rule.to_string(),
        detail: detail.into(),
    }
}
