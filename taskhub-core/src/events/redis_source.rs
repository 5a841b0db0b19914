//! The Redis Streams source (feature `redis`): one consumer group per consumer on each topic's
//! stream (created from the start of the stream if missing), `XREADGROUP` to read, `XACK` after
//! the effect, and `XAUTOCLAIM` so entries a dead member left pending are taken over by a live one.

use super::source::{Delivery, EventSource, Position, Subscription};
use crate::error::{Error, Result};
use crate::store::consume::DeadLetter;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamReadReply};
use redis::{AsyncConnectionConfig, Value};
use std::time::Duration;

fn redis_err(what: &str) -> impl Fn(redis::RedisError) -> Error + '_ {
    move |e| Error::internal(format!("Redis {what}: {e}"))
}

/// Reads Redis Streams written by [`super::RedisPublisher`] with the same prefix.
#[derive(Clone)]
pub struct RedisSource {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    reclaim_after: Duration,
}

impl RedisSource {
    /// Connects to `url`; streams are `prefix` + topic.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| Error::Config(format!("invalid Redis URL: {e}")))?;
        let conn = ConnectionManager::new(client.clone()).await.map_err(redis_err("connect"))?;
        Ok(RedisSource { client, conn, prefix: prefix.into(), reclaim_after: Duration::from_secs(30) })
    }

    /// How long an entry stays with a member that does not acknowledge it before another member
    /// takes it over (default 30 s; longer than any effect takes).
    pub fn with_reclaim_after(mut self, after: Duration) -> Self {
        self.reclaim_after = after;
        self
    }

    fn stream(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }
}

#[async_trait]
impl EventSource for RedisSource {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn subscribe(&self, group: &str, member: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        let mut conn = self.conn.clone();
        for t in topics {
            let r: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(self.stream(t))
                .arg(group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            match r {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(redis_err("XGROUP CREATE")(e)),
            }
        }
        // A blocking read holds its connection: each member gets its own, with a response
        // timeout longer than any block it asks for.
        let cfg = AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
        let reader =
            self.client.get_multiplexed_async_connection_with_config(&cfg).await.map_err(redis_err("connect"))?;
        Ok(Box::new(RedisSubscription {
            source: self.clone(),
            reader,
            group: group.to_owned(),
            member: member.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            reclaim_cursor: vec!["0-0".to_owned(); topics.len()],
            last_reclaim: None,
            check_own_pending: true,
        }))
    }

    async fn dead_letter(&self, d: &DeadLetter) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("XADD")
            .arg(self.stream(&d.topic))
            .arg("*")
            .arg("key")
            .arg(&d.key)
            .arg("payload")
            .arg(&d.payload)
            .arg("error")
            .arg(&d.error)
            .arg("consumer")
            .arg(&d.consumer)
            .arg("at")
            .arg(d.created_at.to_rfc3339())
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_err("XADD"))
    }
}

struct RedisSubscription {
    source: RedisSource,
    reader: MultiplexedConnection,
    group: String,
    member: String,
    topics: Vec<String>,
    reclaim_cursor: Vec<String>,
    last_reclaim: Option<tokio::time::Instant>,
    /// Re-read this member's unacknowledged entries (after a start or a failed ack).
    check_own_pending: bool,
}

impl RedisSubscription {
    fn delivery(&self, topic: &str, stream: &str, e: StreamId) -> Delivery {
        let field = |name: &str| match e.map.get(name) {
            Some(Value::BulkString(b)) => b.clone(),
            Some(Value::SimpleString(s)) => s.clone().into_bytes(),
            _ => Vec::new(),
        };
        Delivery {
            topic: topic.to_owned(),
            key: String::from_utf8_lossy(&field("key")).into_owned(),
            payload: field("payload"),
            position: Position::Stream { stream: stream.to_owned(), id: e.id },
        }
    }

