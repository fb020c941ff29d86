//! Filers (DESIGN.md "Filer"): the profile a business may declare, so figures can be split by
//! firm profile (METHODOLOGY.md §7), and the [`aggregate`] that records who may file, with
//! which tokens. Every attribute is optional and coarse on purpose: the profile is published
//! in the open microdata, and must never single a business out.

pub mod aggregate;
pub mod drafts;

use serde::{Deserialize, Serialize};

/// Enterprise size class (Decree 80/2021/ND-CP thresholds: micro, small, medium; large above).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeClass {
    Micro,
    Small,
    Medium,
    Large,
}

impl SizeClass {
    pub const ALL: [SizeClass; 4] = [
        SizeClass::Micro,
        SizeClass::Small,
        SizeClass::Medium,
        SizeClass::Large,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SizeClass::Micro => "micro",
            SizeClass::Small => "small",
            SizeClass::Medium => "medium",
            SizeClass::Large => "large",
        }
    }

    pub fn parse(text: &str) -> Option<SizeClass> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A VSIC 2018 sector section: one capital letter from A to U.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SectorSection(char);

impl TryFrom<String> for SectorSection {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        SectorSection::parse(&text).ok_or_else(|| format!("{text:?} is not a VSIC section, A to U"))
    }
}

impl From<SectorSection> for String {
    fn from(s: SectorSection) -> String {
        s.0.to_string()
    }
}

impl SectorSection {
    pub fn parse(text: &str) -> Option<SectorSection> {
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c @ 'A'..='U'), None) => Some(SectorSection(c)),
            _ => None,
        }
    }

    pub fn as_char(self) -> char {
        self.0
    }
}

/// A filer's optional profile: the four attributes of METHODOLOGY.md §7, each `None` when the
/// business did not declare it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilerProfile {
    pub size_class: Option<SizeClass>,
    pub sector_section: Option<SectorSection>,
    #[serde(default)]
    pub woman_owned: Option<bool>,
    #[serde(default)]
    pub ethnic_minority_owned: Option<bool>,
}

impl FilerProfile {
    pub fn is_empty(&self) -> bool {
        *self == FilerProfile::default()
    }
}

/// A Vietnamese enterprise code (mã số doanh nghiệp, the enterprise's tax code): ten digits,
/// or ten digits, a hyphen and three more for a dependent unit. It identifies a firm, so it is
/// only ever held long enough to derive a keyed hash from it: its `Debug` hides it, and it has
/// no `Display` and no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct EnterpriseCode(String);

impl std::fmt::Debug for EnterpriseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnterpriseCode(<hidden>)")
    }
}

impl EnterpriseCode {
    /// Accepts the code with surrounding spaces; refuses anything but the two forms.
    pub fn parse(text: &str) -> Result<EnterpriseCode, &'static str> {
        let text = text.trim();
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let valid = match text.split_once('-') {
            None => digits(text, 10),
            Some((head, unit)) => digits(head, 10) && digits(unit, 3),
        };
        if valid {
            Ok(EnterpriseCode(text.to_string()))
        } else {
            Err("an enterprise code is 10 digits, or 10 digits, a hyphen and 3 digits")
        }
    }

    /// The code's bytes, for the keyed hash that stands in for it.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_take_only_known_values() {
        assert_eq!(SizeClass::parse("small"), Some(SizeClass::Small));
        assert_eq!(SizeClass::parse("Small"), None);
        assert_eq!(
            SectorSection::parse("G").map(SectorSection::as_char),
            Some('G')
        );
        for bad in ["V", "g", "GG", ""] {
            assert_eq!(SectorSection::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn enterprise_codes_have_two_forms_and_never_print() {
        let code = EnterpriseCode::parse(" 0101234567 ").unwrap();
        assert_eq!(code.expose(), b"0101234567");
        assert_eq!(format!("{code:?}"), "EnterpriseCode(<hidden>)");
        assert!(EnterpriseCode::parse("0101234567-001").is_ok());
        for bad in [
            "",
            "010123456",
            "01012345678",
            "0101234567-01",
            "01012345x7",
            "0101234567-",
        ] {
            assert!(EnterpriseCode::parse(bad).is_err(), "{bad}");
        }
    }
}
