//! A TLS terminator (Debian's stunnel4) that demands and verifies client certificates, in front
//! of a plain broker: how mutual TLS is tested, since nisshi's own TLS listener does not ask for
//! client certificates.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require_program};

/// A running stunnel, stopped when dropped.
pub struct Stunnel {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Stunnel {
    /// Accepts TLS on a free port with `cert`/`key`, requires a client certificate signed by
    /// `ca`, and forwards to 127.0.0.1:`backend_port`.
    pub fn start(port: u16, backend_port: u16, cert: &Path, key: &Path, ca: &Path) -> Stunnel {
        let bin = require_program(
            "stunnel4",
            "run scripts/setup.sh, which installs Debian's stunnel4",
        );
        let dir = tempfile::tempdir().expect("temp dir for stunnel");
        let conf = dir.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\ndebug = notice\n[kafka]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend_port}\n\
                 cert = {}\nkey = {}\nCAfile = {}\nrequireCert = yes\nverifyChain = yes\n",
                cert.display(),
                key.display(),
                ca.display()
            ),
        )
        .expect("write stunnel.conf");
        let log = std::fs::File::create(dir.path().join("stunnel.log")).expect("stunnel log");
        let child = Command::new(bin)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start stunnel4");
        let mut s = Stunnel {
            child,
            _dir: dir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("stunnel4 exited with {status}: {}", s.log());
            }
            assert!(
                Instant::now() < deadline,
                "stunnel4 did not listen: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// A free port to give [`Stunnel::start`] (decided before the broker starts, because the
    /// broker must advertise it).
    pub fn pick_port() -> u16 {
        free_port()
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits up to 5 s for stunnel to log `needle` (it writes its log asynchronously).
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// What stunnel logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("stunnel.log")).unwrap_or_default()
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
