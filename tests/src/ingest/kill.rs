//! Kill-and-restart runs shared by the exactly-once tests of each sink: the real `kingest run`
//! started again and again and killed with SIGKILL at moments drawn from a fixed-seed
//! generator ([`SplitMix`], seed overridable with `KINGEST_SIGKILL_SEED`, so a failing
//! sequence can be replayed), what each sink's test checks after a kill left to it, then one
//! last run to the end of the topic ([`Kills`]); and the records those tests produce
//! ([`click`]).
//!
//! The tests that kill 20 times with the Parquet and PostgreSQL sinks make their jobs static
//! group members ([`static_member`]), so a restarted process gets its partitions back at once
//! instead of waiting for the killed one's session to expire; the object store jobs are dynamic
//! members ([`dynamic_member`]), so each restart waits for the killed member's session to expire
//! and a rebalance. Restarts of dynamic members and their consequences for `--until-eof` are
//! what `tests/ingest_dynamic_membership.rs` kills.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{log_tail, Job, Produced};

/// SplitMix64: a tiny fixed-seed generator, so a failing sequence of kill moments can be
/// replayed.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next_u64() % (hi - lo))
    }
}

/// `[source.properties]` making the job the static group member `id` (`group.instance.id`,
/// with a short session for when it is not restarted).
pub fn static_member(id: &str) -> String {
    format!(
        r#"
[source.properties]
"group.instance.id" = "{id}"
"session.timeout.ms" = "6000"
"#
    )
}

/// `[source.properties]` for a dynamic group member (no `group.instance.id`) with a short
/// session, so a killed member is expired (and its partitions reassigned) within seconds.
pub fn dynamic_member() -> String {
    dynamic_member_session(6000)
}

/// [`dynamic_member`] with a session of `session_ms` (heartbeats every sixth of it): each
/// restart after a kill waits about that long for the killed member to be expired.
pub fn dynamic_member_session(session_ms: u64) -> String {
    format!(
        r#"
[source.properties]
"session.timeout.ms" = "{session_ms}"
"heartbeat.interval.ms" = "{}"
"#,
        session_ms / 6
    )
}

/// Record `n` of a kill test: JSON `{"id": n, "page": ..., "ms": ...}` on partition
/// `n * 7 % partitions`, keyed `user-{n % 97}`, with a header `trace` = `t{n}`.
pub fn click(n: usize, partitions: i32) -> Produced {
    Produced {
        partition: (n * 7 % partitions as usize) as i32,
        key: Some(format!("user-{}", n % 97).into_bytes()),
        value: Some(
            format!(
                "{{\"id\": {n}, \"page\": \"{}\", \"ms\": {}}}",
                click_page(n as i64),
                n * 3
            )
            .into_bytes(),
        ),
        headers: vec![("trace".to_owned(), Some(format!("t{n}").into_bytes()))],
        timestamp: 1_700_000_000_000 + n as i64,
    }
}

/// The `[[columns]]` of [`click`] records' values that the kill tests keep: `id` and `page`.
pub const CLICK_COLUMNS: &str = r#"
[[columns]]
name = "id"
type = "int64"

[[columns]]
name = "page"
type = "string"
"#;

/// The `page` of record `n` (non-ASCII, so its length in characters and bytes differ).
pub fn click_page(n: i64) -> String {
    format!("/p/{}/ü", n % 13)
}

/// One test's kills of `kingest run CONFIG` (stderr appended to its log): the generator, and
/// the moments drawn so far, which every failure message prints with the seed.
pub struct Kills {
    seed: u64,
    rng: SplitMix,
    moments: Vec<String>,
    config: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
}

impl Kills {
    /// Kills of the job `config`, logging to `log`, drawn from `KINGEST_SIGKILL_SEED` if set,
    /// else from `default_seed`.
    pub fn new(default_seed: u64, config: &Path, log: &Path) -> Kills {
        let seed = std::env::var("KINGEST_SIGKILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default_seed);
        Kills {
            seed,
            rng: SplitMix(seed),
            moments: Vec::new(),
            config: config.to_path_buf(),
            log: log.to_path_buf(),
            env: Vec::new(),
        }
    }

    /// Runs every `kingest run` with these environment variables set.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Kills {
        self.env = env;
        self
    }

    /// A delay uniform in `lo..hi` ms, recorded among the moments as `{label}{ms}ms`.
    pub fn delay(&mut self, label: &str, lo: u64, hi: u64) -> Duration {
        let delay = self.rng.millis(lo, hi);
        self.moments.push(format!("{label}{}ms", delay.as_millis()));
        delay
    }

    /// The seed and the kill moments so far, for failure messages.
    pub fn context(&self) -> String {
        format!("seed {}, kill moments {:?}", self.seed, self.moments)
    }

    /// [`Kills::context`] and the last lines of the job's log.
    pub fn context_and_log(&self) -> String {
        format!("{}; log:\n{}", self.context(), log_tail(&self.log))
    }

    /// Fails if `job` has exited: a streaming run never stops by itself.
    pub fn assert_running(&self, job: &mut Job) {
        if let Some(status) = job.try_wait() {
            panic!(
                "kingest run stopped on its own ({status}); {}",
                self.context_and_log()
            );
        }
    }

    /// `count` times: starts a streaming `kingest run CONFIG` (no `--until-eof`), awaits
    /// `until_kill(kill, self, job)` (which draws the moment with [`Kills::delay`] and does
    /// whatever should happen meanwhile), fails if the job stopped on its own, kills it with
    /// SIGKILL, waits for it to exit, and calls `after_kill(self)` to check what the sink holds.
    pub async fn kill_repeatedly(
        &mut self,
        count: usize,
        mut until_kill: impl AsyncFnMut(usize, &mut Kills, &mut Job),
        mut after_kill: impl FnMut(&Kills),
    ) {
        for kill in 0..count {
            let mut job = Job::start_with_env(&self.config, &self.log, false, &self.env);
            until_kill(kill, self, &mut job).await;
            self.assert_running(&mut job);
            job.child().kill().expect("SIGKILL kingest run");
            job.wait();
            after_kill(self);
        }
    }

    /// The last run, `kingest run CONFIG --until-eof`, which must end cleanly.
    pub fn finish(&self) {
        let status = Job::start_with_env(&self.config, &self.log, true, &self.env).wait();
        assert!(
            status.success(),
            "final run: {status}; {}",
            self.context_and_log()
        );
    }
}
