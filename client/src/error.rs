//! The client's error type.
//!
//! Every error says what failed and where: which broker (id and address), which API, and for
//! partition-level errors which topic and partition, so that a log line or a CLI message is
//! enough to act on. `is_retriable` tells the retry loops (and callers) whether trying again can
//! help.

use std::io;
use std::time::Duration;

use kingest_protocol::{BrokerError, ProtocolError};
use thiserror::Error;

/// Where a request was going: a broker's id (-1 for a bootstrap address not yet known by id) and
/// its address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerRef {
    /// The broker id, or -1 for a bootstrap server.
    pub id: i32,
    /// host:port.
    pub addr: String,
}

impl std::fmt::Display for BrokerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.id < 0 {
            write!(f, "bootstrap broker {}", self.addr)
        } else {
            write!(f, "broker {} ({})", self.id, self.addr)
        }
    }
}

/// A client-side failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Could not open a TCP connection.
    #[error("cannot connect to {broker}: {source}")]
    Connect {
        /// The broker.
        broker: BrokerRef,
        /// The socket error.
        source: io::Error,
    },
    /// The TLS handshake failed (unknown CA, wrong host name, expired certificate...).
    #[error("TLS handshake with {broker} failed: {reason}")]
    Tls {
        /// The broker.
        broker: BrokerRef,
        /// What rustls said.
        reason: String,
    },
    /// A plaintext connection was answered with a TLS record: the broker's listener expects
    /// TLS (`SSL` or `SASL_SSL` in Kafka's terms). Set the client's TLS settings
    /// (`ConnectionConfig::tls`; `[source.tls]` in a kingest job).
    #[error("{broker} answered with TLS: set [source.tls] (the client's TLS settings) to connect to a TLS listener")]
    TlsRequired {
        /// The broker.
        broker: BrokerRef,
    },
    /// A plaintext connection was closed by the broker before it answered ApiVersions, the
    /// first request: what a TLS listener built on OpenSSL does to plaintext (others answer
    /// with a TLS alert: [`ClientError::TlsRequired`]). A likely reason, not a certain one.
    #[error("{broker} closed the connection without answering ApiVersions: it may expect TLS; set [source.tls] (the client's TLS settings)")]
    ClosedBeforeAnswer {
        /// The broker.
        broker: BrokerRef,
    },
    /// A connection without SASL settings was closed by the broker after ApiVersions, before
    /// answering anything else: what a listener that requires SASL authentication does to an
    /// unauthenticated request. Kafka does not say so in the protocol, so this is a likely
    /// reason, not a certain one; the connection is gone either way.
    #[error("{broker} closed the connection after ApiVersions, before answering a request: it may require authentication; set [source.sasl] (the client's SASL settings)")]
    ClosedUnauthenticated {
        /// The broker.
        broker: BrokerRef,
    },
    /// The TLS settings themselves are unusable (unreadable CA file, bad key...).
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    /// SASL authentication was refused or failed.
    #[error("SASL {mechanism} authentication with {broker} failed: {reason}")]
    Auth {
        /// The broker.
        broker: BrokerRef,
        /// The mechanism.
        mechanism: String,
        /// What went wrong, with the broker's message when it sent one.
        reason: String,
    },
    /// The connection broke (reset, closed by the broker, or an I/O error) while a request was
    /// outstanding.
    #[error("connection to {broker} lost: {reason}")]
    Disconnected {
        /// The broker.
        broker: BrokerRef,
        /// What happened.
        reason: String,
    },
    /// No response within the request timeout; the connection is closed, as the Java client does,
    /// because its state is unknown.
    #[error("{api} request to {broker} timed out after {timeout:?}")]
    Timeout {
        /// The broker.
        broker: BrokerRef,
        /// The API.
        api: &'static str,
        /// The timeout.
        timeout: Duration,
    },
    /// The bytes could not be encoded or decoded.
    #[error("{api} exchange with {broker}: {source}")]
    Protocol {
        /// The broker.
        broker: BrokerRef,
        /// The API.
        api: &'static str,
        /// The codec error.
        source: ProtocolError,
    },
    /// The broker answered with an error code for the whole request.
    #[error("{api} request to {broker}: {source}")]
    Broker {
        /// The broker.
        broker: BrokerRef,
        /// The API.
        api: &'static str,
        /// The code and the broker's message.
        source: BrokerError,
    },
    /// The broker answered with an error code for one partition.
    #[error("{api} on {topic}-{partition} at {broker}: {source}")]
    Partition {
        /// The broker.
        broker: BrokerRef,
        /// The API.
        api: &'static str,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The code and the broker's message.
        source: BrokerError,
    },
    /// The broker answered with an error code for one topic.
    #[error("{api} on topic {topic} at {broker}: {source}")]
    Topic {
        /// The broker.
        broker: BrokerRef,
        /// The API.
        api: &'static str,
        /// The topic.
        topic: String,
        /// The code and the broker's message.
        source: BrokerError,
    },
    /// The topic or partition is not in the cluster's metadata.
    #[error("unknown topic or partition {topic}-{partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition (-1 when the topic itself is unknown).
        partition: i32,
    },
    /// A partition has no leader right now.
    #[error("{topic}-{partition} has no leader")]
    NoLeader {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// None of the bootstrap servers could be reached.
    #[error("no bootstrap server reachable ({tried}): {last}")]
    NoBrokerReachable {
        /// The servers tried.
        tried: String,
        /// The last error.
        last: Box<ClientError>,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A consumer's fetch position is outside the partition's log and its reset policy is
    /// `OffsetReset::Error` (Java's `OffsetOutOfRangeException`).
    #[error("fetch position {offset} is out of range for {topic}-{partition} (no reset policy)")]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The position the broker refused.
        offset: i64,
    },
    /// A record batch at the consumer's position is larger than the consumer may fetch
    /// (Java's `RecordTooLargeException`): raise `max_partition_fetch_bytes` to at least `size`.
    #[error("the record batch at offset {offset} of {topic}-{partition} needs {size} bytes, more than max_partition_fetch_bytes ({max}); raise max_partition_fetch_bytes")]
    FetchTooLarge {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The position the batch was fetched at.
        offset: i64,
        /// The bytes the whole batch needs.
        size: usize,
        /// The configured `max_partition_fetch_bytes`.
        max: usize,
    },
    /// A fetched record batch failed its checksum or could not be decoded. The consumer's
    /// position stays on it; seek past it (to `next_offset`, when known) to skip it.
    #[error("corrupt record batch at offset {offset} of {topic}-{partition}: {source}")]
    CorruptRecord {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The consumer's position: the first offset of the bad batch, or the position inside it.
        offset: i64,
        /// The offset after the bad batch, when its header could be read.
        next_offset: Option<i64>,
        /// What was wrong.
        source: kingest_protocol::record::RecordError,
    },
    /// The partition is not assigned to this consumer.
    #[error("{topic}-{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The client (or the producer or consumer) was closed.
    #[error("the client is closed")]
    Closed,
    /// A record is larger than a producer limit allows (`max_request_size` or `buffer_memory`);
    /// only that record fails.
    #[error("a record of {size} bytes for topic {topic} exceeds {setting} ({limit} bytes)")]
    RecordTooLarge {
        /// The topic.
        topic: String,
        /// The record's encoded size.
        size: usize,
        /// The limit.
        limit: usize,
        /// Which setting sets the limit.
        setting: &'static str,
    },
    /// `Producer::send` could not proceed within `max_block` (the buffer stayed full, or the
    /// topic's metadata did not arrive).
    #[error("send to topic {topic} blocked for {waited:?} (max_block): {reason}")]
    SendTimeout {
        /// The topic.
        topic: String,
        /// How long it waited.
        waited: Duration,
        /// What it was waiting for.
        reason: String,
    },
    /// A produced record was not acknowledged within `delivery_timeout`.
    #[error("record for {topic}-{partition} not delivered within {timeout:?}{}", last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    DeliveryTimeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The delivery timeout.
        timeout: Duration,
        /// The last retriable error seen, if any.
        last_error: Option<String>,
    },
    /// The idempotent producer cannot go on (it could not get a producer id, for example);
    /// every later send fails with this.
    #[error("the producer failed and cannot continue: {reason}")]
    ProducerFatal {
        /// Why.
        reason: String,
    },
    /// Another producer with the same `transactional_id` called `init_transactions` after this
    /// one (bumping the epoch), or the transaction coordinator aborted a transaction of this
    /// producer that ran past `transaction_timeout`. Only one producer per transactional id may
    /// write; this one refuses every further send and transaction call: close it.
    #[error("producer with transactional id {transactional_id:?} was fenced by a newer producer with the same id (or its transaction ran past transaction_timeout and was aborted): {reason}; close it")]
    ProducerFenced {
        /// The transactional id.
        transactional_id: String,
        /// What showed it (the API and error code).
        reason: String,
    },
    /// A transaction method was called in a state that does not allow it (`send` before
    /// `begin_transaction`, `begin_transaction` twice, any of them before `init_transactions`).
    #[error("transactional id {transactional_id:?}: cannot {operation}: the producer is {state}")]
    TransactionState {
        /// The transactional id.
        transactional_id: String,
        /// The method called.
        operation: &'static str,
        /// The state it was in.
        state: &'static str,
    },
    /// Part of the current transaction failed (a record was not delivered, the offsets were
    /// refused after a rebalance): it cannot commit; call `abort_transaction`, after which the
    /// producer can start a new transaction.
    #[error("transactional id {transactional_id:?}: cannot {operation}: the transaction failed ({reason}); abort it")]
    TransactionAbortable {
        /// The transactional id.
        transactional_id: String,
        /// The method called.
        operation: &'static str,
        /// The first failure of the transaction.
        reason: String,
    },
    /// A transaction request kept failing with retriable errors (the coordinator unavailable,
    /// concurrent transactions) until `max_block` passed. The call may be repeated.
    #[error("transactional id {transactional_id:?}: {operation} did not complete within max_block (last error: {last_error})")]
    TransactionTimeout {
        /// The transactional id.
        transactional_id: String,
        /// The method called.
        operation: &'static str,
        /// The last retriable error.
        last_error: String,
    },
    /// The group coordinator does not speak the consumer group protocol (KIP-848): it does not
    /// offer ConsumerGroupHeartbeat.
    #[error("group {group}: the coordinator {broker} does not support the consumer group protocol (KIP-848, ConsumerGroupHeartbeat); use group_protocol = classic")]
    GroupProtocolUnsupported {
        /// The coordinator.
        broker: BrokerRef,
        /// The group.
        group: String,
    },
    /// One error shared by every record of a failed producer batch, for error kinds that cannot
    /// be copied per record.
    #[error("{0}")]
    Shared(std::sync::Arc<ClientError>),
}

impl ClientError {
    /// Whether retrying (after a metadata refresh or a reconnect) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Disconnected { .. }
            | ClientError::ClosedBeforeAnswer { .. }
            | ClientError::ClosedUnauthenticated { .. }
            | ClientError::Timeout { .. }
            | ClientError::NoLeader { .. }
            | ClientError::NoBrokerReachable { .. } => true,
            ClientError::Broker { source, .. }
            | ClientError::Partition { source, .. }
            | ClientError::Topic { source, .. } => source.is_retriable(),
            _ => false,
        }
    }

    /// The broker error code, when the broker sent one.
    pub fn broker_error(&self) -> Option<&BrokerError> {
        match self {
            ClientError::Broker { source, .. }
            | ClientError::Partition { source, .. }
            | ClientError::Topic { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
