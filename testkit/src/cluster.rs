//! Starting, inspecting and disturbing a cluster.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kingest_protocol::ErrorCode;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::server::{self, BrokerServer};
use crate::state::{BrokerEntry, ClusterState};
use crate::{Faults, SaslConfig, Shared};

/// PEM files for a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// How many brokers (ids 1..=n).
    pub brokers: usize,
    /// Fixed ports, one per broker (`None`: free ports).
    pub ports: Option<Vec<u16>>,
    /// TLS on every listener.
    pub tls: Option<TlsFiles>,
    /// SASL required on every listener.
    pub sasl: Option<SaslConfig>,
    /// Create topics named in Metadata requests that allow it.
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics (and of CreateTopics asking for the default).
    pub default_partitions: i32,
    /// How long the first rebalance of an empty group waits for more members (Kafka's
    /// `group.initial.rebalance.delay.ms`).
    pub group_initial_rebalance_delay: Duration,
    /// Bytes kept per partition before the oldest batches are dropped.
    pub retention_bytes: usize,
    /// How long a KIP-848 consumer group member may go without a heartbeat before it is
    /// removed (Kafka's `group.consumer.session.timeout.ms`).
    pub consumer_group_session_timeout: Duration,
    /// The heartbeat interval KIP-848 members are told to keep (Kafka's
    /// `group.consumer.heartbeat.interval.ms`).
    pub consumer_group_heartbeat_interval: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            brokers: 1,
            ports: None,
            tls: None,
            sasl: None,
            auto_create_topics: false,
            default_partitions: 1,
            group_initial_rebalance_delay: Duration::ZERO,
            retention_bytes: 1 << 30,
            consumer_group_session_timeout: Duration::from_secs(45),
            consumer_group_heartbeat_interval: Duration::from_secs(5),
        }
    }
}

/// A running in-memory cluster; stopped when dropped.
pub struct Cluster {
    shared: Arc<Shared>,
    servers: Mutex<BTreeMap<i32, BrokerServer>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap", &self.bootstrap())
            .finish()
    }
}

