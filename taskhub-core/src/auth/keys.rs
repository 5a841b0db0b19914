//! The RSA signing keys: one PKCS#8 PEM file per key (`<kid>.pem`, mode 0600) plus `keys.json`
//! recording each key's state (API.md "Identity").
//!
//! - **active**: signs new tokens; exactly one.
//! - **retiring**: replaced by `taskhub keys rotate`; still verifies until every token it signed
//!   has expired (`retire_at` = rotation time + the longest token lifetime + leeway), then
//!   becomes **retired**: gone from the JWKS, its private key file deleted.
//!
//! Several processes may share one keys directory: writes hold a lock file and replace
//! `keys.json` atomically, and every process re-reads `keys.json` when it changes (checked at
//! most every two seconds, and at once when a token names an unknown kid).

use crate::clock::Clock;
use crate::error::{Error, Result};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How long a retiring key keeps verifying after rotation: the refresh-token lifetime plus a
/// minute of clock leeway.
pub const DEFAULT_GRACE: chrono::Duration = chrono::Duration::seconds(7 * 24 * 3600 + 60);

/// A key's place in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Signs new tokens.
    Active,
    /// Verifies tokens it signed until `retire_at`.
    Retiring,
    /// Verifies nothing.
    Retired,
}

/// What `keys.json` records of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMeta {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// State as last written (see [`KeyMeta::state_at`] for the effective one).
    pub state: KeyState,
    /// When the key was made.
    pub created_at: DateTime<Utc>,
    /// When it stopped signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<DateTime<Utc>>,
    /// When it stops verifying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_at: Option<DateTime<Utc>>,
}

impl KeyMeta {
    /// The state at `now`: a retiring key past `retire_at` is retired.
    pub fn state_at(&self, now: DateTime<Utc>) -> KeyState {
        match (self.state, self.retire_at) {
            (KeyState::Retiring, Some(at)) if now >= at => KeyState::Retired,
            (s, _) => s,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeysFile {
    keys: Vec<KeyMeta>,
}

/// A key loaded for use.
#[derive(Clone)]
pub(crate) struct LoadedKey {
    pub(crate) meta: KeyMeta,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    pub(crate) jwk: Jwk,
    pub(crate) public_pem: String,
}

struct Snapshot {
    keys: Vec<LoadedKey>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// The keys of one keys directory.
pub struct KeyRing {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    grace: chrono::Duration,
    snapshot: RwLock<Arc<Snapshot>>,
    reload: Mutex<()>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn io(context: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("{context}: {e}"))
}

/// The RFC 7638 thumbprint of an RSA public key given as base64url `n` and `e`.
pub fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Loads a private key PEM into everything signing and publishing need.
fn load_key(meta: KeyMeta, private_pem: &str) -> Result<LoadedKey> {
    let encoding = EncodingKey::from_rsa_pem(private_pem.as_bytes()).map_err(|e| io("bad private key", e))?;
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).map_err(|e| io("public key", e))?;
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        return Err(Error::internal(format!("key {} is not an RSA key", meta.kid)));
    };
    let kid = thumbprint(&rsa.n, &rsa.e);
    if kid != meta.kid {
        return Err(Error::internal(format!("key file {}.pem holds key {kid}", meta.kid)));
    }
    let decoding = DecodingKey::from_rsa_components(&rsa.n, &rsa.e).map_err(|e| io("public key", e))?;
    jwk.common = CommonParameters {
        public_key_use: Some(PublicKeyUse::Signature),
        key_algorithm: Some(KeyAlgorithm::RS256),
        key_id: Some(kid),
        ..Default::default()
    };
    let der = private_pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>();
    let der = base64::engine::general_purpose::STANDARD.decode(der).map_err(|e| io("bad private key", e))?;
    let pair = KeyPair::from_pkcs8(&der).map_err(|e| io("bad private key", e))?;
    let spki = AsDer::<PublicKeyX509Der>::as_der(pair.public_key()).map_err(|e| io("public key", e))?;
    Ok(LoadedKey { meta, encoding, decoding, jwk, public_pem: pem("PUBLIC KEY", spki.as_ref()) })
}

/// Makes a new RSA-2048 key: its metadata and PKCS#8 PEM.
fn generate(now: DateTime<Utc>) -> Result<(KeyMeta, String)> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| io("key generation", e))?;
    let der = AsDer::<Pkcs8V1Der>::as_der(&pair).map_err(|e| io("key encoding", e))?;
    let private_pem = pem("PRIVATE KEY", der.as_ref());
    let encoding = EncodingKey::from_rsa_pem(private_pem.as_bytes()).map_err(|e| io("key encoding", e))?;
    let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).map_err(|e| io("public key", e))?;
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else { return Err(Error::internal("not an RSA key")) };
    let meta = KeyMeta {
        kid: thumbprint(&rsa.n, &rsa.e),
        state: KeyState::Active,
        created_at: now,
        rotated_at: None,
        retire_at: None,
    };
    Ok((meta, private_pem))
}

