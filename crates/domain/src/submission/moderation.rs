//! What reform-office officers do to a submission: verify it, reject it (it then leaves the
//! indices), or post a government response that the filer reads.
//!
//! The drafts are what an officer sends; [`GovernmentResponse`] is a response that passed
//! every rule, so a `ResponsePosted` event can only hold a valid one.

use serde::{Deserialize, Serialize};

use crate::validation::Violations;

/// Longest agency name accepted.
pub const MAX_AGENCY_CHARS: usize = 200;
/// Longest response text accepted.
pub const MAX_RESPONSE_CHARS: usize = 5_000;

/// Where the government says the matter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    Acknowledged,
    InProgress,
    Resolved,
    NotActionable,
}

impl ResponseStatus {
    pub const ALL: [ResponseStatus; 4] = [
        ResponseStatus::Acknowledged,
        ResponseStatus::InProgress,
        ResponseStatus::Resolved,
        ResponseStatus::NotActionable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResponseStatus::Acknowledged => "acknowledged",
            ResponseStatus::InProgress => "in_progress",
            ResponseStatus::Resolved => "resolved",
            ResponseStatus::NotActionable => "not_actionable",
        }
    }

    pub fn parse(text: &str) -> Option<ResponseStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A rejection as an officer sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RejectionDraft {
    /// Why the submission cannot be counted (kept in the audit trail, shown to the filer).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "Duplicate of a submission filed the same day.")
    )]
    pub reason: String,
}

/// A government response as an officer sends it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResponseDraft {
    /// The agency answering (published in response statistics).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "Sở Kế hoạch và Đầu tư Thành phố Hồ Chí Minh")
    )]
    pub agency: String,
    /// The answer to the filer (never published).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "We have asked the district office to explain the delay.")
    )]
    pub text: String,
    pub status: ResponseStatus,
}

/// A response that passed every rule: agency and text trimmed, non-empty, within limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovernmentResponse {
    pub agency: String,
    pub text: String,
    pub status: ResponseStatus,
}

impl ResponseDraft {
    pub fn parse(self) -> Result<GovernmentResponse, Violations> {
        let mut v = Violations::new();
        let agency = bounded(&mut v, "/agency", &self.agency, MAX_AGENCY_CHARS);
        let text = bounded(&mut v, "/text", &self.text, MAX_RESPONSE_CHARS);
        v.into_result().map(|()| GovernmentResponse {
            agency,
            text,
            status: self.status,
        })
    }
}

/// Trims `text` and checks it is present and at most `max` characters.
pub(crate) fn bounded(v: &mut Violations, pointer: &str, text: &str, max: usize) -> String {
    let text = text.trim();
    if text.is_empty() {
        v.push(pointer, "required", "must not be blank");
    } else if text.chars().count() > max {
        v.push(
            pointer,
            "max_length",
            format!("must be at most {max} characters"),
        );
    } else if text.chars().any(crate::values::forbidden_control) {
        v.push(
            pointer,
            "control_characters",
            crate::values::CONTROL_CHARACTERS,
        );
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_trimmed_and_bounded() {
        let ok = ResponseDraft {
            agency: "  Sở KH&ĐT  ".into(),
            text: " We are on it. ".into(),
            status: ResponseStatus::InProgress,
        }
        .parse()
        .unwrap();
        assert_eq!(
            (ok.agency.as_str(), ok.text.as_str()),
            ("Sở KH&ĐT", "We are on it.")
        );
        let rules = |agency: &str, text: &str| -> Vec<(String, String)> {
            ResponseDraft {
                agency: agency.into(),
                text: text.into(),
                status: ResponseStatus::Resolved,
            }
            .parse()
            .unwrap_err()
            .0
            .into_iter()
            .map(|f| (f.pointer, f.rule))
            .collect()
        };
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(p, r)| (p.to_string(), r.to_string()))
                .collect()
        };
        assert_eq!(
            rules(" ", &"x".repeat(MAX_RESPONSE_CHARS + 1)),
            pairs(&[("/agency", "required"), ("/text", "max_length")])
        );
        // PostgreSQL cannot store U+0000; no name or answer needs an escape sequence.
        assert_eq!(
            rules("Sở\u{0}", "line one\nline\ttwo \u{1b}[31m"),
            pairs(&[
                ("/agency", "control_characters"),
                ("/text", "control_characters")
            ])
        );
        // Exactly at the limit, counted in characters (Vietnamese is multi-byte).
        assert!(ResponseDraft {
            agency: "ạ".repeat(MAX_AGENCY_CHARS),
            text: "ok".into(),
            status: ResponseStatus::Acknowledged,
        }
        .parse()
        .is_ok());
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in ResponseStatus::ALL {
            assert_eq!(ResponseStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(ResponseStatus::parse("done"), None);
    }
}
