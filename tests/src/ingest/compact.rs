//! What the compaction tests of every file sink share (`ingest_compact.rs`, `delta_compact.rs`,
//! `iceberg_compact.rs`): running `kingest check`/`compact` for their JSON, a background
//! producer of click records that keeps a running job writing small files, and waiting until
//! the sink holds everything produced.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::kill::click;
use super::{kingest, produce, Job, Produced};

/// Runs `kingest ARGS`, failing with its output unless it succeeds; its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = kingest(args).output().expect("run kingest");
    assert!(
        out.status.success(),
        "kingest {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sink offsets `kingest check --json` reports, per partition.
pub fn sink_offsets(config: &Path) -> BTreeMap<i64, i64> {
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&["check", config.to_str().unwrap(), "--json"])).unwrap();
    doc["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some((p["partition"].as_i64()?, p["sink"].as_i64()?)))
        .collect()
}

/// `kingest compact CONFIG --json [--execute]`, parsed.
pub fn compact_json(config: &Path, execute: bool) -> serde_json::Value {
    let mut args = vec!["compact", config.to_str().unwrap(), "--json"];
    if execute {
        args.push("--execute");
    }
    serde_json::from_str(&ok(&args)).unwrap()
}

/// A background producer of click records, `per_batch` every 30 ms, so a running job writes
/// small files.
pub struct ClickProducer {
    produced: Arc<Mutex<BTreeMap<(i32, i64), Produced>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ClickProducer {
    /// Starts producing clicks numbered from `from` into `topic` (of `partitions`) at `addr`.
    pub fn start(
        addr: String,
        topic: &'static str,
        partitions: i32,
        per_batch: usize,
        from: usize,
    ) -> ClickProducer {
        let produced: Arc<Mutex<BTreeMap<(i32, i64), Produced>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (produced, stop) = (produced.clone(), stop.clone());
            tokio::spawn(async move {
                let mut next = from;
                while !stop.load(Ordering::SeqCst) {
                    let batch: Vec<Produced> = (next..next + per_batch)
                        .map(|n| click(n, partitions))
                        .collect();
                    next += per_batch;
                    let at = produce(&addr, topic, &batch).await;
                    produced.lock().unwrap().extend(at.into_iter().zip(batch));
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            })
        };
        ClickProducer {
            produced,
            stop,
            task,
        }
    }

    /// Stops producing; every record produced, by partition and offset.
    pub async fn stop(self) -> BTreeMap<(i32, i64), Produced> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        std::mem::take(&mut *self.produced.lock().unwrap())
    }
}

/// Waits until the sink holds every produced offset (`kingest check`), failing if the job
/// stops or two minutes pass.
pub async fn caught_up(config: &Path, end: &BTreeMap<i32, i64>, job: &mut Job) {
    let want: BTreeMap<i64, i64> = end.iter().map(|(p, e)| (i64::from(*p), *e)).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink_offsets(config) != want {
        assert!(
            job.try_wait().is_none(),
            "the job stopped: {}",
            job.log_tail()
        );
        assert!(
            Instant::now() < deadline,
            "the sink did not reach {want:?}: {:?}; {}",
            sink_offsets(config),
            job.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