/// An exclusive lock on the keys directory, held while writing (released on drop).
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join("keys.lock");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return Ok(DirLock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock older than a minute was left by a crashed process.
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(60));
                    if stale {
                        let _ = std::fs::remove_file(&path);
                    } else if Instant::now() > deadline {
                        return Err(Error::internal(format!("keys directory is locked ({})", path.display())));
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                Err(e) => return Err(io("cannot lock the keys directory", e)),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| io("cannot write a key file", e))?;
    f.write_all(contents.as_bytes()).map_err(|e| io("cannot write a key file", e))?;
    f.sync_all().map_err(|e| io("cannot write a key file", e))
}

impl KeyRing {
    /// Opens the keys directory, creating it and a first key when there is none.
    pub fn open(dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::open_with_grace(dir, clock, DEFAULT_GRACE)
    }

    /// As [`KeyRing::open`] with another grace period for retiring keys.
    pub fn open_with_grace(dir: impl Into<PathBuf>, clock: Arc<dyn Clock>, grace: chrono::Duration) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| io(&format!("cannot create {}", dir.display()), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        let ring = KeyRing {
            dir,
            clock,
            grace,
            snapshot: RwLock::new(Arc::new(Snapshot { keys: Vec::new(), modified: None, checked: Instant::now() })),
            reload: Mutex::new(()),
        };
        {
            let _lock = DirLock::acquire(&ring.dir)?;
            let file = ring.read_file()?;
            if !file.keys.iter().any(|k| k.state == KeyState::Active) {
                ring.add_active_key(file)?;
            }
        }
        ring.reload()?;
        Ok(ring)
    }

    fn keys_json(&self) -> PathBuf {
        self.dir.join("keys.json")
    }

