//! A PostgreSQL server of the test's own: Debian's `postgresql` package binaries
//! (`/usr/lib/postgresql/*/bin`), a cluster made by `initdb` in a temporary directory and
//! started with `pg_ctl` on a free loopback port, stopped when dropped. Never a server set up by
//! hand. `initdb` refuses to run as root, so under root every server command runs as the
//! `postgres` user the package creates (`runuser -u postgres --`), and the directory is theirs.
//!
//! [`Postgres::psql`] runs queries through the package's own `psql`, an independent reader of
//! what the sink stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use arrow_schema::{DataType, TimeUnit};

use super::free_port;
use crate::ingest::Cell;

const INSTALL_HINT: &str =
    "run scripts/setup.sh, which installs Debian's postgresql and postgresql-client packages";

/// How the server is started.
#[derive(Debug, Clone, Default)]
pub struct PostgresOptions {
    /// Serve TLS with this certificate chain and key (PEM), and refuse TCP connections without
    /// it.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A running PostgreSQL cluster, stopped (and its directory removed) when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
    options: PostgresOptions,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`, or a panic saying how to
/// install it.
pub fn server_bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin: {INSTALL_HINT}"),
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Postgres {
    /// A fresh cluster with default options.
    pub fn start() -> Postgres {
        Self::start_with(PostgresOptions::default())
    }

    /// A fresh cluster started with `options`.
    pub fn start_with(options: PostgresOptions) -> Postgres {
        let bin = server_bin_dir();
        let dir = tempfile::tempdir().expect("temp dir for PostgreSQL");
        let as_postgres = is_root();
        let mut pg = Postgres {
            dir,
            bin,
            port: free_port(),
            as_postgres,
            running: false,
            options,
        };
        if let Some((cert, key)) = pg.options.tls.clone() {
            std::fs::copy(cert, pg.dir.path().join("server.crt")).expect("copy the certificate");
            std::fs::copy(key, pg.dir.path().join("server.key")).expect("copy the key");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                pg.dir.path().join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .expect("chmod the key");
        }
        if as_postgres {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .output()
                .expect("run chown");
            assert!(
                out.status.success(),
                "chown -R postgres {} failed (is the postgres user there? {INSTALL_HINT}): {}",
                pg.dir.path().display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let data = pg.data();
        let out = pg.server_command("initdb", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
                .args(["--no-locale", "--no-sync"]);
        });
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if pg.options.tls.is_some() {
            // TLS or nothing over TCP, so a test that connects at all has used TLS.
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
            )
            .expect("write pg_hba.conf");
        }
        pg.start_server();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the server's programs, as `postgres` when the test runs as root.
    fn server_command(&self, program: &str, args: impl FnOnce(&mut Command)) -> Output {
        let exe = self.bin.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        c.current_dir(self.dir.path()).stdin(Stdio::null());
        args(&mut c);
        c.output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e} ({INSTALL_HINT})", exe.display()))
    }

    fn start_server(&mut self) {
        let mut opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        if self.options.tls.is_some() {
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                self.dir.path().display()
            ));
        }
        let data = self.data();
        let log = self.dir.path().join("postgres.log");
        let out = self.server_command("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &opts, "-w", "-t", "60", "start"]);
        });
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        self.running = true;
    }

    /// Stops the server: `fast` closes sessions cleanly (they get SQLSTATE 57P01), `immediate`
    /// is a crash (recovery from the WAL on the next start).
    pub fn stop(&mut self, mode: &str) {
        if !self.running {
            return;
        }
        let data = self.data();
        let out = self.server_command("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-m", mode, "-w", "-t", "60", "stop"]);
        });
        assert!(
            out.status.success(),
            "pg_ctl stop -m {mode} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = false;
    }

    /// Starts a stopped server again on the same port and data.
    pub fn start_again(&mut self) {
        if !self.running {
            self.start_server();
        }
    }

    /// Stops (`fast` or `immediate`) and starts the server again.
    pub fn restart(&mut self, mode: &str) {
        self.stop(mode);
        self.start_server();
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection string for the `postgres` database as the `postgres` user (trust
    /// authentication), without TLS.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// The package's `psql` with the connection options of this server.
    pub fn psql_command(&self) -> Command {
        let mut c = Command::new(self.bin.join("psql"));
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-X", "-q"])
            .args(["-v", "ON_ERROR_STOP=1"])
            .env(
                "PGSSLMODE",
                if self.options.tls.is_some() {
                    "require"
                } else {
                    "disable"
                },
            )
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null());
        c
    }

    /// Runs SQL with `psql`, panicking with its error when it fails; returns the rows, fields
    /// separated by `\x1f`, NULL printed as [`NULL`].
    pub fn psql(&self, sql: &str) -> Vec<String> {
        let out = self
            .psql_command()
            .args([
                "-A",
                "-t",
                "-F",
                "\x1f",
                "-R",
                "\x1e",
                "-P",
                &format!("null={NULL}"),
            ])
            .args(["-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("psql prints UTF-8");
        let text = text.strip_suffix('\n').unwrap_or(&text);
        if text.is_empty() {
            return Vec::new();
        }
        text.split('\x1e').map(str::to_owned).collect()
    }

    /// What the sink's offsets table (`kingest_offsets`) records for `group` and `topic`:
    /// partition → the next offset to read.
    pub fn offsets_table(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        self.psql(&format!(
            "SELECT partition, next_offset FROM kingest_offsets \
             WHERE consumer_group = '{group}' AND topic = '{topic}'"
        ))
        .iter()
        .map(|r| {
            let (p, o) = r.split_once('\x1f').expect("two fields");
            (
                p.parse().expect("a partition"),
                o.parse().expect("an offset"),
            )
        })
        .collect()
    }

    /// The one value a query returns.
    pub fn psql_value(&self, sql: &str) -> String {
        let rows = self.psql(sql);
        assert_eq!(rows.len(), 1, "{sql} returned {rows:?}");
        rows[0].clone()
    }

    /// The server's data directory's parent (holds the log), for debugging.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// How [`Postgres::psql`] prints NULL.
pub const NULL: &str = "<NULL>";

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = self.server_command("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&data)
                    .args(["-m", "immediate", "-w", "-t", "30", "stop"]);
            });
        }
    }
}

/// The SQL that prints a column of Arrow type `ty` as text [`parse_cell`] reads back: numbers
/// and text as they are, bytes as hex, dates as days and timestamps as microseconds since
/// 1970, arrays and JSON as JSON.
pub fn select_expr(column: &str, ty: &DataType) -> String {
    let c = format!("\"{}\"", column.replace('"', "\"\""));
    match ty {
        DataType::Binary => format!("encode({c}, 'hex')"),
        DataType::Date32 => format!("({c} - date '1970-01-01')::text"),
        DataType::Timestamp(..) => format!("(extract(epoch from {c}) * 1000000)::bigint::text"),
        DataType::List(_) | DataType::Struct(_) => format!("to_json({c})::text"),
        _ => format!("{c}::text"),
    }
}

/// Reads back one value printed by [`select_expr`] as the [`Cell`] kingest's Parquet tests
/// use (timestamps in the column's unit: PostgreSQL keeps microseconds, so nanoseconds come
/// back truncated to them).
pub fn parse_cell(text: &str, ty: &DataType) -> Cell {
    if text == NULL {
        return Cell::Null;
    }
    let bad = |what: &str| -> ! { panic!("{text:?} is not {what} ({ty:?})") };
    match ty {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            Cell::Int(text.parse().unwrap_or_else(|_| bad("an integer")))
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            Cell::UInt(text.parse().unwrap_or_else(|_| bad("an unsigned integer")))
        }
        DataType::Float32 => Cell::Float(f64::from(
            text.parse::<f32>().unwrap_or_else(|_| bad("a real")),
        )),
        DataType::Float64 => Cell::Float(text.parse().unwrap_or_else(|_| bad("a double"))),
        DataType::Boolean => match text {
            "true" => Cell::Bool(true),
            "false" => Cell::Bool(false),
            _ => bad("a boolean"),
        },
        DataType::Utf8 => Cell::Str(text.to_owned()),
        DataType::Binary => Cell::Bytes(hex::decode(text).unwrap_or_else(|_| bad("hex"))),
        DataType::Date32 => Cell::Date(text.parse().unwrap_or_else(|_| bad("days"))),
        DataType::Timestamp(unit, _) => {
            let us: i64 = text.parse().unwrap_or_else(|_| bad("microseconds"));
            Cell::Ts(match unit {
                TimeUnit::Second => us.div_euclid(1_000_000),
                TimeUnit::Millisecond => us.div_euclid(1_000),
                TimeUnit::Microsecond => us,
                TimeUnit::Nanosecond => us * 1_000,
            })
        }
        DataType::Decimal128(_, scale) => Cell::Dec(unscaled(text, *scale)),
        DataType::List(_) | DataType::Struct(_) => {
            let v: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|_| bad("JSON"));
            json_cell(&v, ty)
        }
        other => panic!("no PostgreSQL reading for {other:?}"),
    }
}

/// `-12.340` at scale 3 → -12340.
fn unscaled(text: &str, scale: i8) -> i128 {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut frac = frac.to_owned();
    assert!(
        frac.len() <= scale as usize,
        "{text} has more than {scale} decimals"
    );
    while frac.len() < scale as usize {
        frac.push('0');
    }
    let v: i128 = format!("{int}{frac}").parse().expect("decimal digits");
    if neg {
        -v
    } else {
        v
    }
}

/// A JSON value (from `to_json`) as the cell of type `ty`.
fn json_cell(v: &serde_json::Value, ty: &DataType) -> Cell {
    use serde_json::Value;
    match (v, ty) {
        (Value::Null, _) => Cell::Null,
        (Value::Array(items), DataType::List(f)) => {
            Cell::List(items.iter().map(|i| json_cell(i, f.data_type())).collect())
        }
        (Value::Object(map), DataType::Struct(fields)) => Cell::Struct(
            fields
                .iter()
                .map(|f| {
                    let v = map.get(f.name()).unwrap_or(&Value::Null);
                    (f.name().clone(), json_cell(v, f.data_type()))
                })
                .collect(),
        ),
        (Value::Number(n), DataType::Decimal128(_, s)) => Cell::Dec(unscaled(&n.to_string(), *s)),
        (Value::Number(n), DataType::Float32 | DataType::Float64) => {
            Cell::Float(n.as_f64().expect("a float"))
        }
        (Value::Number(n), t) if t.is_unsigned_integer() => {
            Cell::UInt(n.as_u64().expect("an unsigned integer"))
        }
        (Value::Number(n), _) => Cell::Int(n.as_i64().expect("an integer")),
        (Value::Bool(b), _) => Cell::Bool(*b),
        (Value::String(s), DataType::Binary) => Cell::Bytes(hex::decode(s).expect("hex")),
        (Value::String(s), _) => Cell::Str(s.clone()),
        (other, t) => panic!("JSON {other} for {t:?}"),
    }
}

impl Postgres {
    /// The rows of `table` as cells of `columns` (name and Arrow type), ordered by `order_by`.
    pub fn read_rows(
        &self,
        table: &str,
        columns: &[(&str, DataType)],
        order_by: &str,
    ) -> Vec<Vec<Cell>> {
        let select: Vec<String> = columns.iter().map(|(n, t)| select_expr(n, t)).collect();
        let sql = format!(
            "SET TimeZone = 'UTC'; SELECT {} FROM {table} ORDER BY {order_by}",
            select.join(", ")
        );
        self.psql(&sql)
            .iter()
            .map(|row| {
                let fields: Vec<&str> = row.split('\x1f').collect();
                assert_eq!(fields.len(), columns.len(), "row {row:?}");
                fields
                    .iter()
                    .zip(columns)
                    .map(|(f, (_, t))| parse_cell(f, t))
                    .collect()
            })
            .collect()
    }
}
