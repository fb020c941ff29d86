//! What a business may tell about itself when it registers as a filer, so figures can later
//! be split by firm profile (DESIGN.md "Filer"). Both are optional and coarse on purpose: they
//! are published in the open microdata, and must never single a business out.

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
pub struct SectorSection(char);

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

/// A filer's optional profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilerProfile {
    pub size_class: Option<SizeClass>,
    pub sector_section: Option<SectorSection>,
}

impl FilerProfile {
    pub fn is_empty(&self) -> bool {
        self.size_class.is_none() && self.sector_section.is_none()
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
