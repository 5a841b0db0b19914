//! Authentication: RSA keys with rotation, RS256 tokens, refresh rotation with reuse detection,
//! logout, login throttling, and argon2id passwords.

pub mod jwks;
pub mod keys;
pub mod password;
mod service;
pub mod throttle;
pub mod tokens;

pub use jwks::JwksVerifier;
pub use keys::KeyRing;
pub use password::PasswordHasher;
pub use service::{AuthService, BAD_CREDENTIALS, Principal, TokenPair};
pub use tokens::{Claims, TokenSettings, TokenType, Tokens};