fn tls_acceptor(files: &TlsFiles) -> io::Result<tokio_rustls::TlsAcceptor> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad("TLS certificate", &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad("TLS key", &e))?;
    let provider = Arc::new(kingest_client::crypto_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("TLS certificate and key", &e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl Cluster {
    /// Starts the brokers.
    pub async fn start(config: ClusterConfig) -> io::Result<Cluster> {
        let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
        let mut listeners = Vec::new();
        for i in 0..config.brokers.max(1) {
            let port = config
                .ports
                .as_ref()
                .and_then(|p| p.get(i).copied())
                .unwrap_or(0);
            listeners.push(TcpListener::bind(("127.0.0.1", port)).await?);
        }
        let mut state = ClusterState::new(
            format!("kingest-testkit-{:08x}", rand::random::<u32>()),
            config.retention_bytes,
        );
        for (i, l) in listeners.iter().enumerate() {
            let id = i as i32 + 1;
            state.brokers.insert(
                id,
                BrokerEntry {
                    id,
                    host: "127.0.0.1".to_owned(),
                    port: l.local_addr()?.port(),
                    up: true,
                },
            );
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            appended: tokio::sync::Notify::new(),
            sessions: Mutex::new(Default::default()),
            faults: Faults::default(),
            sasl_logins: Default::default(),
            sasl: config.sasl.clone(),
            tls,
            config,
        });
        let mut servers = BTreeMap::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let id = i as i32 + 1;
            servers.insert(id, server::serve(id, l, shared.clone()));
        }
        crate::handlers::groups::spawn_ticker(Arc::downgrade(&shared));
        Ok(Cluster {
            shared,
            servers: Mutex::new(servers),
        })
    }

    /// `host:port` of every broker that is up, comma-separated (`bootstrap.servers`).
    pub fn bootstrap(&self) -> String {
        let state = self.shared.lock();
        state
            .brokers
            .values()
            .filter(|b| b.up)
            .map(|b| format!("{}:{}", b.host, b.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The broker ids.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.shared.lock().brokers.keys().copied().collect()
    }

    /// `host:port` of one broker.
    pub fn addr(&self, broker: i32) -> Option<String> {
        self.shared
            .lock()
            .brokers
            .get(&broker)
            .map(|b| format!("{}:{}", b.host, b.port))
    }

    /// Creates a topic.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), ErrorCode> {
        self.shared
            .lock()
            .create_topic(name, partitions, BTreeMap::new())
    }

    /// The fault rules.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Moves a partition's leadership to `broker`, bumping the leader epoch, as a controller
    /// does on failover: clients on the old leader get NOT_LEADER_OR_FOLLOWER.
    pub fn move_leader(&self, topic: &str, partition: i32, broker: i32) -> Result<(), ErrorCode> {
        let mut state = self.shared.lock();
        if !state.brokers.contains_key(&broker) {
            return Err(ErrorCode::BrokerNotAvailable);
        }
        let p = state
            .partition_mut(topic, partition)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if p.leader != broker {
            p.leader = broker;
            p.leader_epoch += 1;
        }
        drop(state);
        self.shared.appended.notify_waiters();
        Ok(())
    }

    /// The leader of a partition.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.shared
            .lock()
            .partition(topic, partition)
            .map(|p| p.leader)
    }

    /// Stops a broker: closes its listener and connections. Its partitions move to the other
    /// live brokers (as if replicated), or stay leaderless when none is left.
    pub async fn stop_broker(&self, broker: i32) {
        let server = self
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&broker);
        if let Some(s) = server {
            let _ = s.stop.send(true);
            let _ = s.task.await;
        }
        let mut state = self.shared.lock();
        if let Some(b) = state.brokers.get_mut(&broker) {
            b.up = false;
        }
        let live = state.live_brokers();
        let mut i = 0usize;
        for topic in state.topics.values_mut() {
            for p in &mut topic.partitions {
                if p.leader == broker && !live.is_empty() {
                    p.leader = live[i % live.len()];
                    p.leader_epoch += 1;
                    i += 1;
                }
            }
        }
        drop(state);
        self.shared.appended.notify_waiters();
    }

    /// Starts a stopped broker again on its port (its data never went away).
    pub async fn start_broker(&self, broker: i32) -> io::Result<()> {
        let port = self
            .shared
            .lock()
            .brokers
            .get(&broker)
            .map(|b| b.port)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no broker {broker}"))
            })?;
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        if let Some(b) = self.shared.lock().brokers.get_mut(&broker) {
            b.up = true;
        }
        let server = server::serve(broker, listener, self.shared.clone());
        self.servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(broker, server);
        Ok(())
    }

    /// How many SASL authentications succeeded (re-authentications included).
    pub fn sasl_logins(&self) -> usize {
        self.shared
            .sasl_logins
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A config a topic was created with.
    pub fn topic_config(&self, topic: &str, key: &str) -> Option<String> {
        self.shared
            .lock()
            .topics
            .get(topic)?
            .configs
            .get(key)
            .cloned()
    }

    /// The high watermark of a partition.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.shared
            .lock()
            .partition(topic, partition)
            .map(|p| p.log.high_watermark())
    }

    /// The last stable offset of a partition.
    pub fn last_stable_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.shared
            .lock()
            .partition(topic, partition)
            .map(|p| p.log.last_stable_offset())
    }

    /// The stored batches of a partition, as bytes (for tests that inspect what producers
    /// wrote).
    pub fn batches(&self, topic: &str, partition: i32) -> Vec<bytes::Bytes> {
        self.shared
            .lock()
            .partition(topic, partition)
            .map(|p| p.log.batches.iter().map(|b| b.bytes.clone()).collect())
            .unwrap_or_default()
    }

    /// A group's committed offset for a partition.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.shared
            .lock()
            .groups
            .get(group)?
            .offsets
            .get(&(topic.to_owned(), partition))
            .map(|(o, _)| *o)
    }

    /// The metadata a group committed with its offset for a partition.
    pub fn committed_metadata(&self, group: &str, topic: &str, partition: i32) -> Option<String> {
        self.shared
            .lock()
            .groups
            .get(group)?
            .offsets
            .get(&(topic.to_owned(), partition))
            .and_then(|(_, m)| m.clone())
    }

    /// The static instance id of a group's leader, if it has one.
    pub fn group_leader_instance(&self, group: &str) -> Option<String> {
        let state = self.shared.lock();
        let g = state.groups.get(group)?;
        g.members.get(g.leader.as_ref()?)?.instance_id.clone()
    }

    /// Whether a group is a KIP-848 `consumer` group or a `classic` one (ListGroups' type).
    pub fn group_type(&self, group: &str) -> Option<&'static str> {
        let state = self.shared.lock();
        let g = state.groups.get(group)?;
        Some(if g.modern.is_some() {
            "consumer"
        } else {
            "classic"
        })
    }

    /// A group's state name, generation (a KIP-848 group's epoch) and member count.
    pub fn group_state(&self, group: &str) -> Option<(String, i32, usize)> {
        let state = self.shared.lock();
        let g = state.groups.get(group)?;
        if let Some(cg) = &g.modern {
            return Some((cg.state_name().to_owned(), cg.epoch, cg.members.len()));
        }
        Some((g.phase.name().to_owned(), g.generation, g.members.len()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, s) in std::mem::take(&mut *self.servers.lock().unwrap_or_else(|e| e.into_inner())) {
            let _ = s.stop.send(true);
            s.task.abort();
        }
    }
}
