//! Teams: a named group with one admin and members. Members see the team's tasks; the admin
//! may edit them.

mod model;
mod service;

pub use model::{AddMembersResult, Memberships, Team, TeamInput, TeamRecord};
pub use service::TeamService;
