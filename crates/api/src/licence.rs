//! The licence every published dataset carries: named in each open answer's
//! `Link: <...>; rel="license"` header ([`crate::conditional`]), in the data dictionary and in the
//! DCAT catalogue. Its own module so that those three depend on it, not on each other.

use serde::Serialize;
use utoipa::ToSchema;

/// The licence of the published data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Licence {
    /// SPDX identifier.
    #[schema(example = "CC-BY-4.0")]
    pub id: String,
    #[schema(example = "Creative Commons Attribution 4.0 International")]
    pub name: String,
    #[schema(example = "https://creativecommons.org/licenses/by/4.0/")]
    pub url: String,
}

impl Licence {
    pub fn cc_by_4() -> Licence {
        Licence {
            id: "CC-BY-4.0".into(),
            name: "Creative Commons Attribution 4.0 International".into(),
            url: "https://creativecommons.org/licenses/by/4.0/".into(),
        }
    }

    pub(crate) fn link(&self) -> String {
        format!("<{}>; rel=\"license\"", self.url)
    }
}
