//! Connecting to PostgreSQL: the connection string (libpq's URL or `key=value` form, with its
//! TLS parameters), TLS over rustls, reconnecting with backoff, and telling errors that a
//! retry cures (the connection, a server restart) from row errors and configuration errors.
//!
//! TLS follows libpq's `sslmode`: `disable`; `allow`/`prefer` (the default) and `require`
//! encrypt without checking the certificate, unless `sslrootcert` names a CA file, in which
//! case the certificate is verified as libpq does; `verify-ca` and `verify-full` verify the
//! certificate and the host name against `sslrootcert` (default: the system's CAs).
//! `sslcert`/`sslkey` give a client certificate. tokio-postgres parses the rest of the string.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingest_client::{CaSource, TlsConfig};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait (waits double up to it).
    pub max: Duration,
    /// Give up once failures have lasted this long.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    /// 100 ms doubling to 5 s, for up to 10 minutes: long enough for a server restart or a
    /// failover, short enough that a dead server stops the job visibly.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            give_up_after: Duration::from_secs(600),
        }
    }
}

/// Waits between attempts of one operation.
pub(crate) struct Backoff {
    policy: RetryPolicy,
    next: Duration,
    since: Instant,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy) -> Backoff {
        Backoff {
            policy,
            next: policy.initial,
            since: Instant::now(),
        }
    }

    /// Sleeps before the next attempt, or returns false when retrying is over.
    pub(crate) async fn wait(&mut self) -> bool {
        if self.since.elapsed() >= self.policy.give_up_after {
            return false;
        }
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.policy.max);
        true
    }
}

/// What an error means for the operation that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// The connection broke or the server is (re)starting: reconnect and redo.
    Retry,
    /// The server refused a value or a row (SQLSTATE class 22 data exception, 23 integrity
    /// constraint violation): the row goes through the error policy.
    Data,
    /// Anything else (permissions, missing objects, bad SQL): stop.
    Fatal,
}

/// Classifies a tokio-postgres error.
pub(crate) fn classify(e: &tokio_postgres::Error) -> ErrorClass {
    match e.code() {
        Some(code) => {
            let c = code.code();
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || c.starts_with("08") // connection exception
                || c.starts_with("57") // operator intervention: shutdown, crash, cannot connect now
                || c.starts_with("53")
            // insufficient resources: too many connections, out of memory
            {
                ErrorClass::Retry
            } else if c.starts_with("22") || c.starts_with("23") {
                ErrorClass::Data
            } else {
                ErrorClass::Fatal
            }
        }
        // A TLS handshake failure (a certificate the CA did not sign, a server without TLS
        // under sslmode=require) is configuration: retrying gives the same answer.
        None if e.to_string().starts_with("error performing TLS handshake") => ErrorClass::Fatal,
        // No SQLSTATE otherwise: I/O, a closed connection, a refused connection.
        None => ErrorClass::Retry,
    }
}

/// The line (1-based tuple number) a COPY error names in its context (`COPY t, line 5, ...`).
pub(crate) fn copy_line(e: &tokio_postgres::Error) -> Option<usize> {
    let context = e.as_db_error()?.where_()?;
    let at = context.rfind(", line ")?;
    let digits: String = context[at + 7..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A readable description of a tokio-postgres error, with the server's detail when it has one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(": ");
                s.push_str(d);
            }
            if let Some(w) = db.where_() {
                s.push_str(" [");
                s.push_str(w);
                s.push(']');
            }
            s
        }
        None => {
            // `Display` of an I/O-kind error is terse ("error communicating with the server");
            // the source says what happened.
            match std::error::Error::source(e) {
                Some(src) => format!("{e}: {src}"),
                None => e.to_string(),
            }
        }
    }
}

