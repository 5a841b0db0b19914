//! taskhub-http: routes in-process, JWKS and shutdown over real sockets, and the CLI binary.
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

mod app;
mod cli;
mod event_schemas;
mod feeds_api;
mod identity;
mod jobs_api;
mod jwks;
mod openapi;
mod pages;
mod routes;
mod tasks_api;
mod teams_api;
mod token_matrix;
