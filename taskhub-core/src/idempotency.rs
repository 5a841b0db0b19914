//! `Idempotency-Key` support for POST commands: the key is claimed inside the command's own
//! transaction and completed with its response before commit, so the change and the record
//! commit together or not at all. A failed command leaves no record; a duplicate replays the
//! first response; the same key with another request is refused.

use crate::error::{Error, Result};
use crate::services::{Actor, Ctx};
use crate::store::Tx;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How long a key is remembered.
pub const WINDOW: chrono::Duration = chrono::Duration::hours(24);
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A client's idempotency key and the fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    request_hash: String,
}

impl IdempotencyKey {
    /// A key for a request whose identity is `fingerprint` (method, path and body, say).
    pub fn new(key: &str, fingerprint: &[u8]) -> Result<Self> {
        if key.is_empty() || key.chars().count() > MAX_KEY_LEN || key.chars().any(char::is_control) {
            return Err(Error::field("Idempotency-Key", format!("must be 1–{MAX_KEY_LEN} printable characters")));
        }
        let digest = Sha256::digest(fingerprint);
        let request_hash = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok(IdempotencyKey { key: key.to_owned(), request_hash })
    }

    /// The key as the client sent it.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The result of an idempotent command.
#[derive(Debug, Clone, PartialEq)]
pub enum Idempotent<T> {
    /// The command ran now.
    Done(T),
    /// The key was used before: the first response, to send again.
    Replayed {
        /// Its status code.
        status: u16,
        /// Its `data`.
        body: Value,
    },
}

impl<T> Idempotent<T> {
    /// The fresh value; a replay is an error (for callers that never pass a key).
    pub fn into_done(self) -> Result<T> {
        match self {
            Idempotent::Done(t) => Ok(t),
            Idempotent::Replayed { .. } => Err(Error::internal("unexpected idempotent replay")),
        }
    }
}

/// Begins a command's transaction, claiming `key` in it. `Err(replay)` when the key was used.
pub(crate) async fn begin(
    ctx: &Ctx,
    actor: &Actor,
    key: Option<&IdempotencyKey>,
) -> Result<Result<Box<dyn Tx>, (u16, Value)>> {
    let mut tx = ctx.store.begin().await?;
    let Some(k) = key else { return Ok(Ok(tx)) };
    let now = ctx.clock.now();
    let mut found = tx.claim_idempotency(actor.user_id, &k.key, &k.request_hash, now).await?;
    if found.as_ref().is_some_and(|r| r.created_at < now - WINDOW) {
        tx.purge_idempotency(now - WINDOW).await?;
        found = tx.claim_idempotency(actor.user_id, &k.key, &k.request_hash, now).await?;
    }
    match found {
        None => Ok(Ok(tx)),
        Some(r) if r.request_hash != k.request_hash => Err(Error::IdempotencyKeyReused),
        Some(r) => match r.response {
            Some(resp) => Ok(Err(resp)),
            None => Err(Error::Conflict("a request with this idempotency key is still running".into())),
        },
    }
}

/// Records the response of a claimed key in the command's transaction.
pub(crate) async fn finish<T: Serialize>(
    tx: &mut dyn Tx,
    actor: &Actor,
    key: Option<&IdempotencyKey>,
    status: u16,
    value: &T,
) -> Result<()> {
    if let Some(k) = key {
        tx.complete_idempotency(actor.user_id, &k.key, status, &serde_json::to_value(value)?).await?;
    }
    Ok(())
}

/// How long a claimed key of an action counts as running before a retry may take it over.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(30);

/// What claiming a key for an action decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Perform the action, then [`IdempotencyService::complete`] or [`IdempotencyService::release`].
    Run,
    /// The action was performed: send this response again.
    Replay(u16, Value),
}

/// Keys for actions that are idempotent in effect (archive, assign, membership changes…):
/// claimed in a transaction of their own with a lease. If a process dies after the action but
/// before recording the response, a retry after the lease performs the action again — which
/// changes nothing — and records the response then.
#[derive(Clone)]
pub struct IdempotencyService {
    ctx: Ctx,
}

impl IdempotencyService {
    pub(crate) fn new(ctx: Ctx) -> Self {
        IdempotencyService { ctx }
    }

    /// Claims `key` for `actor`.
    pub async fn claim(&self, actor: &Actor, key: &IdempotencyKey) -> Result<Claim> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let mut found = tx.claim_idempotency(actor.user_id, &key.key, &key.request_hash, now).await?;
        let stale = found.as_ref().is_some_and(|r| {
            r.created_at < now - WINDOW
                || (r.response.is_none() && r.created_at < now - LEASE && r.request_hash == key.request_hash)
        });
        if stale {
            tx.purge_idempotency(now - WINDOW).await?;
            tx.release_idempotency(actor.user_id, &key.key).await?;
            found = tx.claim_idempotency(actor.user_id, &key.key, &key.request_hash, now).await?;
        }
        let claim = match found {
            None => Claim::Run,
            Some(r) if r.request_hash != key.request_hash => return Err(Error::IdempotencyKeyReused),
            Some(r) => match r.response {
                Some((status, body)) => Claim::Replay(status, body),
                None => return Err(Error::Conflict("a request with this idempotency key is still running".into())),
            },
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Records the response of a claimed key.
    pub async fn complete(&self, actor: &Actor, key: &IdempotencyKey, status: u16, body: &Value) -> Result<()> {
        let mut tx = self.ctx.store.begin().await?;
        tx.complete_idempotency(actor.user_id, &key.key, status, body).await?;
        tx.commit().await
    }

    /// Forgets a claimed key whose action failed, so the client may retry with it.
    pub async fn release(&self, actor: &Actor, key: &IdempotencyKey) -> Result<()> {
        let mut tx = self.ctx.store.begin().await?;
        tx.release_idempotency(actor.user_id, &key.key).await?;
        tx.commit().await
    }
}
