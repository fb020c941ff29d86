//! Filers (DESIGN.md "Filer"): the profile a business may declare, so figures can be split by
//! firm profile (METHODOLOGY.md §7), and the [`aggregate`] that records who may file, with
//! which tokens. Every attribute is optional and coarse on purpose: the profile is published
//! in the open microdata, and must never single a business out.

pub mod aggregate;

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
}
