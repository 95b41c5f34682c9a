//! kingest's asynchronous Kafka client (tokio, rustls) over [`kingest_protocol`].
//!
//! What it holds:
//! - [`net`]: one pipelined, cancellation-safe connection per broker, over TCP or TLS, with
//!   ApiVersions negotiation, SASL authentication and re-authentication, request timeouts and
//!   broker throttling;
//! - [`sasl`]: the SASL mechanisms (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER) as pure state
//!   machines with no I/O, and the KIP-368 re-authentication deadline;
//! - [`partitioner`]: Java-compatible partitioning (murmur2 for keyed records, sticky for
//!   keyless ones, or a user function);
//! - [`client`] and [`cluster`]: the [`Client`], its metadata snapshots and connection pool;
//! - [`producer`]: the [`Producer`] (batching, compression, acks, retries, idempotence,
//!   backpressure);
//! - [`admin`]: topics, offsets, cluster description, consumer groups and lag;
//! - [`consumer`]: the [`PartitionConsumer`] (explicitly assigned partitions, fetch sessions,
//!   prefetch, zero-copy batches);
//! - [`group`]: consumer groups (classic protocol): the Java-compatible assignors, the
//!   member protocol and the [`group::consumer::GroupConsumer`];
//! - [`error`]: the client's error type.
//!
//! ```no_run
//! use kingest_client::consumer::{ConsumerConfig, PartitionConsumer, StartAt};
//! use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
//! use kingest_client::{Client, ClientConfig};
//!
//! # async fn demo() -> kingest_client::Result<()> {
//! let client = Client::connect(ClientConfig::new("localhost:9092")).await?;
//!
//! // Produce: murmur2 partitioning on the key, idempotent, lz4 if configured.
//! let producer = Producer::new(client.clone(), ProducerConfig::default())?;
//! let delivery = producer.send(ProducerRecord::new("events", "hello").with_key("k")).await?;
//! let meta = delivery.await?;
//!
//! // Consume that partition from where the record landed: zero-copy record views.
//! let mut consumer = PartitionConsumer::new(client, ConsumerConfig::default())?;
//! consumer.assign(&[("events", meta.partition, StartAt::Offset(meta.offset))]).await?;
//! for record in consumer.poll().await?.records() {
//!     println!("{} {:?}", record.record.offset, record.record.value);
//! }
//! # Ok(()) }
//! ```

pub mod admin;
pub mod client;
pub mod cluster;
pub mod consumer;
pub mod error;
pub mod group;
pub mod net;
pub mod partitioner;
pub mod producer;
pub mod sasl;

pub use client::{Client, ClientConfig};
pub use consumer::{ConsumerConfig, Fetched, OffsetReset, PartitionConsumer, StartAt};
pub use error::{BrokerRef, ClientError, Result};
pub use kingest_protocol as protocol;
pub use producer::{
    Acks, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
