//! Turning a validated [`Config`] into the running parts: client settings, columns, decoders
//! and the sink.

use std::path::PathBuf;
use std::time::Duration;

use kingest_client::group::consumer::GroupConsumerConfig;
use kingest_client::sasl::{Mechanism, OAuthToken};
use kingest_client::ClientConfig;
use kingest_client::{CaSource, TlsConfig};

use super::EngineError;
use crate::config::{
    CatalogSection, ColumnConfig, Config, FormatConfig, RawAs, RetrySection, SinkConfig,
};
use crate::decode::{FormatSpec, RegistryClient, RegistryOptions, Tombstones};
use crate::schema::{parse_type, ColumnSpec, FormatKind, Source};
use crate::sink::parquet::{
    ParquetCompression, ParquetSink, ParquetSinkConfig, RollPolicy, StoreRetry,
};
use crate::sink::postgres::{PostgresMode, PostgresSink, PostgresSinkConfig, RejectPolicy};
use crate::sink::{
    AnySink, CatalogConfig, DeltaSink, DeltaSinkConfig, IcebergSink, IcebergSinkConfig, StdoutSink,
};
use arrow_schema::SchemaRef;

fn secret(
    value: &Option<String>,
    env: &Option<String>,
    field: &str,
) -> Result<Option<String>, EngineError> {
    match (value, env) {
        (Some(v), _) => Ok(Some(v.clone())),
        (None, Some(var)) => std::env::var(var).map(Some).map_err(|_| {
            EngineError::Setup(format!("{field}: environment variable {var} is not set"))
        }),
        (None, None) => Ok(None),
    }
}

/// The client settings of `[source]`.
pub fn client_config(config: &Config) -> Result<ClientConfig, EngineError> {
    let source = &config.source;
    let mut c = ClientConfig::new(&source.brokers.joined());
    if let Some(id) = &source.client_id {
        c.connection.client_id = id.clone();
    }
    if let Some(tls) = &source.tls {
        let mut settings = TlsConfig::default();
        settings.ca = tls
            .ca
            .as_ref()
            .map_or(CaSource::System, |f| CaSource::File(PathBuf::from(f)));
        settings.client_cert = match (&tls.cert, &tls.key) {
            (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
            (None, None) => None,
            _ => {
                return Err(EngineError::Setup(
                    "source.tls: cert and key go together".to_owned(),
                ))
            }
        };
        settings.server_name = tls.server_name.clone();
        settings.danger_accept_invalid_certs = tls.danger_accept_invalid_certs;
        let built = settings
            .build()
            .map_err(|e| EngineError::Setup(format!("source.tls: {e}")))?;
        c.connection.tls = Some((built, settings));
    }
    if let Some(sasl) = &source.sasl {
        let user = sasl.username.clone().unwrap_or_default();
        let password =
            secret(&sasl.password, &sasl.password_env, "source.sasl.password")?.unwrap_or_default();
        c.connection.sasl = Some(match sasl.mechanism.as_str() {
            "PLAIN" => Mechanism::plain(user, password),
            "SCRAM-SHA-256" => Mechanism::scram_sha256(user, password),
            "SCRAM-SHA-512" => Mechanism::scram_sha512(user, password),
            _ => {
                let token = secret(&sasl.token, &sasl.token_env, "source.sasl.token")?.ok_or_else(
                    || {
                        EngineError::Setup(
                            "source.sasl: OAUTHBEARER needs token or token_env".to_owned(),
                        )
                    },
                )?;
                Mechanism::oauthbearer_token(OAuthToken::new(token))
            }
        });
    }
    for (key, value) in &source.properties {
        let ms = || {
            value
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| {
                    EngineError::Setup(format!(
                        "source.properties.{key}: {value:?} is not a number of milliseconds"
                    ))
                })
        };
        match key.as_str() {
            "request.timeout.ms" => c.connection.request_timeout = ms()?,
            "socket.connection.setup.timeout.ms" => c.connection.connect_timeout = ms()?,
            "metadata.max.age.ms" => c.metadata_max_age = ms()?,
            "reconnect.backoff.ms" => c.reconnect_backoff = ms()?,
            "reconnect.backoff.max.ms" => c.reconnect_backoff_max = ms()?,
            "retry.backoff.ms" => c.retry_backoff = ms()?,
            // Group and fetch settings are applied by `group_properties`.
            _ => {}
        }
    }
    Ok(c)
}

