//! Password hashing with argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane),
//! run off the async threads behind a bound so a burst of logins cannot starve the server.

use crate::error::{Error, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Hashes and verifies passwords.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    params: Params,
    dummy: Arc<str>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new(Self::owasp_params())
    }
}

impl PasswordHasher {
    /// OWASP's minimum for argon2id: m = 19 MiB, t = 2, p = 1.
    pub fn owasp_params() -> Params {
        Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
    }

    /// A hasher with `params`, running at most as many hashes at once as there are cores.
    pub fn new(params: Params) -> Self {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = SaltString::generate(&mut OsRng);
        // A real hash of a random password, so unknown users cost the same time as known ones.
        let dummy = argon.hash_password(salt.as_str().as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default();
        PasswordHasher { permits: Arc::new(Semaphore::new(cores)), params, dummy: dummy.into() }
    }

    fn argon(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// Hashes `password` into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let (pw, params) = (password.to_owned(), self.params.clone());
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Self::argon(params).hash_password(pw.as_bytes(), &salt).map(|h| h.to_string())
        })
        .await
        .map_err(Error::internal)?
        .map_err(|e| Error::internal(e.to_string()))
    }

    /// Checks `password` against `hash`; `None` verifies against a dummy hash (same cost) and
    /// always answers false.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy.to_string(), str::to_owned);
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
                .unwrap_or(false)
        })
        .await
        .map_err(Error::internal)?;
        Ok(known && ok)
    }
}
