//! End-to-end tests: the real application over real HTTP, on both stores.
//!
//! One test binary (shorter link times); cases are plain async functions that each module
//! runs on SQLite and PostgreSQL through `on_both_stores!`.

// Tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod access;
mod accounts;
mod browser;
mod dashboard;
mod demo;
mod disclosure;
mod durability;
mod faults;
mod filing;
mod hostile;
mod idempotency;
mod indices;
mod intermediaries;
mod lifecycle;
mod limits;
mod metrics;
mod moderation;
mod onboarding;
mod open_data;
mod openapi;
mod procedures;
mod projection;
mod rebuild;
mod reference;
mod releases;
mod replicas;
mod replicas_e2e;
mod restore;
mod roles;
mod validation;
