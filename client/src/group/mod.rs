//! The consumer side of Kafka's group protocols: the classic one (below) and KIP-848's.
//!
//! A consumer group rebalance goes JoinGroup → (the leader assigns) → SyncGroup. The broker treats
//! the member metadata and assignments exchanged there as opaque bytes whose meaning is fixed by
//! the "consumer" protocol type. This module holds:
//!
//! - [`protocol`]: those bytes, the `ConsumerProtocolSubscription` a member sends in JoinGroup
//!   (once per assignor it offers) and the `ConsumerProtocolAssignment` the leader hands back in
//!   SyncGroup, read and written exactly as the Java client does, so that kingest consumers and
//!   Java consumers can share a group;
//! - [`assignor`]: the partition assignors (`range`, `roundrobin`, `sticky`,
//!   `cooperative-sticky`) that the elected leader runs, with the same results as the Java
//!   client's for the same input, plus choosing the assignor the coordinator selected;
//! - [`consumer`]: the [`consumer::GroupConsumer`], built on the member's side of the protocol
//!   on the wire: the classic one (join, sync, heartbeat, leave, offsets; the private `member`
//!   module) or, when configured with [`consumer::GroupProtocol::Consumer`], the consumer group
//!   protocol (KIP-848, ConsumerGroupHeartbeat, where the broker assigns; the private `kip848`
//!   module).

pub mod assignor;
pub mod consumer;
pub(crate) mod kip848;
pub(crate) mod member;
/// The consumer protocol's bytes, from the protocol crate (where a broker can read them too).
pub use kingest_protocol::consumer_protocol as protocol;
