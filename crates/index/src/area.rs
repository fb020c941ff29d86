//! What a cell covers within its (geography, year, procedure): one province, the whole
//! country (§3's national cell, 1.1) or one group of firms (§7's breakdown cell, 1.1).
//!
//! The three share one spelling, the *area key*, because §3 and §7 already spell a cell's
//! bootstrap seed key as `geography/year/procedure/<area>`: a province code (`79`), `all`, or
//! `dimension=group` (`woman_owned=yes`). Keeping the area as the cell key's last part means
//! every cell, whatever it covers, is seeded, stored and refreshed the same way, and the seed
//! of a province cell is the one 1.0 used.

use std::fmt;

/// The area key of a national cell (§3).
pub const NATIONAL: &str = "all";

/// The group of an undeclared (or, in the microdata, blanked) profile field (§7).
pub const UNKNOWN: &str = "unknown";

/// A profile dimension of §7, in §7's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    SizeClass,
    SectorSection,
    WomanOwned,
    EthnicMinorityOwned,
}

impl Dimension {
    /// §7's order, which is also the order of the partitions (d) of §4.
    pub const ALL: [Dimension; 4] = [
        Dimension::SizeClass,
        Dimension::SectorSection,
        Dimension::WomanOwned,
        Dimension::EthnicMinorityOwned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::SizeClass => "size_class",
            Dimension::SectorSection => "sector_section",
            Dimension::WomanOwned => "woman_owned",
            Dimension::EthnicMinorityOwned => "ethnic_minority_owned",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The dimension's groups in §7's order (the tie-break order of §4), `unknown` last.
    pub fn groups(self) -> &'static [&'static str] {
        match self {
            Dimension::SizeClass => &["micro", "small", "medium", "large", UNKNOWN],
            Dimension::SectorSection => &[
                "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P",
                "Q", "R", "S", "T", "U", UNKNOWN,
            ],
            Dimension::WomanOwned | Dimension::EthnicMinorityOwned => &["yes", "no", UNKNOWN],
        }
    }

    /// A group's place in [`Self::groups`]; `None` for a value that is not a group.
    pub fn rank(self, group: &str) -> Option<usize> {
        self.groups().iter().position(|g| *g == group)
    }

