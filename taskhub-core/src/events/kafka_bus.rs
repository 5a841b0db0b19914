//! The Kafka bus (feature `kafka`, rdkafka): an idempotent producer with `acks=all` publishing
//! each event keyed `kind:id` with `type` and `version` headers, topics created if missing with
//! several partitions, and consumer groups that commit offsets only after the effects committed
//! (a rebalance or a crash means a redelivery, which the consumers skip by event id).

use super::source::{Delivery, EventSource, Position, Subscription};
use super::{EventPublisher, OutboxRecord};
use crate::error::{Error, Result};
use crate::store::consume::DeadLetter;
use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn kafka_err(what: &str) -> impl Fn(rdkafka::error::KafkaError) -> Error + '_ {
    move |e| Error::internal(format!("Kafka {what}: {e}"))
}

/// Partitions of the topics TaskHub creates.
pub const DEFAULT_PARTITIONS: i32 = 3;

/// Publishes to and reads from Kafka. Topic and group names are `prefix` + name (empty prefix in
/// production, a unique one per test).
#[derive(Clone)]
pub struct KafkaBus {
    brokers: String,
    prefix: String,
    producer: FutureProducer,
    send_timeout: Duration,
    fetch_wait: Duration,
}

impl KafkaBus {
    /// Connects to `brokers` (comma-separated `host:port`) and creates the missing topics of
    /// `topics` and their `.dlq` topics.
    pub async fn connect(brokers: &str, prefix: impl Into<String>, topics: &[&str]) -> Result<Self> {
        let prefix = prefix.into();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "2")
            .create()
            .map_err(kafka_err("producer"))?;
        let bus = KafkaBus {
            brokers: brokers.to_owned(),
            prefix,
            producer,
            send_timeout: Duration::from_secs(30),
            fetch_wait: Duration::from_millis(50),
        };
        let mut all: Vec<String> = topics.iter().map(|t| bus.name(t)).collect();
        all.extend(topics.iter().map(|t| bus.name(&format!("{t}.dlq"))));
        bus.create_topics(&all).await?;
        Ok(bus)
    }

    /// How long a publish may wait for the broker before it fails (and the relay retries).
    pub fn with_send_timeout(mut self, t: Duration) -> Self {
        self.send_timeout = t;
        self
    }

    /// How long a consumer's fetch may wait on the broker for data (default 50 ms; lower means
    /// lower latency on brokers that hold fetches for the whole wait, and more idle requests).
    pub fn with_fetch_wait(mut self, t: Duration) -> Self {
        self.fetch_wait = t;
        self
    }

    fn name(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }

    async fn create_topics(&self, names: &[String]) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.brokers).create().map_err(kafka_err("admin"))?;
        let new: Vec<NewTopic<'_>> =
            names.iter().map(|n| NewTopic::new(n, DEFAULT_PARTITIONS, TopicReplication::Fixed(1))).collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin.create_topics(new.iter(), &opts).await.map_err(kafka_err("CreateTopics"))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => return Err(Error::internal(format!("Kafka CreateTopics {t}: {code}"))),
            }
        }
        // Dropping an admin client blocks: do it off the async threads.
        let _ = tokio::task::spawn_blocking(move || drop(admin)).await;
        Ok(())
    }

    /// Deletes this bus's topics (tests clean up with it).
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.brokers).create().map_err(kafka_err("admin"))?;
        let names: Vec<String> = topics.iter().map(|t| self.name(t)).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let r = admin.delete_topics(&refs, &AdminOptions::new()).await.map_err(kafka_err("DeleteTopics"));
        let _ = tokio::task::spawn_blocking(move || drop(admin)).await;
        r.map(|_| ())
    }

    /// Produces raw bytes to `topic` (tools and tests: a broken producer's message).
    pub async fn produce_raw(&self, topic: &str, key: &str, payload: &[u8]) -> Result<()> {
        self.send(topic, key, payload, OwnedHeaders::new()).await
    }

    async fn send(&self, topic: &str, key: &str, payload: &[u8], headers: OwnedHeaders) -> Result<()> {
        let name = self.name(topic);
        let record = FutureRecord::to(&name).key(key).payload(payload).headers(headers);
        self.producer.send(record, self.send_timeout).await.map(|_| ()).map_err(|(e, _)| kafka_err("produce")(e))
    }
}

