//! Starting and stopping a nisshi broker on a free loopback port, in its own empty directory
//! (nisshi reads a `.env` from its working directory, so it must not run in the repository).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require_program};

const INSTALL_HINT: &str = "run scripts/setup.sh, which builds nisshi 0.8.1 once";

/// How the broker is started.
#[derive(Debug, Clone, Default)]
pub struct NisshiOptions {
    /// `sqlite://FILE` storage (durable across restarts; SCRAM users live there), FILE being
    /// a name inside the broker's own directory (nisshi resolves the URL's path relative to its
    /// working directory); `None` for memory storage.
    pub sqlite: Option<String>,
    /// TLS certificate chain and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Require SASL authentication.
    pub authentication: bool,
    /// Advertise this port instead of the listening one (for a TLS terminator in front).
    pub advertised_port: Option<u16>,
}

/// A running nisshi broker, stopped when dropped.
pub struct Nisshi {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    options: NisshiOptions,
    bin: PathBuf,
}

impl Nisshi {
    /// A broker with in-memory storage.
    pub fn start() -> Nisshi {
        Self::start_with(NisshiOptions::default())
    }

    /// A broker started with `options`.
    pub fn start_with(options: NisshiOptions) -> Nisshi {
        let bin = require_program("nisshi", INSTALL_HINT);
        let dir = tempfile::tempdir().expect("temp dir for nisshi");
        let mut broker = Nisshi {
            child: None,
            dir,
            port: free_port(),
            options,
            bin,
        };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let storage = match &self.options.sqlite {
            Some(file) => {
                assert!(
                    !file.starts_with('/'),
                    "sqlite file {file:?} must be a name inside the broker's directory"
                );
                format!("sqlite://{file}")
            }
            None => "memory://kingest/".to_owned(),
        };
        let scheme = "tcp";
        let advertised = self.options.advertised_port.unwrap_or(self.port);
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(self.dir.path())
            .arg("broker")
            .args(["--storage-engine", &storage])
            .args([
                "--listener-url",
                &format!("{scheme}://127.0.0.1:{}", self.port),
            ])
            .args([
                "--advertised-listener-url",
                &format!("{scheme}://127.0.0.1:{advertised}"),
            ])
            .args(["--group-initial-rebalance-delay", "0s"]);
        if let Some((cert, key)) = &self.options.tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if self.options.authentication {
            cmd.arg("--authentication");
        }
        let log =
            std::fs::File::create(self.dir.path().join("nisshi.log")).expect("nisshi log file");
        cmd.stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_until_listening();
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "nisshi exited with {status} before listening; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nisshi did not listen on port {} within 30 s; its log:\n{}",
            self.port,
            self.log()
        );
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, for bootstrap.servers.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's working directory (holds its log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the broker has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nisshi.log")).unwrap_or_default()
    }

    /// Runs a `nisshi` subcommand against this broker (`topic create ...`, `user create ...`),
    /// panicking with its output when it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let broker = format!("tcp://127.0.0.1:{}", self.port);
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--broker", &broker]);
        let out = Command::new(&self.bin)
            .current_dir(self.dir.path())
            .args(&full)
            .output()
            .expect("run nisshi cli");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "nisshi {} failed: {text}",
            full.join(" ")
        );
        text
    }

    /// Creates a topic with the nisshi CLI.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        self.cli(&[
            "topic",
            "create",
            name,
            "--partitions",
            &partitions.to_string(),
        ]);
    }

    /// The broker process's id while it runs (to freeze it with SIGSTOP and thaw it with
    /// SIGCONT, as a broker that stops answering).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the broker (SIGKILL: no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage (memory storage starts empty).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts it again on the same port with other options (e.g. authentication switched on
    /// once users exist).
    pub fn restart_with(&mut self, options: NisshiOptions) {
        self.kill();
        self.options = options;
        self.spawn();
    }
}

impl Drop for Nisshi {
    fn drop(&mut self) {
        self.kill();
    }
}
