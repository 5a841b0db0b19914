//! # taskhub-core
//!
//! The reusable heart of TaskHub: the domain (users, teams, tasks, assignments, tags, templates,
//! comments, history), the rules that govern it (validation bounds and authorization), and the
//! transactional outbox that every domain change writes its events into.
//!
//! Shell crates (`taskhub-http`, `taskhub-jobs`, `taskhub-events`, `taskhub-analytics`) and
//! embedding applications use the same [`Services`], so an embedding app gets exactly the rules
//! the HTTP API enforces.
//!
//! ## Features
//! - `sqlite` (default): SQLite storage, the embedded default.
//! - `postgres`: PostgreSQL storage for scale-out deployments.
//! - `mock`: `mockall` mocks of the traits ([`store::Store`], [`clock::Clock`]).
//!
//! The backend is chosen at run time from the database URL (`sqlite:` or `postgres://`); asking
//! for one that was not compiled in is a start-up error, never a silent fallback.
//!
//! ```no_run
//! # async fn demo() -> Result<(), taskhub_core::Error> {
//! use taskhub_core::{Services, store};
//! let store = store::connect("sqlite::memory:").await?;
//! let services = Services::new(store);
//! # Ok(()) }
//! ```

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("taskhub-core needs at least one storage backend: enable feature `sqlite` or `postgres`");

pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod history;
pub mod idempotency;
pub mod maintenance;
pub mod page;
pub mod projections;
pub mod runtime;
pub mod services;
pub mod store;
pub mod tasks;
pub mod teams;
pub mod users;
pub mod validation;

pub use error::{Error, FieldErrors, Result};
pub use services::{Actor, Services};
