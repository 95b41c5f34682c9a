//! Real object store API servers on free loopback ports: moto (`moto_server`, the S3 API, from
//! PyPI's `moto[server]`) and Azurite (`azurite-blob`, Microsoft's Azure Blob Storage emulator,
//! from npm); and their own Python SDKs (boto3, azure-storage-blob) to create buckets and
//! containers and to download what the sink wrote, so what kingest wrote through object_store
//! is read back by another client. `scripts/setup.sh` installs all of them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require_program};

const MOTO_HINT: &str = "run scripts/setup.sh, which installs moto[server] from PyPI";
const AZURITE_HINT: &str = "run scripts/setup.sh, which installs azurite from npm";

/// Azurite's well-known development account and key (the emulator accepts only these).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's development account key.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Which API a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Amazon S3 (moto).
    S3,
    /// Azure Blob Storage (Azurite).
    Azure,
}

/// A running object store server, stopped when dropped.
pub struct ObjectServer {
    child: Child,
    api: Api,
    port: u16,
    dir: tempfile::TempDir,
}

impl ObjectServer {
    /// Starts moto's S3 server.
    pub fn moto() -> ObjectServer {
        let bin = require_program("moto_server", MOTO_HINT);
        Self::start(Api::S3, |port, _dir| {
            let mut c = Command::new(bin);
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            c
        })
    }

    /// Starts Azurite's Blob service (in memory).
    pub fn azurite() -> ObjectServer {
        let bin = require_program("azurite-blob", AZURITE_HINT);
        Self::start(Api::Azure, |port, _dir| {
            let mut c = Command::new(bin);
            c.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .args(["--inMemoryPersistence", "--skipApiVersionCheck", "--loose"])
                .arg("--disableTelemetry");
            c
        })
    }

