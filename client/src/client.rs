//! [`Client`]: the entry point. It holds the cluster metadata and the connection pool, and is
//! what producers, consumers and the admin API are made from.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use kingest_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kingest_protocol::kafka_protocol::messages::{MetadataRequest, TopicName};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::{BrokerError, ErrorCode};

use crate::cluster::{ClusterMetadata, ConnectionPool, PartitionInfo};
use crate::error::{ClientError, Result};
use crate::net::{Connection, ConnectionConfig};

/// Client settings. Names follow the Java client's where there is one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// host:port of one or more brokers to start from (`bootstrap.servers`).
    pub bootstrap_servers: Vec<String>,
    /// Per-connection settings: client id, timeouts, TLS, SASL.
    pub connection: ConnectionConfig,
    /// Refresh metadata at least this often (`metadata.max.age.ms`, 5 minutes).
    pub metadata_max_age: Duration,
    /// First reconnect wait (`reconnect.backoff.ms`, 50 ms).
    pub reconnect_backoff: Duration,
    /// Longest reconnect wait (`reconnect.backoff.max.ms`, 1 s).
    pub reconnect_backoff_max: Duration,
    /// Wait between retries of a failed request (`retry.backoff.ms`, 100 ms).
    pub retry_backoff: Duration,
}

impl ClientConfig {
    /// Defaults with these bootstrap servers (comma-separated, as Kafka tools take them).
    pub fn new(bootstrap_servers: &str) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            connection: ConnectionConfig::default(),
            metadata_max_age: Duration::from_secs(300),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            retry_backoff: Duration::from_millis(100),
        }
    }
}

struct Inner {
    config: ClientConfig,
    pool: ConnectionPool,
    metadata: RwLock<Arc<ClusterMetadata>>,
    /// Topics the client's users care about; refreshes ask for these.
    interest: std::sync::Mutex<BTreeSet<String>>,
    /// One refresh at a time; callers that wait for it share its result.
    refreshing: tokio::sync::Mutex<Instant>,
}

/// A connection to a Kafka cluster: metadata and pooled broker connections, shared by every
/// producer, consumer and admin call made from it. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap", &self.inner.config.bootstrap_servers)
            .finish()
    }
}

impl Client {
    /// Connects to the cluster: reaches a bootstrap server and learns the brokers.
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        if config.bootstrap_servers.is_empty() {
            return Err(ClientError::Config("no bootstrap servers given".to_owned()));
        }
        let pool = ConnectionPool::new(
            Arc::new(config.connection.clone()),
            (config.reconnect_backoff, config.reconnect_backoff_max),
        );
        let client = Client {
            inner: Arc::new(Inner {
                config,
                pool,
                metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
                interest: std::sync::Mutex::new(BTreeSet::new()),
                refreshing: tokio::sync::Mutex::new(Instant::now()),
            }),
        };
        client.fetch_metadata(Some(Vec::new())).await?;
        spawn_periodic_refresh(Arc::downgrade(&client.inner));
        Ok(client)
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The latest metadata snapshot.
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds topics to those every refresh asks about.
    pub fn add_interest<S: AsRef<str>>(&self, topics: &[S]) {
        let mut set = self
            .inner
            .interest
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        set.extend(topics.iter().map(|t| t.as_ref().to_owned()));
    }

    /// Refreshes metadata for `topics` (and every topic of interest). Concurrent callers share
    /// one request: a caller that waited for another's refresh started after it asked does not
    /// send another.
    pub async fn refresh_metadata<S: AsRef<str>>(
        &self,
        topics: &[S],
    ) -> Result<Arc<ClusterMetadata>> {
        self.add_interest(topics);
        let asked = Instant::now();
        let last = self.inner.refreshing.lock().await;
        if *last > asked {
            let snapshot = self.metadata();
            if topics
                .iter()
                .all(|t| snapshot.topics.contains_key(t.as_ref()))
            {
                return Ok(snapshot);
            }
        }
        drop(last);
        let wanted: Vec<String> = self
            .inner
            .interest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        self.fetch_metadata(Some(wanted)).await
    }

    /// Refreshes metadata for every topic in the cluster (for listing and regex subscriptions).
    pub async fn refresh_all_topics(&self) -> Result<Arc<ClusterMetadata>> {
        self.fetch_metadata(None).await
    }

