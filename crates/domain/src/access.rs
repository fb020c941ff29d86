//! Who may do what. Roles are business vocabulary (DESIGN.md "Users"), so they live here;
//! tokens and their hashes live in the store.

use serde::{Deserialize, Serialize};

/// The role a bearer token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A business (filer): files and manages its own submissions.
    Business,
    /// A reform-office officer: moderates, responds, registers procedures.
    Officer,
    /// An operator of the service: publishes releases, manages tokens.
    Admin,
    /// An organisation (business association, SME support centre) that registers member
    /// businesses and files on their behalf.
    Intermediary,
}

impl Role {
    /// Whether tokens of this role speak for a filer (a business or an intermediary), rather
    /// than for the reform office's staff.
    pub fn files(self) -> bool {
        matches!(self, Role::Business | Role::Intermediary)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Business => "business",
            Role::Officer => "officer",
            Role::Admin => "admin",
            Role::Intermediary => "intermediary",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "business" => Some(Role::Business),
            "officer" => Some(Role::Officer),
            "admin" => Some(Role::Admin),
            "intermediary" => Some(Role::Intermediary),
            _ => None,
        }
    }
}

/// The provinces an officer token may act on. Codes are `vn-34` codes (the map in force): a
/// submission recorded on the old `vn-63` map is in scope when its successor province is, so
/// an officer of a merged province sees the history of every unit merged into it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    #[default]
    Everywhere,
    Provinces(std::collections::BTreeSet<String>),
}

impl Scope {
    /// Parses a list of `vn-34` codes; an empty list is refused (it would allow nothing).
    pub fn provinces<S: AsRef<str>>(codes: &[S]) -> Result<Scope, crate::Violations> {
        let mut v = crate::Violations::new();
        let provinces = crate::Provinces::get();
        let mut set = std::collections::BTreeSet::new();
        for (i, code) in codes.iter().enumerate() {
            let code = code.as_ref().trim();
            if provinces.find(crate::Geography::Vn34, code).is_none() {
                v.push(
                    format!("/provinces/{i}"),
                    "unknown_province",
                    format!("{code:?} is not a vn-34 province code; see GET /v1/provinces"),
                );
            }
            set.insert(code.to_string());
        }
        if codes.is_empty() {
            v.push("/provinces", "required", "name at least one province");
        }
        v.into_result().map(|()| Scope::Provinces(set))
    }

    /// Whether a submission whose `vn-34` province is `vn34` is in scope.
    pub fn allows(&self, vn34: &str) -> bool {
        match self {
            Scope::Everywhere => true,
            Scope::Provinces(set) => set.contains(vn34),
        }
    }

    /// The codes, sorted and comma-separated, as stored; `None` for everywhere.
    pub fn to_stored(&self) -> Option<String> {
        match self {
            Scope::Everywhere => None,
            Scope::Provinces(set) => Some(set.iter().cloned().collect::<Vec<_>>().join(",")),
        }
    }

    pub fn from_stored(text: Option<&str>) -> Scope {
        match text {
            None => Scope::Everywhere,
            Some(t) => Scope::Provinces(t.split(',').map(str::to_string).collect()),
        }
    }

    pub fn is_everywhere(&self) -> bool {
        matches!(self, Scope::Everywhere)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_names_vn34_provinces_only() {
        let scope = Scope::provinces(&["79", "01"]).unwrap();
        assert!(scope.allows("79") && scope.allows("01") && !scope.allows("48"));
        assert_eq!(scope.to_stored().as_deref(), Some("01,79"));
        assert_eq!(Scope::from_stored(Some("01,79")), scope);
        assert!(Scope::from_stored(None).allows("48"));
        // "77" (Bà Rịa - Vũng Tàu) existed on vn-63 only.
        let bad = Scope::provinces(&["79", "77"]).unwrap_err();
        assert_eq!(bad.0[0].pointer, "/provinces/1");
        assert_eq!(bad.0[0].rule, "unknown_province");
        assert_eq!(
            Scope::provinces::<&str>(&[]).unwrap_err().0[0].rule,
            "required"
        );
    }
}