/// Everything needed to (re)connect.
#[derive(Clone)]
pub(crate) struct Settings {
    config: Config,
    tls: Option<MakeRustlsConnect>,
    /// `host:port/db` for messages (never the password).
    pub(crate) display: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("server", &self.display)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Settings {
    /// Parses a connection string (`postgres://user:pw@host:port/db?sslmode=...` or
    /// `host=... user=... sslmode=...`).
    pub(crate) fn parse(url: &str) -> Result<Settings, String> {
        let (rest, params) = split_params(url);
        let mut sslmode = None;
        let (mut rootcert, mut cert, mut key) = (None, None, None);
        let mut kept = Vec::new();
        for (k, v) in params {
            match k.as_str() {
                "sslmode" => sslmode = Some(v),
                "sslrootcert" => rootcert = Some(v),
                "sslcert" => cert = Some(v),
                "sslkey" => key = Some(v),
                _ => kept.push((k, v)),
            }
        }
        let mode = sslmode.as_deref().unwrap_or("prefer");
        let (pg_mode, verify) = match mode {
            "disable" => ("disable", false),
            "allow" | "prefer" => ("prefer", rootcert.is_some()),
            "require" => ("require", rootcert.is_some()),
            "verify-ca" | "verify-full" => ("require", true),
            other => {
                return Err(format!(
                "sslmode {other:?}: one of disable, allow, prefer, require, verify-ca, verify-full"
            ))
            }
        };
        kept.push(("sslmode".to_owned(), pg_mode.to_owned()));
        let text = join_params(&rest, &kept);
        let config = Config::from_str(&text).map_err(|e| format!("connection string: {e}"))?;
        let tls = if pg_mode == "disable" {
            None
        } else {
            let mut settings = TlsConfig::default();
            settings.ca = rootcert.map_or(CaSource::System, |f| CaSource::File(f.into()));
            settings.client_cert = match (cert, key) {
                (Some(c), Some(k)) => Some((c.into(), k.into())),
                (None, None) => None,
                _ => return Err("sslcert and sslkey go together".to_owned()),
            };
            // libpq's prefer/require without a root certificate: encryption only.
            settings.danger_accept_invalid_certs = !verify;
            let rustls = settings.build().map_err(|e| format!("TLS: {e}"))?;
            Some(MakeRustlsConnect::new((*rustls).clone()))
        };
        let display = display(&config);
        Ok(Settings {
            config,
            tls,
            display,
        })
    }

    /// One connection attempt; the connection's I/O runs on its own task.
    pub(crate) async fn connect(&self) -> Result<Arc<Client>, tokio_postgres::Error> {
        let client = match &self.tls {
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "PostgreSQL connection ended");
                    }
                });
                client
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "PostgreSQL connection ended");
                    }
                });
                client
            }
        };
        Ok(Arc::new(client))
    }
}

fn display(config: &Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{}",
        config.get_dbname().or(config.get_user()).unwrap_or("")
    )
}

/// Splits the parameters off a connection string: a URL's query, or a `key=value` string's
/// pairs (values without spaces or quotes, which is what the TLS parameters take).
fn split_params(url: &str) -> (String, Vec<(String, String)>) {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), Vec::new());
        };
        let params = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        (base.to_owned(), params)
    } else {
        let mut rest = Vec::new();
        let mut params = Vec::new();
        for token in url.split_whitespace() {
            match token.split_once('=') {
                Some((k, v))
                    if matches!(k, "sslmode" | "sslrootcert" | "sslcert" | "sslkey")
                        && !v.starts_with('\'') =>
                {
                    params.push((k.to_owned(), v.to_owned()))
                }
                _ => rest.push(token),
            }
        }
        (rest.join(" "), params)
    }
}

fn join_params(base: &str, params: &[(String, String)]) -> String {
    if base.starts_with("postgres://") || base.starts_with("postgresql://") {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        format!("{base}?{}", query.join("&"))
    } else {
        let mut s = base.to_owned();
        for (k, v) in params {
            s.push_str(&format!(" {k}={v}"));
        }
        s
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_urls() {
        let (base, params) =
            split_params("postgres://u:p@h:5/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x");
        assert_eq!(base, "postgres://u:p@h:5/db");
        assert_eq!(
            params,
            vec![
                ("sslmode".to_owned(), "verify-full".to_owned()),
                ("sslrootcert".to_owned(), "/tmp/ca.pem".to_owned()),
                ("application_name".to_owned(), "x".to_owned()),
            ]
        );
        let (base, params) = split_params("host=h port=5 sslmode=disable user=u");
        assert_eq!(base, "host=h port=5 user=u");
        assert_eq!(params, vec![("sslmode".to_owned(), "disable".to_owned())]);
    }

    #[test]
    fn connection_strings_parse() {
        let s = Settings::parse("postgres://u:secret@127.0.0.1:5433/db?sslmode=disable").unwrap();
        assert!(s.tls.is_none());
        assert_eq!(s.display, "127.0.0.1:5433/db");
        assert!(!format!("{s:?}").contains("secret"));
        let s = Settings::parse("host=localhost user=u sslmode=require").unwrap();
        assert!(s.tls.is_some());
        assert!(Settings::parse("postgres://h/db?sslmode=sometimes")
            .unwrap_err()
            .contains("sslmode"));
        assert!(Settings::parse(
            "postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem"
        )
        .unwrap_err()
        .contains("nonexistent"));
    }
}