/// `source.properties` keys the client applies ([`client_config`]).
const CLIENT_PROPERTIES: &[&str] = &[
    "request.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "metadata.max.age.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "retry.backoff.ms",
];

/// Applies the group and fetch settings of `source.properties`, by their Kafka names, to the
/// group consumer's settings (the connection's are applied by [`client_config`]); a key
/// neither knows is logged, not silently dropped. `group.instance.id` makes the process a
/// static member (KIP-345): restarted within the session timeout, it gets its partitions back
/// without a rebalance or waiting for its old session to expire.
pub fn group_properties(
    config: &Config,
    group: &mut GroupConsumerConfig,
) -> Result<(), EngineError> {
    let mut heartbeat_set = false;
    for (key, value) in &config.source.properties {
        let bad = |what: &str| {
            EngineError::Setup(format!("source.properties.{key}: {value:?} is not {what}"))
        };
        let ms = || {
            value
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| bad("a number of milliseconds"))
        };
        let count = || value.parse::<usize>().map_err(|_| bad("a number"));
        match key.as_str() {
            "group.instance.id" => group.instance_id = Some(value.clone()),
            // The broker-side assignor under `group_protocol = "consumer"`.
            "group.remote.assignor" => group.remote_assignor = Some(value.clone()),
            "session.timeout.ms" => group.session_timeout = ms()?,
            "heartbeat.interval.ms" => {
                group.heartbeat_interval = ms()?;
                heartbeat_set = true;
            }
            "max.poll.interval.ms" => group.rebalance_timeout = ms()?,
            "fetch.max.bytes" => group.consumer.fetch_max_bytes = count()?,
            "max.partition.fetch.bytes" => group.consumer.max_partition_fetch_bytes = count()?,
            "fetch.min.bytes" => group.consumer.fetch_min_bytes = count()?,
            "fetch.max.wait.ms" => group.consumer.fetch_max_wait = ms()?,
            "check.crcs" => {
                group.consumer.check_crcs = value.parse().map_err(|_| bad("true or false"))?
            }
            k if CLIENT_PROPERTIES.contains(&k) => {}
            other => tracing::warn!(
                property = other,
                "source.properties: unknown setting, ignored"
            ),
        }
    }
    // A short session needs a heartbeat well inside it (Kafka's advice: a third at most).
    if !heartbeat_set && group.heartbeat_interval * 3 > group.session_timeout {
        group.heartbeat_interval = group.session_timeout / 3;
    }
    Ok(())
}

