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
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Business => "business",
            Role::Officer => "officer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "business" => Some(Role::Business),
            "officer" => Some(Role::Officer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}
