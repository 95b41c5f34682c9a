//! An in-memory Kafka cluster for tests, fault injection and benchmarks.
//!
//! [`Cluster::start`] runs one or more brokers in this process, each on its own loopback port,
//! sharing one cluster state. They speak the Kafka protocol well enough that librdkafka works
//! against them unmodified: produce (idempotent and transactional), fetch (sessions, long
//! polling, read_committed), list offsets, topics, consumer groups (the classic protocol with
//! static membership, and KIP-848's consumer protocol with the `uniform` and `range`
//! server-side assignors; topic regex subscriptions and the online migration between the two
//! are not modelled), transactions (commit/abort markers), SASL (PLAIN, SCRAM, OAUTHBEARER) and TLS.
//! [`Faults`] intercepts requests to inject errors, delays and broken connections; leadership
//! can be moved and brokers stopped and started.
//!
//! It is not durable and not a production broker: everything lives in memory and is gone when
//! the cluster is dropped.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let cluster = kingest_testkit::Cluster::start(kingest_testkit::ClusterConfig::default()).await?;
//! cluster.create_topic("events", 3).unwrap();
//! println!("bootstrap.servers={}", cluster.bootstrap());
//! # Ok(()) }
//! ```

mod cluster;
mod faults;
mod handlers;
mod server;
mod state;

use std::sync::{Mutex, MutexGuard};

pub use cluster::{Cluster, ClusterConfig, TlsFiles};
pub use faults::{FaultAction, FaultRule, Faults};
pub use kingest_protocol as protocol;
pub use server::sasl::SaslConfig;

/// What every broker task shares.
pub(crate) struct Shared {
    state: Mutex<state::ClusterState>,
    /// Woken whenever records are appended (long-polling fetches wait on it).
    pub appended: tokio::sync::Notify,
    pub sessions: Mutex<handlers::fetch::Sessions>,
    pub faults: Faults,
    /// Successful SASL authentications (re-authentications included).
    pub sasl_logins: std::sync::atomic::AtomicUsize,
    pub sasl: Option<SaslConfig>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub config: ClusterConfig,
}

impl Shared {
    /// Locks the cluster state (a poisoned lock is recovered: the state stays usable for the
    /// other connections even if one handler panicked).
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::ClusterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
