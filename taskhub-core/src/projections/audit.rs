//! audit-log: an append-only chain of user, team and system events; each row holds the SHA-256
//! of the previous row's hash and its own payload, so changing, removing or inserting a row
//! breaks every hash after it. [`verify`](super::ProjectionService::verify_audit) walks it.

use crate::error::Result;
use crate::events::consumer::Consumer;
use crate::events::{EventEnvelope, TOPIC_SYSTEM_NOTIFICATIONS, TOPIC_USER_ACTIVITIES};
use crate::store::Tx;
use crate::store::consume::{AuditEntry, EntityRefOut};
use async_trait::async_trait;
use chrono::SubsecRound;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The audit-log consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditLog;

/// `hex(SHA-256(prev_hash || "\n" || payload))`.
pub fn chain_hash(prev_hash: &str, payload: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(payload.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The first row where the chain does not hold, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The row's id.
    pub id: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks one row against the previous row's hash; `Err(reason)` if it does not hold.
pub(crate) fn check_row(prev_hash: &str, row: &AuditEntry) -> std::result::Result<(), String> {
    if row.prev_hash != prev_hash {
        return Err(format!("prev_hash {} does not match the previous row's hash {prev_hash}", row.prev_hash));
    }
    let want = chain_hash(&row.prev_hash, &row.payload);
    if row.hash != want {
        return Err(format!("hash {} does not match its contents (expected {want})", row.hash));
    }
    let e: EventEnvelope = serde_json::from_str(&row.payload).map_err(|e| format!("payload is not an event: {e}"))?;
    let entity = Some(EntityRefOut { kind: e.entity.kind, id: e.entity.id });
    if e.id.to_string() != row.event_id
        || e.event_type != row.event_type
        || e.actor_id != row.actor_id
        || e.occurred_at.trunc_subsecs(6) != row.occurred_at.trunc_subsecs(6)
        || entity != row.entity
    {
        return Err("columns differ from the hashed payload".to_owned());
    }
    Ok(())
}

#[async_trait]
impl Consumer for AuditLog {
    fn name(&self) -> &'static str {
        "audit-log"
    }

    fn topics(&self) -> &'static [&'static str] {
        &[TOPIC_USER_ACTIVITIES, TOPIC_SYSTEM_NOTIFICATIONS]
    }

    async fn apply(&self, tx: &mut dyn Tx, e: &EventEnvelope) -> Result<()> {
        let prev_hash = tx.audit_head().await?.unwrap_or_else(|| GENESIS_HASH.to_owned());
        let payload = serde_json::to_string(e)?;
        let entity = Some(EntityRefOut { kind: e.entity.kind.clone(), id: e.entity.id });
        let row = AuditEntry {
            id: 0,
            event_id: e.id.to_string(),
            event_type: e.event_type.clone(),
            actor_id: e.actor_id,
            entity,
            occurred_at: e.occurred_at,
            hash: chain_hash(&prev_hash, &payload),
            payload,
            prev_hash,
        };
        tx.insert_audit(&row).await
    }
}
