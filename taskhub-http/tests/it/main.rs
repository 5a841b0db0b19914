//! taskhub-http: routes in-process, graceful shutdown over a real socket, and the CLI binary.
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

mod cli;
mod routes;