    /// The group an observation with this recorded profile falls in; a value the dimension
    /// does not know counts as undeclared.
    pub fn group_of(self, profile: &Profile<'_>) -> &'static str {
        let yes_no = |v: Option<bool>| match v {
            Some(true) => "yes",
            Some(false) => "no",
            None => UNKNOWN,
        };
        let listed = |value: Option<&str>| {
            value
                .and_then(|v| self.groups().iter().find(|g| **g == v && **g != UNKNOWN))
                .copied()
                .unwrap_or(UNKNOWN)
        };
        match self {
            Dimension::SizeClass => listed(profile.size_class),
            Dimension::SectorSection => listed(profile.sector_section),
            Dimension::WomanOwned => yes_no(profile.woman_owned),
            Dimension::EthnicMinorityOwned => yes_no(profile.ethnic_minority_owned),
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The profile recorded with an observation (§7); `None` where the filer declared nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Profile<'a> {
    /// `micro`, `small`, `medium` or `large`.
    pub size_class: Option<&'a str>,
    /// A VSIC 2018 section letter, `A`..`U`.
    pub sector_section: Option<&'a str>,
    pub woman_owned: Option<bool>,
    pub ethnic_minority_owned: Option<bool>,
}

/// What a cell covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    /// One province, by its code on the cell's geography.
    Province(String),
    /// Every province (§3, 1.1).
    National,
    /// One group of a dimension, over every province (§7, 1.1).
    Group(Dimension, &'static str),
}

impl Area {
    /// Reads an area key; `None` for a key that is neither `all`, a known `dimension=group`
    /// nor a plausible province code (digits).
    pub fn parse(key: &str) -> Option<Area> {
        if key == NATIONAL {
            return Some(Area::National);
        }
        if let Some((dimension, group)) = key.split_once('=') {
            let dimension = Dimension::parse(dimension)?;
            let group = dimension.groups()[dimension.rank(group)?];
            return Some(Area::Group(dimension, group));
        }
        is_province_key(key).then(|| Area::Province(key.to_string()))
    }

    /// The area key (see the module docs).
    pub fn key(&self) -> String {
        self.to_string()
    }

    /// Every area an observation of `province` with `profile` counts in: its province, the
    /// national cell, and one group of each dimension (in §7's order).
    pub fn of_observation(province: &str, profile: &Profile<'_>) -> [Area; 6] {
        let group = |d: Dimension| Area::Group(d, d.group_of(profile));
        [
            Area::Province(province.to_string()),
            Area::National,
            group(Dimension::SizeClass),
            group(Dimension::SectorSection),
            group(Dimension::WomanOwned),
            group(Dimension::EthnicMinorityOwned),
        ]
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Area::Province(code) => f.write_str(code),
            Area::National => f.write_str(NATIONAL),
            Area::Group(dimension, group) => write!(f, "{dimension}={group}"),
        }
    }
}

/// Whether an area key is a province's (the cells the CBI ranks and `/v1/indices` lists with
/// the national one).
///
/// Called for every cell the CBI ranks after each batch, so it reads the key without
/// building an [`Area`] (whose parse allocates the code).
pub fn is_province_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VSIC 2018 sections, in order.
    const SECTIONS: [&str; 21] = [
        "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R",
        "S", "T", "U",
    ];

    /// The keys are the seed keys' last part, as §3 and §7 spell them.
    #[test]
    fn area_keys_round_trip() {
        for (key, area) in [
            ("79", Area::Province("79".into())),
            ("all", Area::National),
            ("woman_owned=yes", Area::Group(Dimension::WomanOwned, "yes")),
            (
                "size_class=unknown",
                Area::Group(Dimension::SizeClass, UNKNOWN),
            ),
            (
                "sector_section=U",
                Area::Group(Dimension::SectorSection, "U"),
            ),
        ] {
            assert_eq!(Area::parse(key), Some(area.clone()), "{key}");
            assert_eq!(area.key(), key);
        }
        for bad in [
            "",
            "size_class=tiny",
            "colour=red",
            "7a",
            "sector_section=V",
            "=yes",
        ] {
            assert_eq!(Area::parse(bad), None, "{bad}");
        }
        assert!(is_province_key("01"));
        assert!(!is_province_key("all"));
        assert!(!is_province_key("woman_owned=no"));
    }

    /// §7's group order, and undeclared (or unknown) values in `unknown`.
    #[test]
    fn an_observation_counts_in_its_province_the_nation_and_one_group_per_dimension() {
        let profile = Profile {
            size_class: Some("small"),
            sector_section: Some("G"),
            woman_owned: Some(true),
            ethnic_minority_owned: None,
        };
        let keys: Vec<String> = Area::of_observation("79", &profile)
            .iter()
            .map(Area::key)
            .collect();
        assert_eq!(
            keys,
            [
                "79",
                "all",
                "size_class=small",
                "sector_section=G",
                "woman_owned=yes",
                "ethnic_minority_owned=unknown"
            ]
        );
        let odd = Profile {
            size_class: Some("giant"),
            sector_section: Some("Z"),
            ..Profile::default()
        };
        assert_eq!(Dimension::SizeClass.group_of(&odd), UNKNOWN);
        assert_eq!(Dimension::SectorSection.group_of(&odd), UNKNOWN);
        assert_eq!(Dimension::SectorSection.groups().len(), SECTIONS.len() + 1);
        assert_eq!(&Dimension::SectorSection.groups()[..21], &SECTIONS[..]);
        assert_eq!(Dimension::WomanOwned.rank("unknown"), Some(2));
    }
}
