//! # redtape-domain
//!
//! The business rules of redtape and nothing else: no I/O, no HTTP, no SQL.
//!
//! - [`values`]: newtypes that can only hold valid values (`Vnd`, `StaffHours`, ...), so a
//!   submission that exists in memory is a submission that passed every rule.
//! - [`geography`]: Vietnam's provinces before and after the 2025-07-01 merger, embedded from
//!   the reference data, because a province code only means something together with a date.
//! - [`procedure`]: procedure codes and the seed catalogue that reform offices extend.
//! - [`validation`]: the field-level violations that the API reports as problem+json.
//! - [`submission`]: the `Submission` aggregate (cqrs-es), its commands, events and rules.
//! - [`procedure_terms`]: the `Procedure` aggregate: statutory terms over time, reforms.
//! - [`release`]: the `Release` aggregate: a year's figures frozen for citation.
//! - [`access`]: roles and officers' province scopes.
//! - [`filer`]: the optional, coarse profile a business gives (size class, sector).
//!
//! Everything outside this crate (stores, HTTP) depends on it; it depends on nothing of ours.

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod access;
pub mod filer;
pub mod geography;
pub mod procedure;
pub mod procedure_terms;
pub mod release;
pub mod submission;
pub mod token;
pub mod validation;
pub mod values;

pub use access::{Role, Scope};
pub use geography::{Geography, Province, ProvinceCode, ProvinceRef, Provinces};
pub use procedure::{Procedure, ProcedureCatalogue, ProcedureCode, ProcedureLevel};
pub use validation::{FieldViolation, Violations};
pub use values::{Category, Channel, Costs, Narrative, Outcome, StaffHours, Visits, Vnd};
