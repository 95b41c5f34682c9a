//! An Iceberg REST catalog server for tests: `iceberg_rest.py` beside this file, the REST
//! endpoints a writer uses in front of pyiceberg's `SqlCatalog` on a SQLite file (as Apache
//! Iceberg's own REST test fixture fronts a `JdbcCatalog`). pyiceberg checks each commit's
//! requirements and applies its updates (snapshot expiry's `remove-snapshots` too), and deletes
//! the metadata files a commit drops from the log when the table says so; a failed requirement
//! is a 409. The warehouse may be local or on an object store server. Started on a free
//! loopback port, stopped when dropped.
//!
//! Fails with a message when pyiceberg is missing (`scripts/setup.sh` installs it).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use std::process::{Child, Command, Stdio};

const SCRIPT: &str = include_str!("iceberg_rest.py");

/// A running REST catalog server.
pub struct IcebergRest {
    child: Child,
    port: u16,
    sql_uri: String,
    _dir: tempfile::TempDir,
}

impl IcebergRest {
    /// Starts a server whose catalog is a new SQLite file, new tables under `warehouse`.
    pub fn start(warehouse: &Path) -> IcebergRest {
        Self::start_with(&format!("file://{}", warehouse.display()), &BTreeMap::new())
    }

    /// Starts a server whose catalog is a new SQLite file, new tables under `warehouse` (a
    /// URL: `s3://bucket/prefix`), its FileIO configured with `properties` (pyiceberg's
    /// `s3.endpoint`, `s3.access-key-id`, ...: see `ObjectServer::pyiceberg_properties`).
    pub fn start_with(warehouse: &str, properties: &BTreeMap<String, String>) -> IcebergRest {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let script: PathBuf = dir.path().join("iceberg_rest.py");
        std::fs::write(&script, SCRIPT).expect("write the server script");
        let sql_uri = format!("sqlite:///{}", dir.path().join("rest-catalog.db").display());
        let port = super::free_port();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(&sql_uri)
            .arg(warehouse)
            .arg(serde_json::to_string(properties).expect("properties as JSON"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("the server's stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the server's first line");
        if line.trim() != "listening" {
            let _ = child.kill();
            panic!(
                "the Iceberg REST test server did not start (is pyiceberg installed? run \
                 scripts/setup.sh): {line:?}"
            );
        }
        IcebergRest {
            child,
            port,
            sql_uri,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The SQL catalog behind the server (for reading tables with pyiceberg directly).
    pub fn sql_uri(&self) -> &str {
        &self.sql_uri
    }
}

impl Drop for IcebergRest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