    /// Metadata for `topics` (`None`: all topics), swapped in as the new snapshot.
    async fn fetch_metadata(&self, topics: Option<Vec<String>>) -> Result<Arc<ClusterMetadata>> {
        let mut last = self.inner.refreshing.lock().await;
        let request = MetadataRequest::default()
            .with_topics(topics.as_ref().map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let conn = self.any_connection().await?;
        let response = conn.send(&request).await?;
        let code = ErrorCode::from_code(response.error_code);
        if !code.is_ok() {
            return Err(ClientError::Broker {
                broker: conn.broker().clone(),
                api: "Metadata",
                source: BrokerError::new(code, None),
            });
        }
        let fresh = {
            let mut guard = self
                .inner
                .metadata
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let fresh = Arc::new(if topics.is_none() {
                ClusterMetadata::from_response(&response)
            } else {
                guard.merged(&response)
            });
            *guard = fresh.clone();
            fresh
        };
        *last = Instant::now();
        Ok(fresh)
    }

    /// The connection to broker `id` (known from metadata).
    pub async fn connection(&self, id: i32) -> Result<Connection> {
        let addr = match self.metadata().brokers.get(&id) {
            Some(b) => b.addr(),
            None => {
                self.fetch_metadata(Some(Vec::new())).await?;
                self.metadata()
                    .brokers
                    .get(&id)
                    .map(|b| b.addr())
                    .ok_or_else(|| {
                        ClientError::Config(format!("broker {id} is not in the cluster's metadata"))
                    })?
            }
        };
        self.inner.pool.get(id, &addr).await
    }

    /// The connection to broker `id` at a known address (a coordinator's, for example).
    pub async fn connection_to(&self, id: i32, addr: &str) -> Result<Connection> {
        self.inner.pool.get(id, addr).await
    }

    /// A connection to any reachable broker: known brokers first (in random order, to spread
    /// load), then the bootstrap servers.
    pub async fn any_connection(&self) -> Result<Connection> {
        let snapshot = self.metadata();
        let mut candidates: Vec<(i32, String)> = snapshot
            .brokers
            .values()
            .map(|b| (b.id, b.addr()))
            .collect();
        let shift = if candidates.is_empty() {
            0
        } else {
            rand::random::<u32>() as usize % candidates.len()
        };
        candidates.rotate_left(shift);
        for (i, addr) in self.inner.config.bootstrap_servers.iter().enumerate() {
            candidates.push((-1 - i as i32, addr.clone()));
        }
        let mut last = None;
        for (id, addr) in &candidates {
            match self.inner.pool.get(*id, addr).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(ClientError::NoBrokerReachable {
            tried: candidates
                .iter()
                .map(|(_, a)| a.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            last: Box::new(last.unwrap_or(ClientError::Closed)),
        })
    }

    /// The partition's metadata and a connection to its leader, refreshing metadata once if the
    /// partition or its leader is unknown.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<(PartitionInfo, Connection)> {
        for attempt in 0..2 {
            let snapshot = if attempt == 0 {
                self.metadata()
            } else {
                self.refresh_metadata(&[topic]).await?
            };
            match snapshot.partition(topic, partition) {
                Some(p) if p.leader >= 0 => {
                    let p = p.clone();
                    let conn = self.connection(p.leader).await?;
                    return Ok((p, conn));
                }
                Some(_) if attempt == 1 => {
                    return Err(ClientError::NoLeader {
                        topic: topic.to_owned(),
                        partition,
                    });
                }
                None if attempt == 1 => {
                    return Err(ClientError::UnknownPartition {
                        topic: topic.to_owned(),
                        partition,
                    });
                }
                _ => {}
            }
        }
        Err(ClientError::UnknownPartition {
            topic: topic.to_owned(),
            partition,
        })
    }

    /// The number of partitions of `topic`, refreshing metadata if it is unknown.
    pub async fn partition_count(&self, topic: &str) -> Result<usize> {
        if let Some(n) = self.metadata().partition_count(topic) {
            return Ok(n);
        }
        let snapshot = self.refresh_metadata(&[topic]).await?;
        match snapshot.topics.get(topic) {
            Some(t) if t.error.is_ok() => Ok(t.partitions.len()),
            Some(t) => Err(ClientError::Topic {
                broker: crate::error::BrokerRef {
                    id: snapshot.controller,
                    addr: String::new(),
                },
                api: "Metadata",
                topic: topic.to_owned(),
                source: BrokerError::new(t.error, None),
            }),
            None => Err(ClientError::UnknownPartition {
                topic: topic.to_owned(),
                partition: -1,
            }),
        }
    }

    /// Closes every connection. Producers and consumers made from this client stop working.
    pub async fn close(&self) {
        self.inner.pool.close_all().await;
    }
}

fn spawn_periodic_refresh(inner: Weak<Inner>) {
    tokio::spawn(async move {
        loop {
            let Some(age) = inner.upgrade().map(|i| i.config.metadata_max_age) else {
                return;
            };
            tokio::time::sleep(age).await;
            let Some(strong) = inner.upgrade() else {
                return;
            };
            let client = Client { inner: strong };
            let topics: Vec<String> = client
                .inner
                .interest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect();
            if let Err(e) = client.fetch_metadata(Some(topics)).await {
                tracing::warn!(error = %e, "periodic metadata refresh failed");
            }
        }
    });
}
