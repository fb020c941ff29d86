//! Value types that validate on construction.
//!
//! Each `parse` takes the JSON pointer of the field it reads, so a failure names the field.
//! `Deserialize` is transparent (no re-validation) on purpose: stored events are facts that
//! were valid when they happened, and must still load if a bound is tightened later.

use serde::{Deserialize, Serialize};

use crate::validation::{violation, FieldViolation};

/// Upper bound for any single amount: one trillion VND (about 40 million USD), far above any
/// plausible compliance cost, low enough to catch unit errors (e.g. amounts in đồng x 1000).
pub const MAX_VND: i64 = 1_000_000_000_000;
pub const MAX_STAFF_HOURS: f64 = 10_000.0;
pub const MAX_VISITS: i64 = 1_000;
pub const MAX_NARRATIVE_CHARS: usize = 4_000;

/// An amount in Vietnamese đồng (no minor unit exists), 0..=10^12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Vnd(i64);

impl Vnd {
    pub fn parse(pointer: &str, amount: i64) -> Result<Self, FieldViolation> {
        if (0..=MAX_VND).contains(&amount) {
            Ok(Self(amount))
        } else {
            Err(violation(
                pointer,
                "range",
                format!("must be a whole number of VND between 0 and {MAX_VND}, got {amount}"),
            ))
        }
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Staff time spent on a case, in hours (fractions allowed), 0..=10,000.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StaffHours(f64);

impl StaffHours {
    pub fn parse(pointer: &str, hours: f64) -> Result<Self, FieldViolation> {
        if hours.is_finite() && (0.0..=MAX_STAFF_HOURS).contains(&hours) {
            Ok(Self(hours))
        } else {
            Err(violation(
                pointer,
                "range",
                format!("must be between 0 and {MAX_STAFF_HOURS} hours, got {hours}"),
            ))
        }
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

// Staff hours are always finite (checked by `parse`), so equality is total.
impl Eq for StaffHours {}

/// Number of in-person visits to an office for one case, 0..=1,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Visits(u16);

impl Visits {
    pub fn parse(pointer: &str, visits: i64) -> Result<Self, FieldViolation> {
        if (0..=MAX_VISITS).contains(&visits) {
            Ok(Self(visits as u16))
        } else {
            Err(violation(
                pointer,
                "range",
                format!("must be between 0 and {MAX_VISITS}, got {visits}"),
            ))
        }
    }
    pub fn get(self) -> u16 {
        self.0
    }
}

/// Control characters no stored text may hold: all but tab, newline and carriage return.
/// PostgreSQL cannot store U+0000 at all, and the others only garble names and CSV cells.
pub fn forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// The detail of every `control_characters` violation.
pub const CONTROL_CHARACTERS: &str =
    "must not contain control characters other than tab and newline";

/// Free text written by the filer. Never published (methodology §4); at most 4,000 characters
/// (Unicode scalar values, so Vietnamese diacritics count once), not blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Narrative(String);

impl Narrative {
    pub fn parse(pointer: &str, text: &str) -> Result<Self, FieldViolation> {
        let trimmed = text.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(violation(pointer, "required", "must not be blank"));
        }
        if chars > MAX_NARRATIVE_CHARS {
            return Err(violation(
                pointer,
                "max_length",
                format!("must be at most {MAX_NARRATIVE_CHARS} characters, got {chars}"),
            ));
        }
        if trimmed.chars().any(forbidden_control) {
            return Err(violation(pointer, "control_characters", CONTROL_CHARACTERS));
        }
        Ok(Self(trimmed.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Costs of one case under the Standard Cost Model (methodology §2). Each is optional: a
/// missing amount counts as 0 in the SCM cost, which is different from "not reported" only
/// for staff hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Costs {
    pub official_fees: Option<Vnd>,
    pub unofficial_payments: Option<Vnd>,
    pub external_services: Option<Vnd>,
}

macro_rules! closed_list {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(pointer: &str, text: &str) -> Result<Self, FieldViolation> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(violation(
                        pointer,
                        "one_of",
                        format!(
                            "{} must be one of {}, got {:?}",
                            $field,
                            [$($text),+].join(", "),
                            other
                        ),
                    )),
                }
            }
        }
    };
}

closed_list!(
    /// What a complaint is about; the fixed list lets indices count categories reliably.
    Category, "category" {
        Delay => "delay",
        ExcessiveDocuments => "excessive_documents",
        InformalPaymentRequested => "informal_payment_requested",
        InconsistentRequirements => "inconsistent_requirements",
        OnlineServiceFailure => "online_service_failure",
        FeeNotAsPublished => "fee_not_as_published",
        Other => "other",
    }
);

closed_list!(
    /// How the procedure was filed with the authority.
    Channel, "channel" {
        InPerson => "in_person",
        Online => "online",
        Postal => "postal",
        Mixed => "mixed",
    }
);

closed_list!(
    /// How a completed procedure ended.
    Outcome, "outcome" {
        Granted => "granted",
        Refused => "refused",
        Abandoned => "abandoned",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnd_bounds_are_inclusive() {
        assert_eq!(Vnd::parse("/x", 0).map(Vnd::get), Ok(0));
        assert_eq!(Vnd::parse("/x", MAX_VND).map(Vnd::get), Ok(MAX_VND));
        let err = Vnd::parse("/costs/official_fees", MAX_VND + 1).unwrap_err();
        assert_eq!(err.pointer, "/costs/official_fees");
        assert_eq!(err.rule, "range");
        assert!(Vnd::parse("/x", -1).is_err());
    }

    #[test]
    fn staff_hours_reject_nan_infinity_and_out_of_range() {
        assert!(StaffHours::parse("/h", f64::NAN).is_err());
        assert!(StaffHours::parse("/h", f64::INFINITY).is_err());
        assert!(StaffHours::parse("/h", -0.5).is_err());
        assert!(StaffHours::parse("/h", 10_000.5).is_err());
        assert_eq!(
            StaffHours::parse("/h", 10_000.0).map(StaffHours::get),
            Ok(10_000.0)
        );
        assert_eq!(StaffHours::parse("/h", 2.5).map(StaffHours::get), Ok(2.5));
    }

    #[test]
    fn visits_bounds() {
        assert_eq!(Visits::parse("/v", 1000).map(Visits::get), Ok(1000));
        assert_eq!(Visits::parse("/v", 1001).unwrap_err().rule, "range");
        assert_eq!(Visits::parse("/v", -1).unwrap_err().rule, "range");
    }

    #[test]
    fn narrative_counts_characters_not_bytes() {
        // "ệ" is 3 bytes in UTF-8 but one character: 4,000 of them are allowed.
        let max = "ệ".repeat(4000);
        assert!(Narrative::parse("/n", &max).is_ok());
        let over = "ệ".repeat(4001);
        assert_eq!(
            Narrative::parse("/n", &over).unwrap_err().rule,
            "max_length"
        );
        assert_eq!(Narrative::parse("/n", "   ").unwrap_err().rule, "required");
        assert_eq!(
            Narrative::parse("/n", "bad\u{0}byte").unwrap_err().rule,
            "control_characters"
        );
        assert_eq!(
            Narrative::parse("/n", "  trimmed \n").map(|n| n.as_str().to_string()),
            Ok("trimmed".to_string())
        );
    }

    #[test]
    fn closed_lists_name_the_allowed_values() {
        assert_eq!(Category::parse("/c", "delay"), Ok(Category::Delay));
        let err = Category::parse("/categories/0", "bribery").unwrap_err();
        assert_eq!(err.rule, "one_of");
        assert!(
            err.detail.contains("informal_payment_requested"),
            "{}",
            err.detail
        );
        assert_eq!(Category::ALL.len(), 7);
    }
}