    /// Takes over entries idle longer than the reclaim delay (their member died).
    async fn reclaim(&mut self, max: usize) -> Result<Vec<Delivery>> {
        let now = tokio::time::Instant::now();
        if self.last_reclaim.is_some_and(|t| now.duration_since(t) < self.source.reclaim_after / 4) {
            return Ok(Vec::new());
        }
        self.last_reclaim = Some(now);
        let idle_ms = u64::try_from(self.source.reclaim_after.as_millis()).unwrap_or(u64::MAX);
        let mut out = Vec::new();
        for i in 0..self.topics.len() {
            let (Some(topic), Some(cursor)) = (self.topics.get(i).cloned(), self.reclaim_cursor.get(i).cloned()) else {
                continue;
            };
            let stream = self.source.stream(&topic);
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&stream)
                .arg(&self.group)
                .arg(&self.member)
                .arg(idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(max)
                .query_async(&mut self.reader)
                .await
                .map_err(redis_err("XAUTOCLAIM"))?;
            if let Some(c) = self.reclaim_cursor.get_mut(i) {
                c.clone_from(&reply.next_stream_id);
            }
            for e in reply.claimed {
                out.push(self.delivery(&topic, &stream, e));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let max = max.max(1);
        // First what this member read before a restart and never acknowledged (its own pending
        // entries), then what dead members left, then new entries.
        let mut out = Vec::new();
        if self.check_own_pending {
            out = self.read(max, "0", None).await?;
            self.check_own_pending = !out.is_empty();
        }
        if out.is_empty() {
            out = self.reclaim(max).await?;
        }
        if out.is_empty() {
            let block = u64::try_from(wait.as_millis()).unwrap_or(0).clamp(1, 10_000);
            out = self.read(max, ">", Some(block)).await?;
        }
        Ok(out)
    }

    async fn ack(&mut self, batch: &[Delivery]) -> Result<()> {
        let mut pipe = redis::pipe();
        for d in batch {
            if let Position::Stream { stream, id } = &d.position {
                pipe.cmd("XACK").arg(stream).arg(&self.group).arg(id).ignore();
            }
        }
        let r = pipe.query_async::<()>(&mut self.reader).await.map_err(redis_err("XACK"));
        if r.is_err() {
            self.check_own_pending = true;
        }
        r
    }

    async fn lag(&mut self) -> Result<u64> {
        let mut total = 0u64;
        for t in &self.topics {
            let info: StreamInfoGroupsReply = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(self.source.stream(t))
                .query_async(&mut self.reader)
                .await
                .map_err(redis_err("XINFO GROUPS"))?;
            if let Some(g) = info.groups.iter().find(|g| g.name == self.group) {
                let waiting = g.lag.unwrap_or(0).saturating_add(g.pending);
                total = total.saturating_add(u64::try_from(waiting).unwrap_or(u64::MAX));
            }
        }
        Ok(total)
    }
}

impl RedisSubscription {
    /// `XREADGROUP` from `from` (`0` = this member's pending entries, `>` = new ones).
    async fn read(&mut self, max: usize, from: &str, block_ms: Option<u64>) -> Result<Vec<Delivery>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(&self.group).arg(&self.member).arg("COUNT").arg(max);
        if let Some(ms) = block_ms {
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS");
        for t in &self.topics {
            cmd.arg(self.source.stream(t));
        }
        for _ in &self.topics {
            cmd.arg(from);
        }
        let reply: Option<StreamReadReply> =
            cmd.query_async(&mut self.reader).await.map_err(redis_err("XREADGROUP"))?;
        let mut out = Vec::new();
        for k in reply.map(|r| r.keys).unwrap_or_default() {
            let topic = k.key.strip_prefix(&self.source.prefix).unwrap_or(&k.key).to_owned();
            for e in k.ids {
                // Pending entries deleted from the stream come back without fields: acknowledge
                // them so they stop coming back.
                if e.map.is_empty() {
                    let _: redis::RedisResult<()> =
                        redis::cmd("XACK").arg(&k.key).arg(&self.group).arg(&e.id).query_async(&mut self.reader).await;
                    continue;
                }
                out.push(self.delivery(&topic, &k.key, e));
            }
        }
        Ok(out)
    }
}
