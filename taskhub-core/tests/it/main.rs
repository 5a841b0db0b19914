#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]
//! The contract suite of taskhub-core: every test runs on SQLite and on a real PostgreSQL
//! (a fresh database per test). A backend that cannot be reached fails the run.

mod common;
mod contract;

mod auth;
mod consumers;
mod history_outbox;
mod maintenance;
mod model;
mod paging;
mod relay;
mod tasks_rules;
mod teams_users;
