//! Authentication building blocks. Passwords live here; tokens and keys join them later.

pub mod password;

pub use password::PasswordHasher;