/// The decoder's format for a `[format]` section.
pub fn format_spec(format: &FormatConfig) -> Result<FormatSpec, EngineError> {
    let spec = match format {
        FormatConfig::Json { .. } => FormatSpec::json(),
        FormatConfig::Csv {
            delimiter,
            quote,
            null,
            header,
            ..
        } => FormatSpec::Csv {
            delimiter: delimiter.as_bytes()[0],
            quote: quote.as_bytes()[0],
            null: null.clone(),
            names: header.clone(),
            tombstones: Tombstones::default(),
        },
        FormatConfig::Raw { r#as, .. } => FormatSpec::raw(*r#as == RawAs::String),
        FormatConfig::Avro {
            registry,
            registry_username,
            registry_password,
            registry_password_env,
            registry_ca,
            ..
        } => {
            let options = RegistryOptions {
                urls: registry.split(',').map(|u| u.trim().to_owned()).collect(),
                username: registry_username.clone(),
                password: secret(
                    registry_password,
                    registry_password_env,
                    "format.registry_password",
                )?,
                ca_file: registry_ca.as_ref().map(PathBuf::from),
                ..RegistryOptions::default()
            };
            FormatSpec::avro(
                RegistryClient::new(options)
                    .map_err(|e| EngineError::Setup(format!("format.registry: {e}")))?,
            )
        }
    };
    Ok(spec.with_tombstones(format.tombstones()))
}

fn kind(format: &FormatConfig) -> FormatKind {
    match format {
        FormatConfig::Json { .. } => FormatKind::Json,
        FormatConfig::Csv { .. } => FormatKind::Csv,
        FormatConfig::Avro { .. } => FormatKind::Avro,
        FormatConfig::Raw { .. } => FormatKind::Raw,
    }
}

/// The columns of `[[columns]]`, sources defaulting to the column's name.
pub fn columns(config: &Config) -> Result<Vec<ColumnSpec>, EngineError> {
    let value_kind = kind(&config.format);
    let key_kind = config.key_format.as_ref().map(kind);
    config
        .columns
        .iter()
        .enumerate()
        .map(|(i, c): (usize, &ColumnConfig)| {
            let field = |f: &str| format!("columns[{i}].{f}");
            let data_type = parse_type(&c.ty)
                .map_err(|e| EngineError::Setup(format!("{}: {e}", field("type"))))?;
            let text = c.source.clone().unwrap_or_else(|| match value_kind {
                FormatKind::Json => format!("/{}", c.name),
                _ => c.name.clone(),
            });
            let source = Source::parse_with_key(&text, value_kind, key_kind)
                .map_err(|e| EngineError::Setup(format!("{}: {e}", field("source"))))?;
            let mut spec = ColumnSpec::new(c.name.clone(), data_type, source);
            if !c.nullable {
                spec = spec.not_null();
            }
            Ok(spec)
        })
        .collect()
}

/// The Parquet sink's settings.
pub fn parquet_config(config: &Config) -> Result<Option<ParquetSinkConfig>, EngineError> {
    let SinkConfig::Parquet {
        path,
        compression,
        partition_by,
        storage,
        retry,
        ..
    } = &config.sink
    else {
        return Ok(None);
    };
    let mut c = ParquetSinkConfig::new(path.clone(), config.source.group.clone());
    c.compression = compression
        .parse::<ParquetCompression>()
        .map_err(|e| EngineError::Setup(format!("sink.compression: {e}")))?;
    c.partition_by = partition_by.clone();
    c.storage = storage.clone();
    c.retry = store_retry(retry);
    c.roll = RollPolicy {
        max_rows: config.flush.rows,
        max_bytes: config.flush.bytes.0,
        max_age: config.flush.age.0,
    };
    Ok(Some(c))
}

/// `[sink.retry]` as the object store layer takes it.
fn store_retry(retry: &RetrySection) -> StoreRetry {
    StoreRetry {
        max_retries: retry.max_retries,
        timeout: retry.timeout.0,
        backoff: retry.backoff.0,
        max_backoff: retry.max_backoff.0,
    }
}

/// The Delta sink's settings (`None` for other sinks).
pub fn delta_config(config: &Config) -> Result<Option<DeltaSinkConfig>, EngineError> {
    let SinkConfig::Delta {
        path,
        partition_by,
        compression,
        app_id,
        checkpoint_interval,
        table_name,
        storage,
        retry,
        ..
    } = &config.sink
    else {
        return Ok(None);
    };
    let mut c = DeltaSinkConfig::new(path.clone(), config.source.group.clone());
    c.compression = compression
        .parse::<ParquetCompression>()
        .map_err(|e| EngineError::Setup(format!("sink.compression: {e}")))?;
    c.partition_by = partition_by.clone();
    c.app_id = app_id.clone();
    c.table_name = table_name.clone();
    c.storage = storage.clone();
    c.retry = store_retry(retry);
    if let Some(n) = checkpoint_interval {
        c.checkpoint_interval = *n;
    }
    c.roll = RollPolicy {
        max_rows: config.flush.rows,
        max_bytes: config.flush.bytes.0,
        max_age: config.flush.age.0,
    };
    Ok(Some(c))
}

/// Opens the sink `[sink]` names, writing batches of `schema`. Every command that needs the
/// sink (`run`, `check`, `setup`) opens it here, so they agree on where offsets live.
pub async fn open_sink(config: &Config, schema: SchemaRef) -> Result<AnySink, EngineError> {
    // Each config function answers `Some` exactly for its own sink type.
    if let Some(c) = parquet_config(config)? {
        return Ok(AnySink::Parquet(Box::new(
            ParquetSink::open(c, schema).await?,
        )));
    }
    if let Some(c) = postgres_config(config) {
        return Ok(AnySink::Postgres(Box::new(
            PostgresSink::open(c, schema).await?,
        )));
    }
    if let Some(c) = delta_config(config)? {
        return Ok(AnySink::Delta(Box::new(DeltaSink::open(c, schema).await?)));
    }
    if let Some(c) = iceberg_config(config)? {
        return Ok(AnySink::Iceberg(Box::new(
            IcebergSink::open(c, schema).await?,
        )));
    }
    Ok(AnySink::Stdout(StdoutSink::new(schema)))
}

/// The PostgreSQL sink's settings (`None` for other sinks). Rows the database rejects follow
/// `errors.on_error`: `fail` stops the run, `skip` and `dead_letter` hand them to the engine.
pub fn postgres_config(config: &Config) -> Option<PostgresSinkConfig> {
    let SinkConfig::Postgres {
        url,
        table,
        mode,
        key,
        offsets_table,
    } = &config.sink
    else {
        return None;
    };
    let mut c = PostgresSinkConfig::new(url.clone(), table.clone(), config.source.group.clone());
    if mode == "upsert" {
        c.mode = PostgresMode::Upsert(key.clone());
    }
    if let Some(t) = offsets_table {
        c.offsets_table = t.clone();
    }
    c.on_reject = match config.errors.on_error {
        crate::config::OnError::Fail => RejectPolicy::Fail,
        _ => RejectPolicy::Report,
    };
    Some(c)
}

/// The Iceberg sink's settings (`None` for other sinks). Without a catalog, a SQLite catalog
/// `catalog.db` in the (local) warehouse directory.
pub fn iceberg_config(config: &Config) -> Result<Option<IcebergSinkConfig>, EngineError> {
    let SinkConfig::Iceberg {
        catalog,
        table,
        warehouse,
        partition_by,
        compression,
        properties,
        storage,
        retry,
        ..
    } = &config.sink
    else {
        return Ok(None);
    };
    let catalog = match catalog {
        Some(CatalogSection::Sql { uri, name }) => CatalogConfig::Sql {
            uri: uri.clone(),
            name: name.clone(),
        },
        Some(CatalogSection::Rest {
            uri,
            warehouse,
            token,
            token_env,
        }) => CatalogConfig::Rest {
            uri: uri.clone(),
            warehouse: warehouse.clone(),
            token: secret(token, token_env, "sink.catalog.token")?,
        },
        None => {
            let dir = warehouse
                .as_deref()
                .map(|w| w.strip_prefix("file://").unwrap_or(w))
                .ok_or_else(|| EngineError::Setup("sink.catalog: not given".into()))?;
            let abs = std::path::absolute(dir)
                .map_err(|e| EngineError::Setup(format!("sink.warehouse: {e}")))?;
            CatalogConfig::Sql {
                uri: format!("sqlite:///{}", abs.join("catalog.db").display()),
                name: "default".into(),
            }
        }
    };
    let mut c = IcebergSinkConfig::new(catalog, table.clone(), config.source.group.clone());
    c.warehouse = warehouse.clone();
    c.partition_by = partition_by.as_ref().map(|p| p.items()).unwrap_or_default();
    c.compression = compression
        .parse::<ParquetCompression>()
        .map_err(|e| EngineError::Setup(format!("sink.compression: {e}")))?;
    c.properties = properties.clone();
    c.storage = storage.clone();
    c.retry = store_retry(retry);
    c.roll = RollPolicy {
        max_rows: config.flush.rows,
        max_bytes: config.flush.bytes.0,
        max_age: config.flush.age.0,
    };
    Ok(Some(c))
}
