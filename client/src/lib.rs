//! kingest's asynchronous Kafka client (tokio, rustls) over [`kingest_protocol`].
//!
//! What is here so far:
//! - [`net`]: one pipelined, cancellation-safe connection per broker, over TCP or TLS, with
//!   ApiVersions negotiation, SASL authentication and re-authentication, request timeouts and
//!   broker throttling;
//! - [`sasl`]: the SASL mechanisms (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER) as pure state
//!   machines with no I/O, the KIP-368 re-authentication deadline, and a SCRAM server side
//!   ([`sasl::scram::server`]) for in-memory test brokers;
//! - [`partitioner`]: Java-compatible partitioning (murmur2 for keyed records, sticky for
//!   keyless ones, or a user function);
//! - [`client`] and [`cluster`]: the [`Client`], its metadata snapshots and connection pool;
//! - [`producer`]: the [`Producer`] (batching, compression, acks, retries, idempotence,
//!   backpressure);
//! - [`admin`]: topics, offsets, cluster description, consumer groups and lag;
//! - [`consumer`]: the [`PartitionConsumer`] (explicitly assigned partitions, fetch sessions,
//!   prefetch, zero-copy batches);
//! - [`error`]: the client's error type.

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
pub use producer::{Acks, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata};
pub use kingest_protocol as protocol;
