//! The Redis Streams bus (feature `redis`): one stream per topic (`<prefix><topic>`), one entry
//! per event with the fields `key`, `type`, `version` and `payload` (the JSON envelope). A batch
//! goes in one transaction (MULTI/EXEC), so Redis acknowledges all of it or none.

use super::{EventPublisher, OutboxRecord};
use crate::error::{Error, Result};
use async_trait::async_trait;
use redis::aio::ConnectionManager;

/// Publishes to Redis Streams.
#[derive(Clone)]
pub struct RedisPublisher {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisPublisher {
    /// Connects to `url`; stream names are `prefix` + topic (empty prefix in production, a
    /// unique one per test).
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| Error::Config(format!("invalid Redis URL: {e}")))?;
        let conn = ConnectionManager::new(client).await.map_err(|e| Error::internal(format!("Redis: {e}")))?;
        Ok(RedisPublisher { conn, prefix: prefix.into() })
    }

    /// Deletes this publisher's streams of `topics` (tests and benchmarks clean up with it).
    pub async fn delete_streams(&self, topics: &[&str]) -> Result<()> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("DEL");
        for t in topics {
            cmd.arg(self.stream(t));
        }
        cmd.query_async::<()>(&mut conn).await.map_err(|e| Error::internal(format!("Redis DEL: {e}")))
    }

    /// The stream of `topic`.
    pub fn stream(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }
}

#[async_trait]
impl EventPublisher for RedisPublisher {
    async fn publish(&self, batch: &[OutboxRecord]) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for r in batch {
            let payload = serde_json::to_string(&r.event)?;
            pipe.cmd("XADD")
                .arg(self.stream(&r.topic))
                .arg("*")
                .arg("key")
                .arg(&r.key)
                .arg("type")
                .arg(&r.event.event_type)
                .arg("version")
                .arg(r.event.version)
                .arg("payload")
                .arg(payload)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(|e| Error::internal(format!("Redis XADD: {e}")))
    }
}
