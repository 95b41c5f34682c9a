//! kingest's asynchronous Kafka client (tokio, rustls) over [`kingest_protocol`].
//!
//! # The public surface
//! What a program uses, and what later versions keep compiling. The settings structs
//! ([`ClientConfig`], [`ConnectionConfig`], [`TlsConfig`], [`ProducerConfig`],
//! [`ConsumerConfig`], [`group::consumer::GroupConsumerConfig`]) are `#[non_exhaustive]`: start
//! from `Default::default()` or `new` and set the fields you need, so a setting added later
//! breaks nobody.
//! - [`Client`] and [`ClientConfig`] (with [`TlsConfig`]/[`CaSource`] and [`sasl`]'s
//!   mechanisms and credentials): one pipelined, cancellation-safe connection per broker over
//!   TCP or TLS, ApiVersions negotiation, SASL authentication and KIP-368 re-authentication,
//!   request timeouts and broker throttling; metadata snapshots ([`ClusterMetadata`],
//!   [`TopicInfo`], [`PartitionInfo`], [`BrokerInfo`]);
//! - [`producer`]: the [`Producer`] (batching, compression, acks, retries, idempotence,
//!   transactions, backpressure), with [`partitioner`]'s Java-compatible partitioning;
//! - [`consumer`]: the [`PartitionConsumer`] (explicitly assigned partitions, fetch sessions,
//!   prefetch, read_committed, zero-copy batches);
//! - [`group`]: consumer groups: the [`group::consumer::GroupConsumer`] and the
//!   Java-compatible assignors;
//! - [`admin`]: topics, offsets, cluster description, consumer groups and lag;
//! - [`error`]: [`ClientError`], whose variants name the broker, API, topic and partition.
//!
//! One lower-level type is public on purpose: [`Connection`], a broker connection any Kafka
//! request can be sent on (as franz-go's `Client.Request`), for tools that need an API the
//! client does not wrap. The connection pool, backoff and stream internals are private.
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
mod cluster;
pub mod consumer;
pub mod error;
pub mod group;
mod net;
pub mod partitioner;
pub mod producer;
pub mod sasl;

pub use client::{Client, ClientConfig};
pub use cluster::{BrokerInfo, ClusterMetadata, PartitionInfo, TopicInfo};
pub use consumer::{ConsumerConfig, Fetched, OffsetReset, PartitionConsumer, StartAt};
pub use error::{BrokerRef, ClientError, Result};
pub use kingest_protocol as protocol;
pub use net::tls::{crypto_provider, CaSource, TlsConfig};
pub use net::{Connection, ConnectionConfig};
pub use producer::{
    Acks, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
