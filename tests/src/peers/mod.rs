//! Real peers the integration tests start for themselves: the nisshi broker (a Kafka-compatible
//! broker from crates.io), a stunnel TLS terminator, and the certificates they use; object
//! store servers (moto for S3, Azurite for Azure) and a fault-injecting proxy in front of them. Nothing here is ever started by hand; a missing program is a test
//! failure that says how to install it, never a skipped test. [`cluster`] starts testkit's
//! in-memory cluster, the stand-in for what nisshi cannot do.

pub mod certs;
pub mod cluster;
pub mod faults;
pub mod iceberg_rest;
pub mod java;
pub mod nisshi;
pub mod objstore;
pub mod postgres;
pub mod registry;
pub mod stunnel;

use std::net::TcpListener;

/// A free loopback port (bound and released; the window for a clash is small on a test box).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Finds a program on PATH or in ~/.cargo/bin, or panics saying how to install it.
pub fn require_program(name: &str, install_hint: &str) -> std::path::PathBuf {
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(std::path::Path::new(&home).join(".cargo/bin"));
    }
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed: {install_hint}"))
}
