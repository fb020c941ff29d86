//! HTML pieces the dashboard's parts share (`dashboard`, `glance`), so neither imports the
//! other's internals.

use maud::{html, Markup};

/// A table's header row.
pub(crate) fn header_row(columns: &[&str]) -> Markup {
    html! { thead { tr { @for c in columns { th scope="col" { (c) } } } } }
}
