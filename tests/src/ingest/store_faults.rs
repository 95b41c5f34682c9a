//! The fault-injection runs the object store tests of every file sink share (Parquet in
//! `tests/ingest_object_store.rs`, Delta and Iceberg in `tests/tables_object_store.rs`): a job
//! whose store is reached through a [`FaultProxy`], records arriving in chunks of [`click`]s,
//! and two phases, each checked by the caller's own reader afterwards:
//!
//! 1. [`FaultRun::survive_faults`]: the proxy fails a share of the requests; a streaming run
//!    retries every failure, never stops, commits everything and stops cleanly when asked.
//! 2. [`FaultRun::store_goes_down`]: the store fails every request from some moment on under a
//!    running job (with a small retry bound in the job): the run stops by itself with an error
//!    naming the object and the server's answer, a run started meanwhile fails alike, and a
//!    run after the store recovers completes the output.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::kill::click;
use super::{group_committed, kingest, produce, wait_for, Job, Produced};
use crate::peers::faults::{FaultProxy, Faults};

/// Records of a fault run go to `topic` in chunks of this many.
pub const CHUNK: usize = 40;

/// One sink's job behind a fault proxy.
pub struct FaultRun<'a> {
    /// The broker's bootstrap address.
    pub broker: &'a str,
    /// The topic the job reads.
    pub topic: &'a str,
    /// Its partitions.
    pub partitions: i32,
    /// The job's consumer group.
    pub group: &'a str,
    /// The job file.
    pub config: &'a Path,
    /// Where the runs' stderr goes.
    pub log: &'a Path,
    /// The proxy in front of the job's store.
    pub proxy: &'a FaultProxy,
}

impl FaultRun<'_> {
    /// Produces chunks `chunks` of [`CHUNK`] clicks (chunk `c` holds clicks `c * CHUNK..`),
    /// 100 ms apart, into `produced`; from chunk `down_at` on (if given) the proxy fails every
    /// request.
    async fn produce_chunks(
        &self,
        chunks: Range<usize>,
        down_at: Option<usize>,
        produced: &mut BTreeMap<(i32, i64), Produced>,
    ) {
        for chunk in chunks {
            if down_at == Some(chunk) {
                self.proxy.set(Faults::All);
            }
            let batch: Vec<Produced> = (chunk * CHUNK..(chunk + 1) * CHUNK)
                .map(|n| click(n, self.partitions))
                .collect();
            let at = produce(self.broker, self.topic, &batch).await;
            produced.extend(at.into_iter().zip(batch));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Phase 1 (see the [module docs](self)), with the proxy as it is set (a share of requests
    /// failing) and the job file as written: a streaming run while `chunks` arrive, until the
    /// group's offsets reach the end; it must still be running, and stop cleanly on SIGTERM.
    pub async fn survive_faults(
        &self,
        chunks: Range<usize>,
        produced: &mut BTreeMap<(i32, i64), Produced>,
    ) {
        let proxy = self.proxy;
        let mut running = Job::start(self.config, self.log, false);
        self.produce_chunks(chunks, None, produced).await;
        let total = produced.len() as i64;
        wait_for(
            "the group's offsets to reach the end (everything committed)",
            Duration::from_secs(180),
            || {
                group_committed(self.broker, self.group, self.topic, self.partitions)
                    .values()
                    .sum::<i64>()
                    == total
            },
            || format!("{}; {}", proxy.counts().summary(), running.log_tail()),
        )
        .await;
        assert!(
            running.try_wait().is_none(),
            "with requests failing the run stopped: {}; {}",
            proxy.counts().summary(),
            running.log_tail()
        );
        running.signal(rustix::process::Signal::TERM);
        let status = running.wait();
        assert!(
            status.success(),
            "{status}; {}; {}",
            proxy.counts().summary(),
            running.log_tail()
        );
        assert!(
            proxy.counts().failed() >= 10,
            "too few faults injected to mean anything: {}",
            proxy.counts().summary()
        );
    }

    /// Phase 2 (see the [module docs](self)), the job file rewritten with a small retry bound
    /// by the caller: a run starts on a healthy store, `chunks` arrive, and from chunk
    /// `down_at` on the store fails everything. The run's last error and the error of a run
    /// while the store is down must name `names` (the sink's prefix) and the 503; a run after
    /// the store recovers must succeed. Returns the running job's last error line.
    pub async fn store_goes_down(
        &self,
        chunks: Range<usize>,
        down_at: usize,
        names: &str,
        produced: &mut BTreeMap<(i32, i64), Produced>,
    ) -> String {
        // The run starts on a healthy store: it may read many objects at start, and with
        // requests still failing at random one read could exhaust the small retry bound
        // before the store goes down.
        self.proxy.set(Faults::None);
        let mut running = Job::start(self.config, self.log, false);
        let slow_downs = self.proxy.counts().slow_down.load(Ordering::SeqCst);
        self.produce_chunks(chunks, Some(down_at), produced).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = running.try_wait() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "a store failing everything: the run did not stop; {}",
                running.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let stderr = running.log_tail();
        assert!(!status.success(), "{status}: {stderr}");
        let last = stderr
            .lines()
            .rfind(|l| l.contains("kingest run:"))
            .unwrap_or_default()
            .to_owned();
        assert!(
            last.contains(names) && last.contains("503"),
            "the error names the object and the server's answer: {stderr}"
        );
        let retried = self.proxy.counts().slow_down.load(Ordering::SeqCst) - slow_downs;
        assert!(
            retried >= 4,
            "the failing request was retried: {retried} attempts"
        );
        let (status, stderr) = run_until_eof(self.config);
        assert!(
            !status.success() && stderr.contains(names) && stderr.contains("503"),
            "a run while the store is down: {status}: {stderr}"
        );
        eprintln!("store down at start: {}", stderr.trim());
        // The store recovers: the next run completes the output.
        self.proxy.set(Faults::None);
        let (status, stderr) = run_until_eof(self.config);
        assert!(
            status.success(),
            "after recovery: {status}; stderr:\n{stderr}"
        );
        last
    }
}

/// Runs `kingest run CONFIG --until-eof` to completion; its exit status and stderr.
pub fn run_until_eof(config: &Path) -> (std::process::ExitStatus, String) {
    let out = kingest(&["run", config.to_str().unwrap(), "--until-eof"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run kingest");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