#[async_trait]
impl EventPublisher for KafkaBus {
    async fn publish(&self, batch: &[OutboxRecord]) -> Result<()> {
        // Every message is queued at once (librdkafka copies it); the idempotent producer keeps
        // each partition's order, and the batch counts as acknowledged only when every message is.
        let mut pending = Vec::with_capacity(batch.len());
        for r in batch {
            let payload = serde_json::to_vec(&r.event)?;
            let version = r.event.version.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header { key: "type", value: Some(r.event.event_type.as_str()) })
                .insert(Header { key: "version", value: Some(version.as_str()) });
            let name = self.name(&r.topic);
            let record = FutureRecord::to(&name).key(&r.key).payload(&payload).headers(headers);
            let delivery = self.producer.send_result(record).map_err(|(e, _)| kafka_err("produce")(e))?;
            pending.push(delivery);
        }
        for d in pending {
            match tokio::time::timeout(self.send_timeout, d).await {
                Err(_) => return Err(Error::internal("Kafka produce: no acknowledgement in time")),
                Ok(Err(_)) => return Err(Error::internal("Kafka produce: the producer went away")),
                Ok(Ok(Err((e, _)))) => return Err(kafka_err("produce")(e)),
                Ok(Ok(Ok(_))) => {}
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventSource for KafkaBus {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    async fn subscribe(&self, group: &str, member: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", self.name(group))
            .set("client.id", member)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", self.fetch_wait.as_millis().to_string())
            .create()
            .map_err(kafka_err("consumer"))?;
        let names: Vec<String> = topics.iter().map(|t| self.name(t)).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        consumer.subscribe(&refs).map_err(kafka_err("subscribe"))?;
        Ok(Box::new(KafkaSubscription { consumer: Some(Arc::new(consumer)), prefix: self.prefix.clone() }))
    }

    async fn dead_letter(&self, d: &DeadLetter) -> Result<()> {
        let headers = OwnedHeaders::new()
            .insert(Header { key: "error", value: Some(d.error.as_str()) })
            .insert(Header { key: "consumer", value: Some(d.consumer.as_str()) });
        self.send(&d.topic, &d.key, d.payload.as_bytes(), headers).await
    }
}

struct KafkaSubscription {
    consumer: Option<Arc<StreamConsumer>>,
    prefix: String,
}

impl KafkaSubscription {
    fn consumer(&self) -> Result<&Arc<StreamConsumer>> {
        self.consumer.as_ref().ok_or_else(|| Error::internal("Kafka consumer already closed"))
    }
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        // librdkafka's close blocks while it leaves the group: it runs on its own thread, and
        // this waits for it (outside the async scheduler) so a process never exits mid-close.
        if let Some(c) = self.consumer.take() {
            let closing = std::thread::spawn(move || drop(c));
            match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                    tokio::task::block_in_place(|| {
                        let _ = closing.join();
                    });
                }
                // A single-threaded runtime must not block: the close finishes in the background.
                Ok(_) => {}
                Err(_) => {
                    let _ = closing.join();
                }
            }
        }
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let consumer = self.consumer()?.clone();
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while out.len() < max.max(1) {
            // After the first message, only what is already there.
            let until = if out.is_empty() { deadline } else { tokio::time::Instant::now() + Duration::from_millis(5) };
            let m = match tokio::time::timeout_at(until, consumer.recv()).await {
                Err(_) => break,
                Ok(m) => m.map_err(kafka_err("receive"))?,
            };
            let topic = m.topic().strip_prefix(&self.prefix).unwrap_or(m.topic()).to_owned();
            out.push(Delivery {
                topic,
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default(),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                position: Position::Offset {
                    topic: m.topic().to_owned(),
                    partition: m.partition(),
                    offset: m.offset(),
                },
            });
        }
        Ok(out)
    }

    async fn ack(&mut self, batch: &[Delivery]) -> Result<()> {
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for d in batch {
            if let Position::Offset { topic, partition, offset } = &d.position {
                let e = next.entry((topic.clone(), *partition)).or_insert(0);
                *e = (*e).max(offset + 1);
            }
        }
        if next.is_empty() {
            return Ok(());
        }
        let consumer = self.consumer()?.clone();
        tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for ((t, p), o) in next {
                tpl.add_partition_offset(&t, p, Offset::Offset(o)).map_err(kafka_err("offsets"))?;
            }
            consumer.commit(&tpl, CommitMode::Sync).map_err(kafka_err("commit"))
        })
        .await
        .map_err(Error::internal)?
    }

    async fn lag(&mut self) -> Result<u64> {
        let consumer = self.consumer()?.clone();
        tokio::task::spawn_blocking(move || {
            let assigned = consumer.assignment().map_err(kafka_err("assignment"))?;
            let committed =
                consumer.committed_offsets(assigned, Duration::from_secs(5)).map_err(kafka_err("committed"))?;
            let mut lag = 0u64;
            for e in committed.elements() {
                let (_, high) = consumer
                    .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(5))
                    .map_err(kafka_err("watermarks"))?;
                let done = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                };
                lag = lag.saturating_add(u64::try_from(high - done).unwrap_or(0));
            }
            // A list from `committed_offsets` must be gone before the consumer is dropped.
            drop(committed);
            Ok(lag)
        })
        .await
        .map_err(Error::internal)?
    }
}
