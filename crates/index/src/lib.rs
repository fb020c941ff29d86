//! # redtape-index
//!
//! The compliance-burden methodology, version 1.1 (shared/design/METHODOLOGY.md, restated in
//! docs/methodology.md), as pure functions: no I/O, no clock, no randomness that is not seeded.
//! Every published figure is computed here, so this crate is where the golden tests live.
//!
//! - [`percentile`]: the "type 7" percentile (numpy's default, PostgreSQL's percentile_cont).
//! - [`calendar`]: working days (Monday to Friday, minus holidays, plus make-up working days).
//! - [`rounding`]: half away from zero, applied on output only.
//! - [`cell`]: per-cell statistics and disclosure control (suppression below k);
//!   [`cell::running`] keeps them up to date observation by observation.
//! - [`tariff`]: the SCM hourly tariff per year (default: the statutory minimum wage).
//! - [`cbi`]: the Compliance Burden Index, ranks and province composites.
//! - [`change`]: year-on-year changes of a figure (trends).
//! - [`responses`]: statistics on government responses, disclosure-controlled.
//! - [`area`]: what a cell covers: a province, the nation (1.1, §3) or a group of firms by
//!   profile (1.1, §7).
//! - [`suppression`]: secondary suppression across the cells of a partition (1.1, §4).
//! - [`anonymity`]: k-anonymous open microdata (1.1, §4).

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod anonymity;
pub mod area;
pub mod calendar;
pub mod cbi;
pub mod cell;
pub mod change;
pub mod percentile;
pub mod responses;
pub mod rounding;
pub mod suppression;
pub mod tariff;

/// Stamped on every figure; a change to any rule is a new version.
/// Figures already published keep the version they were published with (releases store
/// their documents).
pub const METHODOLOGY_VERSION: &str = "1.1";