    fn start(api: Api, command: impl FnOnce(u16, &Path) -> Command) -> ObjectServer {
        let dir = tempfile::tempdir().expect("temp dir for the object store server");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
        let child = command(port, dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {api:?} server: {e}"));
        let mut server = ObjectServer {
            child,
            api,
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{api:?} server exited with {status}: {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "{api:?} server not listening on {port} within 60 s: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Which API it speaks.
    pub fn api(&self) -> Api {
        self.api
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Creates a bucket (S3) or container (Azure) through the Python SDK.
    pub fn create_bucket(&self, name: &str) {
        self.python(CREATE, &[name]);
    }

    /// Downloads every object under `bucket/prefix` into `into` (keeping the paths under the
    /// prefix), through the Python SDK.
    pub fn download(&self, bucket: &str, prefix: &str, into: &Path) {
        self.python(
            DOWNLOAD,
            &[bucket, prefix, into.to_str().expect("a UTF-8 path")],
        );
    }

    /// The object names under `bucket/prefix`, through the Python SDK.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self.python(LIST, &[bucket, prefix]);
        out.lines().map(str::to_owned).collect()
    }

    /// Uploads `data` as `bucket/key`, through the Python SDK (a file another writer left).
    pub fn put(&self, bucket: &str, key: &str, data: &str) {
        self.python(PUT, &[bucket, key, data]);
    }

    /// Runs a script with the SDK client (`c`) made ready for this server.
    fn python(&self, body: &str, args: &[&str]) -> String {
        let setup = match self.api {
            Api::S3 => format!(
                "import boto3\nc = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\nS3 = True\n",
                self.endpoint()
            ),
            Api::Azure => format!(
                "from azure.storage.blob import BlobServiceClient\nc = BlobServiceClient.from_connection_string('{}')\nS3 = False\n",
                self.connection_string()
            ),
        };
        let script = format!("import os, sys\n{setup}{body}");
        let out = Command::new("python3")
            .arg("-c")
            .arg(&script)
            .args(args)
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "python ({:?} SDK) failed: {}\n(boto3 comes with moto[server], azure-storage-blob from PyPI: run scripts/setup.sh)",
            self.api,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The environment variables that point `kingest` (object_store) at this server, as a
    /// user would set them for a private endpoint.
    pub fn env(&self) -> Vec<(String, String)> {
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        match self.api {
            Api::S3 => vec![
                kv("AWS_ACCESS_KEY_ID", "test"),
                kv("AWS_SECRET_ACCESS_KEY", "test"),
                kv("AWS_REGION", "us-east-1"),
                kv("AWS_ENDPOINT", &self.endpoint()),
                kv("AWS_ALLOW_HTTP", "true"),
            ],
            Api::Azure => vec![
                kv("AZURE_STORAGE_USE_EMULATOR", "true"),
                kv("AZURITE_BLOB_STORAGE_URL", &self.endpoint()),
            ],
        }
    }

    /// `[sink.storage]` options pointing at `endpoint` (this server, or a proxy in front of
    /// it), as a job file gives them.
    pub fn storage_options(&self, endpoint: &str) -> String {
        self.storage_map(endpoint)
            .iter()
            .map(|(k, v)| format!("{k} = \"{v}\"\n"))
            .collect()
    }

    /// The object_store options pointing at `endpoint`: kingest's `[sink.storage]`, and
    /// delta-rs's `storage_options` (the Python `deltalake` package takes the same keys).
    pub fn storage_map(&self, endpoint: &str) -> BTreeMap<String, String> {
        let pairs: Vec<(&str, String)> = match self.api {
            Api::S3 => vec![
                ("aws_endpoint", endpoint.to_owned()),
                ("aws_allow_http", "true".into()),
                ("aws_access_key_id", "test".into()),
                ("aws_secret_access_key", "test".into()),
                ("aws_region", "us-east-1".into()),
            ],
            Api::Azure => vec![
                ("azure_storage_account_name", AZURITE_ACCOUNT.into()),
                ("azure_storage_account_key", AZURITE_KEY.into()),
                (
                    "azure_storage_endpoint",
                    format!("{endpoint}/{AZURITE_ACCOUNT}"),
                ),
                ("azure_allow_http", "true".into()),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// pyiceberg's catalog properties that reach this server: its (pyarrow) FileIO settings,
    /// `s3.endpoint` and the rest for S3; for Azure the account and key, and Azurite's
    /// `host:port` as the Blob (and DFS) authority over plain HTTP, which pyarrow's
    /// `AzureFileSystem` addresses path-style (`http://host:port/account/container/...`),
    /// as Azurite serves it.
    pub fn pyiceberg_properties(&self) -> BTreeMap<String, String> {
        let authority = format!("127.0.0.1:{}", self.port);
        let pairs: Vec<(&str, String)> = match self.api {
            Api::S3 => vec![
                ("s3.endpoint", self.endpoint()),
                ("s3.access-key-id", "test".into()),
                ("s3.secret-access-key", "test".into()),
                ("s3.region", "us-east-1".into()),
            ],
            Api::Azure => vec![
                // pyiceberg tries fsspec's adlfs first for abfs://, which is not installed;
                // its pyarrow FileIO, with the Azure file system made by the reading script
                // (see `ingest::iceberg::read_table_with`).
                ("py-io-impl", "__main__.AzureArrowIO".into()),
                ("adls.account-name", AZURITE_ACCOUNT.into()),
                ("adls.account-key", AZURITE_KEY.into()),
                ("adls.blob-storage-authority", authority.clone()),
                ("adls.blob-storage-scheme", "http".into()),
                ("adls.dfs-storage-authority", authority),
                ("adls.dfs-storage-scheme", "http".into()),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Azure's connection string for Azurite.
    fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={}/{AZURITE_ACCOUNT};",
            self.endpoint()
        )
    }

    /// The sink path of `bucket/prefix` in this server's scheme.
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        match self.api {
            Api::S3 => format!("s3://{bucket}/{prefix}"),
            Api::Azure => format!("az://{bucket}/{prefix}"),
        }
    }

    /// An Iceberg warehouse at `bucket/prefix`: as [`ObjectServer::url`], but `abfs://` on
    /// Azure, the scheme Iceberg's readers (pyiceberg, the Java ADLS FileIO) take, since the
    /// table's metadata records its files under the warehouse's scheme; object_store reads
    /// `abfs://container/path` as `az://` does.
    pub fn iceberg_url(&self, bucket: &str, prefix: &str) -> String {
        match self.api {
            Api::S3 => self.url(bucket, prefix),
            Api::Azure => format!("abfs://{bucket}/{prefix}"),
        }
    }
}

impl Drop for ObjectServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CREATE: &str = r#"
name = sys.argv[1]
if S3:
    c.create_bucket(Bucket=name)
else:
    c.create_container(name)
"#;

const LIST: &str = r#"
bucket, prefix = sys.argv[1], sys.argv[2]
if S3:
    for page in c.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get('Contents', []):
            print(o['Key'])
else:
    for b in c.get_container_client(bucket).list_blobs(name_starts_with=prefix):
        print(b.name)
"#;

const PUT: &str = r#"
bucket, key, data = sys.argv[1], sys.argv[2], sys.argv[3].encode()
if S3:
    c.put_object(Bucket=bucket, Key=key, Body=data)
else:
    c.get_blob_client(bucket, key).upload_blob(data, overwrite=True)
"#;

const DOWNLOAD: &str = r#"
bucket, prefix, into = sys.argv[1], sys.argv[2], sys.argv[3]
def save(key, data):
    rel = key[len(prefix):].lstrip('/')
    path = os.path.join(into, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
if S3:
    for page in c.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get('Contents', []):
            save(o['Key'], c.get_object(Bucket=bucket, Key=o['Key'])['Body'].read())
else:
    cc = c.get_container_client(bucket)
    for b in cc.list_blobs(name_starts_with=prefix):
        save(b.name, cc.download_blob(b.name).readall())
"#;
