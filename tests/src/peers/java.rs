//! The Apache Kafka Java client as a peer: `tests/java/KafkaPeer.java`, compiled with javac
//! against the `kafka-clients` jar (3.9.1, from the PyPI package scripts/setup.sh installs) and
//! run with its dependencies from Debian (slf4j, lz4-java, zstd-jni, snappy-java).
//!
//! It is compiled once per source version into a directory named by the source's hash, written
//! to a temporary directory first and renamed into place, so concurrent test processes never see
//! a half-written class file. A missing program or jar fails the test with what to run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

const SETUP: &str = "run scripts/setup.sh (it installs the Java client and its dependencies)";

/// The Debian jars the Java client needs at run time.
const DEBIAN_JARS: &[&str] = &[
    "slf4j-api.jar",
    "slf4j-simple.jar",
    "lz4-java.jar",
    "zstd-jni.jar",
    "snappy-java.jar",
];

/// The compiled harness and the classpath to run it with.
#[derive(Debug)]
pub struct JavaPeer {
    java: PathBuf,
    classpath: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where `pip` put pyflink's lib/kafka-clients.jar (pyflink is a namespace package).
fn kafka_clients_jar() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u, os\ns = u.find_spec('pyflink')\n\
             print('\\n'.join(os.path.join(d, 'lib', 'kafka-clients.jar') for d in (s.submodule_search_locations if s else [])))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 to find kafka-clients.jar ({e}): {SETUP}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("kafka-clients.jar not found (PyPI shigawire-apache-flink-libraries): {SETUP}")
        })
}

fn hash(bytes: &[u8]) -> u64 {
    // FNV-1a: a stable name for the compiled classes of this exact source.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl JavaPeer {
    /// The harness, compiled on first use.
    pub fn get() -> &'static JavaPeer {
        static PEER: OnceLock<JavaPeer> = OnceLock::new();
        PEER.get_or_init(JavaPeer::build)
    }

    fn build() -> JavaPeer {
        let java = super::require_program("java", SETUP);
        let javac = super::require_program("javac", SETUP);
        let client = kafka_clients_jar();
        let mut jars = vec![client.clone()];
        for name in DEBIAN_JARS {
            let p = Path::new("/usr/share/java").join(name);
            assert!(p.is_file(), "{} is missing: {SETUP}", p.display());
            jars.push(p);
        }
        let source = repo().join("tests/java/KafkaPeer.java");
        let text =
            std::fs::read(&source).unwrap_or_else(|e| panic!("read {}: {e}", source.display()));
        let root = std::env::temp_dir().join("kingest-java-peer");
        let classes = root.join(format!("{:016x}", hash(&text)));
        if !classes.join("KafkaPeer.class").is_file() {
            std::fs::create_dir_all(&root).expect("create the Java peer's build directory");
            let work = tempfile::tempdir_in(&root).expect("a scratch directory for javac");
            let out = Command::new(&javac)
                .arg("-d")
                .arg(work.path())
                .arg("-cp")
                .arg(&client)
                .arg(&source)
                .output()
                .expect("run javac");
            assert!(
                out.status.success(),
                "javac {} failed:\n{}",
                source.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            // Another process may have won the race; its classes are the same.
            let staged = work.keep();
            if std::fs::rename(&staged, &classes).is_err() {
                let _ = std::fs::remove_dir_all(&staged);
            }
        }
        jars.insert(0, classes);
        let classpath = std::env::join_paths(&jars)
            .expect("jar paths join")
            .to_string_lossy()
            .into_owned();
        JavaPeer { java, classpath }
    }

    /// A command running `KafkaPeer <sub> args...`, stdout piped.
    pub fn command(&self, sub: &str, args: &[String]) -> Command {
        let mut c = Command::new(&self.java);
        c.arg("-cp")
            .arg(&self.classpath)
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("KafkaPeer")
            .arg(sub)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs a subcommand to its end and returns its JSON lines; panics with its stderr if it
    /// fails.
    pub fn run(&self, sub: &str, args: &[String]) -> Vec<Value> {
        let out = self
            .command(sub, args)
            .output()
            .unwrap_or_else(|e| panic!("run the Java peer: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "KafkaPeer {sub} {args:?} failed ({}):\n{}\nstdout:\n{stdout}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("KafkaPeer printed a bad line {l:?}: {e}"))
            })
            .collect()
    }

    /// [`JavaPeer::run`] from async code, on a blocking thread (the Java peer talks to a broker
    /// that may run on the caller's runtime).
    pub async fn run_async(&'static self, sub: &str, args: Vec<String>) -> Vec<Value> {
        let sub = sub.to_owned();
        tokio::task::spawn_blocking(move || self.run(&sub, &args))
            .await
            .expect("the Java peer's thread")
    }
}

/// `key=value` arguments.
pub fn args(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect()
}
