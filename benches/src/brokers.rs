//! The brokers the clients are compared on, each started as its own process on a free loopback
//! port (so that its CPU is not in any client's figures) and stopped when dropped:
//!
//! - testkit's in-memory cluster, as `kingest dev-broker`: so cheap per request that the
//!   client, not the broker, is what is measured;
//! - nisshi, a real broker, with memory storage, started as `tests/src/peers/nisshi.rs` and
//!   `scripts/nisshi.sh` start it (in an empty directory of its own: it reads a `.env` from
//!   its working directory).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::Error;

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BrokerKind {
    /// `kingest dev-broker` (testkit).
    Testkit,
    /// nisshi.
    Nisshi,
}

impl BrokerKind {
    /// The name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Testkit => "testkit",
            BrokerKind::Nisshi => "nisshi",
        }
    }
}

impl std::str::FromStr for BrokerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "testkit" => Ok(BrokerKind::Testkit),
            "nisshi" => Ok(BrokerKind::Nisshi),
            _ => Err(format!("unknown broker {s:?}: testkit or nisshi")),
        }
    }
}

/// A free port on 127.0.0.1 (the OS picks one; it is free again once the listener is dropped).
pub fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::io("binding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(Error::io("reading the free port"))?
        .port())
}

/// A broker process.
#[derive(Debug)]
pub struct Broker {
    kind: BrokerKind,
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Broker {
    /// Starts `kingest dev-broker` from the `kingest` executable at `kingest`.
    pub fn testkit(kingest: &Path) -> Result<Broker, Error> {
        let port = free_port()?;
        let mut cmd = Command::new(kingest);
        cmd.args(["dev-broker", "--port", &port.to_string()]);
        Self::spawn(BrokerKind::Testkit, cmd, port)
    }

    /// Starts nisshi with memory storage from the executable at `nisshi`.
    pub fn nisshi(nisshi: &Path) -> Result<Broker, Error> {
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new(nisshi);
        cmd.arg("broker")
            .args(["--storage-engine", "memory://kingest/"])
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--group-initial-rebalance-delay", "0s"]);
        Self::spawn(BrokerKind::Nisshi, cmd, port)
    }

    fn spawn(kind: BrokerKind, mut cmd: Command, port: u16) -> Result<Broker, Error> {
        let dir = tempfile::tempdir().map_err(Error::io("creating the broker's directory"))?;
        let log_path = dir.path().join("broker.log");
        let log = std::fs::File::create(&log_path)
            .map_err(Error::io(format!("creating {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(Error::io("duplicating the log handle"))?;
        let child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(Error::io(format!("starting {:?}", cmd.get_program())))?;
        let mut broker = Broker {
            kind,
            child: Some(child),
            dir,
            port,
        };
        broker.wait_until_listening()?;
        Ok(broker)
    }

    fn wait_until_listening(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(Error::Run(format!(
                    "{} exited with {status} before listening; its log:\n{}",
                    self.kind.name(),
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::Run(format!(
            "{} did not listen on port {} within 30 s; its log:\n{}",
            self.kind.name(),
            self.port,
            self.log()
        )))
    }

    /// Which broker this is.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the broker logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// The broker's CPU time so far (user + system, from `/proc/PID/stat`), to show how busy
    /// the broker was during a run.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        process_cpu_seconds(pid)
    }

    /// Stops the broker: SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// User plus system CPU seconds of process `pid` so far, from `/proc/PID/stat` (Linux; clock
/// ticks of 1/100 s).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// `name` on PATH, or in `~/.cargo/bin` (where scripts/setup.sh installs nisshi).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = PathBuf::from(home).join(".cargo/bin").join(name);
        p.is_file().then_some(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_from_proc() {
        assert!(process_cpu_seconds(std::process::id()).is_some());
        assert!(process_cpu_seconds(u32::MAX).is_none());
    }

    #[test]
    fn names_and_ports() {
        assert_eq!("nisshi".parse::<BrokerKind>(), Ok(BrokerKind::Nisshi));
        assert!("kafka".parse::<BrokerKind>().is_err());
        assert!(free_port().unwrap() > 0);
        assert!(find_program("sh").is_some());
    }
}
