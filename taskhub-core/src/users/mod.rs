//! Users: registration, profiles, the staff flag and deactivation.

mod model;
mod service;

pub use model::{NewUser, User, UserInput, UserPatch, UserView, normalize_email, normalize_username};
pub use service::UserService;