    fn read_file(&self) -> Result<KeysFile> {
        match std::fs::read_to_string(self.keys_json()) {
            Ok(s) => serde_json::from_str(&s).map_err(|e| io("keys.json is corrupt", e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile::default()),
            Err(e) => Err(io("cannot read keys.json", e)),
        }
    }

    fn write_file(&self, file: &KeysFile) -> Result<()> {
        let tmp = self.dir.join(format!("keys.json.tmp-{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(file)?).map_err(|e| io("cannot write keys.json", e))?;
        std::fs::rename(&tmp, self.keys_json()).map_err(|e| io("cannot write keys.json", e))
    }

    /// Demotes the active key (if any) to retiring and adds a new active one. Lock held.
    fn add_active_key(&self, mut file: KeysFile) -> Result<String> {
        let now = self.clock.now();
        for k in &mut file.keys {
            if k.state == KeyState::Active {
                k.state = KeyState::Retiring;
                k.rotated_at = Some(now);
                k.retire_at = Some(now + self.grace);
            }
        }
        let (meta, private_pem) = generate(now)?;
        write_private(&self.dir.join(format!("{}.pem", meta.kid)), &private_pem)?;
        let kid = meta.kid.clone();
        file.keys.push(meta);
        self.write_file(&file)?;
        Ok(kid)
    }

    /// Adds a new signing key; the previous one keeps verifying for the grace period.
    pub fn rotate(&self) -> Result<String> {
        let kid = {
            let _lock = DirLock::acquire(&self.dir)?;
            let mut file = self.read_file()?;
            let now = self.clock.now();
            // Retire for good what has passed its grace, and drop its private key.
            for k in &mut file.keys {
                if k.state_at(now) == KeyState::Retired && k.state != KeyState::Retired {
                    k.state = KeyState::Retired;
                    let _ = std::fs::remove_file(self.dir.join(format!("{}.pem", k.kid)));
                }
            }
            self.add_active_key(file)?
        };
        self.reload()?;
        Ok(kid)
    }

    /// Rotates, then announces `keys.rotated` (system-notifications) through the outbox of
    /// `store`, so every operator path that rotates tells the audit log the same way.
    pub async fn rotate_announced(&self, store: &dyn crate::store::Store) -> Result<String> {
        let kid = self.rotate()?;
        let data = serde_json::json!({"kid": kid});
        let ev = crate::events::EventEnvelope::new("keys.rotated", "key", 0, None, self.clock.now(), data);
        let mut tx = store.begin().await?;
        tx.insert_outbox(&ev).await?;
        tx.commit().await?;
        Ok(kid)
    }

    /// Every key with its effective state now.
    pub fn list(&self) -> Result<Vec<KeyMeta>> {
        let now = self.clock.now();
        Ok(self
            .read_file()?
            .keys
            .into_iter()
            .map(|mut k| {
                k.state = k.state_at(now);
                k
            })
            .collect())
    }

    /// Re-reads `keys.json` and the key files.
    pub fn reload(&self) -> Result<()> {
        let _guard = self.reload.lock().unwrap_or_else(|p| p.into_inner());
        let modified = std::fs::metadata(self.keys_json()).and_then(|m| m.modified()).ok();
        let now = self.clock.now();
        let mut keys = Vec::new();
        for meta in self.read_file()?.keys {
            if meta.state_at(now) == KeyState::Retired {
                continue;
            }
            let path = self.dir.join(format!("{}.pem", meta.kid));
            let private_pem =
                std::fs::read_to_string(&path).map_err(|e| io(&format!("cannot read {}", path.display()), e))?;
            keys.push(load_key(meta, &private_pem)?);
        }
        if !keys.iter().any(|k| k.meta.state == KeyState::Active) {
            return Err(Error::internal("no active signing key in the keys directory"));
        }
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(Snapshot { keys, modified, checked: Instant::now() });
        Ok(())
    }

    /// The current keys, re-read first if `keys.json` changed (checked at most every 2 s).
    fn current(&self) -> Arc<Snapshot> {
        let snap = self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone();
        if snap.checked.elapsed() < Duration::from_secs(2) {
            return snap;
        }
        let modified = std::fs::metadata(self.keys_json()).and_then(|m| m.modified()).ok();
        if modified != snap.modified {
            if let Err(e) = self.reload() {
                tracing::error!(error = %e, "cannot reload the signing keys; keeping the loaded ones");
            }
        } else if let Ok(mut w) = self.snapshot.write() {
            *w = Arc::new(Snapshot { keys: snap.keys.clone(), modified: snap.modified, checked: Instant::now() });
        }
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The key that signs new tokens.
    pub(crate) fn signing_key(&self) -> Result<LoadedKey> {
        self.current()
            .keys
            .iter()
            .rev()
            .find(|k| k.meta.state == KeyState::Active)
            .cloned()
            .ok_or_else(|| Error::internal("no active signing key"))
    }

    /// The key `kid` if it may verify now; an unknown kid triggers one re-read of the directory.
    pub(crate) fn verifying_key(&self, kid: &str) -> Option<DecodingKey> {
        let now = self.clock.now();
        let find = |s: &Snapshot| {
            s.keys
                .iter()
                .find(|k| k.meta.kid == kid && k.meta.state_at(now) != KeyState::Retired)
                .map(|k| k.decoding.clone())
        };
        if let Some(k) = find(&self.current()) {
            return Some(k);
        }
        let snap = self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone();
        let modified = std::fs::metadata(self.keys_json()).and_then(|m| m.modified()).ok();
        if modified != snap.modified && self.reload().is_ok() {
            return find(&self.current());
        }
        None
    }

    /// The JWKS: every key that may still verify a live token.
    pub fn jwks(&self) -> JwkSet {
        let now = self.clock.now();
        JwkSet {
            keys: self
                .current()
                .keys
                .iter()
                .filter(|k| k.meta.state_at(now) != KeyState::Retired)
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    /// The current signing key's id and public key (PEM SPKI).
    pub fn public_key(&self) -> Result<(String, String)> {
        let k = self.signing_key()?;
        Ok((k.meta.kid, k.public_pem))
    }
}
