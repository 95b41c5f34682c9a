//! `side-by-side`: kingest-client, librdkafka and rskafka on the same brokers and data, in one
//! invocation. For each broker (testkit's in-memory cluster as `kingest dev-broker`, and
//! nisshi), record size and codec:
//!
//! - consume: one topic is preloaded, then each client reads it from the beginning to the end;
//! - produce: each client writes the same records to an empty topic of its own, and the topic's
//!   end offsets are checked afterwards.
//!
//! Every run is a `bench-client measure run ...` child process, so CPU time and peak RSS are
//! that client's alone; the broker runs in a process of its own. Prints one line per run on
//! standard error and the tables (ratios against librdkafka) on standard output and `--out`.
//!
//! ```text
//! cargo build --release -p kingest -p kingest-benches
//! target/release/side-by-side --out target/side-by-side.md
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use kingest_benches::brokers::{find_program, Broker, BrokerKind};
use kingest_benches::measure::last_json;
use kingest_benches::preload;
use kingest_benches::spec::{ClientKind, Codec, Measured, Mode, RunSpec};
use kingest_benches::table::{line, markdown, Row};
use kingest_benches::Error;

/// Compares the clients side by side.
#[derive(Debug, Parser)]
#[command(name = "side-by-side")]
struct Args {
    /// Brokers to start: testkit (kingest dev-broker) and/or nisshi.
    #[arg(long, value_delimiter = ',', default_value = "testkit,nisshi")]
    brokers: Vec<BrokerKind>,
    /// A broker already running, as NAME=HOST:PORT, used instead of starting any (repeatable).
    #[arg(long, value_name = "NAME=HOST:PORT")]
    connect: Vec<String>,
    /// Clients, in run order; librdkafka is the reference of the ratios.
    #[arg(long, value_delimiter = ',', default_value = "rdkafka,kingest,rskafka")]
    clients: Vec<ClientKind>,
    /// Value sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "100,1024")]
    sizes: Vec<usize>,
    /// Codecs.
    #[arg(long, value_delimiter = ',', default_value = "none,lz4,zstd")]
    codecs: Vec<Codec>,
    /// Directions.
    #[arg(long, value_delimiter = ',', default_value = "consume,produce")]
    modes: Vec<Mode>,
    /// Megabytes (10^6) of values per case (records = this / record size): one number for
    /// every size, or SIZE=MB pairs. 1 KiB runs get more data so that they last seconds too.
    #[arg(long, value_delimiter = ',', default_value = "100=256,1024=1024")]
    mb: Vec<Volume>,
    /// Partitions per topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Seed of the values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the tables here (markdown).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The kingest executable (default: next to this one).
    #[arg(long)]
    kingest: Option<PathBuf>,
    /// The nisshi executable (default: on PATH or in ~/.cargo/bin).
    #[arg(long)]
    nisshi: Option<PathBuf>,
    /// The bench-client executable (default: next to this one).
    #[arg(long)]
    bench_client: Option<PathBuf>,
}

/// `--mb`: megabytes per case, for one record size or for all.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Volume {
    size: Option<usize>,
    mb: f64,
}

impl std::str::FromStr for Volume {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (size, mb) = match s.split_once('=') {
            Some((size, mb)) => (
                Some(
                    size.parse()
                        .map_err(|_| format!("bad size in --mb {s:?}"))?,
                ),
                mb,
            ),
            None => (None, s),
        };
        let mb: f64 = mb
            .parse()
            .map_err(|_| format!("bad megabytes in --mb {s:?}"))?;
        if !(mb.is_finite() && mb > 0.0) {
            return Err(format!("--mb {s:?} must be positive"));
        }
        Ok(Volume { size, mb })
    }
}

/// Megabytes for `size`: its own entry, else a plain number, else 256.
fn megabytes(volumes: &[Volume], size: usize) -> f64 {
    volumes
        .iter()
        .find(|v| v.size == Some(size))
        .or_else(|| volumes.iter().find(|v| v.size.is_none()))
        .map_or(256.0, |v| v.mb)
}

fn sibling(name: &str) -> Result<PathBuf, Error> {
    let me = std::env::current_exe().map_err(Error::io("finding my own executable"))?;
    let path = me.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Run(format!(
            "{} is missing: build it with `cargo build --release -p kingest -p kingest-benches` (or pass its path)",
            path.display()
        )))
    }
}

/// Where a case's runs go.
struct Target {
    name: String,
    addr: String,
    broker: Option<Broker>,
}

impl Target {
    fn broker_cpu(&self) -> Option<f64> {
        self.broker.as_ref().and_then(Broker::cpu_seconds)
    }
}

struct Harness {
    args: Args,
    bench_client: PathBuf,
    runtime: tokio::runtime::Runtime,
    rows: Vec<Row>,
    failures: Vec<String>,
    run_id: String,
}

impl Harness {
    fn measure(&self, spec: &RunSpec) -> Result<Measured, Error> {
        let mut args = vec!["measure".to_owned()];
        args.extend(spec.to_args());
        let output = std::process::Command::new(&self.bench_client)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(Error::io(format!(
                "running {}",
                self.bench_client.display()
            )))?;
        if !output.status.success() {
            return Err(Error::Run(format!(
                "{} {} {} failed ({})",
                spec.client.label(),
                spec.mode.name(),
                spec.topic,
                output.status
            )));
        }
        last_json(&output.stdout).ok_or_else(|| {
            Error::Run(format!(
                "bench-client measure printed no result: {}",
                String::from_utf8_lossy(&output.stdout)
            ))
        })
    }

    /// Runs one client over one case, checks what it moved, and keeps the row.
    fn run_one(&mut self, target: &Target, spec: &RunSpec) -> Result<(), Error> {
        let cpu0 = target.broker_cpu();
        let measured = self.measure(spec)?;
        let cpu1 = target.broker_cpu();
        // A producer's first record is its warm-up, outside its figures (see RunResult).
        let expected = match spec.mode {
            Mode::Consume => spec.records,
            Mode::Produce => spec.records - 1,
        };
        let expected_bytes = expected * spec.record_size as u64;
        if measured.result.records != expected || measured.result.bytes != expected_bytes {
            return Err(Error::Run(format!(
                "{} {} {}: moved {} records / {} bytes, expected {expected} / {expected_bytes}",
                spec.client.label(),
                spec.mode.name(),
                spec.topic,
                measured.result.records,
                measured.result.bytes,
            )));
        }
        if spec.mode == Mode::Produce {
            let written = self.runtime.block_on(preload::record_count(
                &spec.brokers,
                &spec.topic,
                spec.partitions,
            ))?;
            if written != spec.records {
                return Err(Error::Run(format!(
                    "{} produce: topic {} holds {written} records, {} were sent",
                    spec.client.label(),
                    spec.topic,
                    spec.records
                )));
            }
        }
        let row = Row {
            broker: target.name.clone(),
            mode: spec.mode,
            record_size: spec.record_size,
            codec: spec.codec,
            client: spec.client,
            measured,
            broker_cpu_seconds: cpu0.zip(cpu1).map(|(a, b)| b - a),
        };
        eprintln!("side-by-side: {}", line(&row));
        self.rows.push(row);
        Ok(())
    }

    fn fail(&mut self, what: String, e: &Error) {
        let message = format!("{what}: {e}");
        eprintln!("side-by-side: FAILED {message}");
        self.failures.push(message);
    }

    fn case(&mut self, target: &Target, size: usize, codec: Codec) -> Result<(), Error> {
        let mb = megabytes(&self.args.mb, size);
        let records = ((mb * 1e6) / size as f64).round().max(2.0) as u64;
        let partitions = self.args.partitions;
        let seed = self.args.seed;
        let spec = |client, mode, topic: &str| RunSpec {
            client,
            mode,
            brokers: target.addr.clone(),
            topic: topic.to_owned(),
            partitions,
            records,
            record_size: size,
            codec,
            seed,
        };
        let clients = self.args.clients.clone();
        if self.args.modes.contains(&Mode::Consume) {
            let topic = format!("sbs-{}-c-{size}-{}", self.run_id, codec.name());
            self.runtime.block_on(async {
                preload::create_topic(&target.addr, &topic, partitions).await?;
                preload::preload(&target.addr, &topic, records, size, codec, self.args.seed).await
            })?;
            for &client in &clients {
                if let Err(e) = self.run_one(target, &spec(client, Mode::Consume, &topic)) {
                    self.fail(
                        format!(
                            "{} consume {size} B {codec} on {}",
                            client.label(),
                            target.name
                        ),
                        &e,
                    );
                }
            }
            self.runtime
                .block_on(preload::delete_topic(&target.addr, &topic))?;
        }
        if self.args.modes.contains(&Mode::Produce) {
            for &client in &clients {
                let topic = format!(
                    "sbs-{}-p-{}-{size}-{}",
                    self.run_id,
                    client.name(),
                    codec.name()
                );
                self.runtime
                    .block_on(preload::create_topic(&target.addr, &topic, partitions))?;
                if let Err(e) = self.run_one(target, &spec(client, Mode::Produce, &topic)) {
                    self.fail(
                        format!(
                            "{} produce {size} B {codec} on {}",
                            client.label(),
                            target.name
                        ),
                        &e,
                    );
                }
                self.runtime
                    .block_on(preload::delete_topic(&target.addr, &topic))?;
            }
        }
        Ok(())
    }
}

fn first_line(path: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// What the figures were measured on.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = first_line("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into());
    let memory = first_line("/proc/meminfo", "MemTotal").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let (_, rdkafka) = rdkafka::util::get_rdkafka_version();
    format!(
        "{cores} cores ({model}), {memory} memory, Linux {}, {rustc}, librdkafka {rdkafka}, rskafka 0.6",
        kernel.trim()
    )
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn run(args: Args) -> Result<(String, bool), Error> {
    let bench_client = match &args.bench_client {
        Some(p) => p.clone(),
        None => sibling("bench-client")?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::io("starting the tokio runtime"))?;
    let mut targets_to_start: Vec<BrokerKind> = Vec::new();
    let mut connected = Vec::new();
    if args.connect.is_empty() {
        targets_to_start = args.brokers.clone();
    } else {
        for c in &args.connect {
            let (name, addr) = c
                .split_once('=')
                .ok_or_else(|| Error::Run(format!("--connect {c:?}: expected NAME=HOST:PORT")))?;
            connected.push(Target {
                name: name.to_owned(),
                addr: addr.to_owned(),
                broker: None,
            });
        }
    }
    let kingest = |a: &Args| match &a.kingest {
        Some(p) => Ok(p.clone()),
        None => sibling("kingest"),
    };
    let nisshi = |a: &Args| match &a.nisshi {
        Some(p) => Ok(p.clone()),
        None => find_program("nisshi")
            .ok_or_else(|| Error::Run("nisshi is not installed: run scripts/setup.sh".to_owned())),
    };
    let load_before = load();
    let started = std::time::SystemTime::now();
    let mut h = Harness {
        bench_client,
        runtime,
        rows: Vec::new(),
        failures: Vec::new(),
        run_id: format!("{}", std::process::id()),
        args,
    };
    for target in connected {
        run_target(&mut h, &target);
    }
    for kind in targets_to_start {
        // One broker at a time: another one would only hold memory meanwhile.
        let started = match kind {
            BrokerKind::Testkit => kingest(&h.args).and_then(|k| Broker::testkit(&k)),
            BrokerKind::Nisshi => nisshi(&h.args).and_then(|n| Broker::nisshi(&n)),
        };
        let broker = match started {
            Ok(b) => b,
            Err(e) => {
                h.fail(format!("starting {}", kind.name()), &e);
                continue;
            }
        };
        eprintln!("side-by-side: {} on {}", kind.name(), broker.addr());
        let target = Target {
            name: kind.name().to_owned(),
            addr: broker.addr(),
            broker: Some(broker),
        };
        run_target(&mut h, &target);
    }
    let minutes = started.elapsed().map_or(0.0, |d| d.as_secs_f64() / 60.0);
    let mut out = format!(
        "Machine: {}. Load average (1, 5, 15 min) {} at the start, {} at the end; {minutes:.1} minutes. \
         MB of values per case by record size: {}; {} partitions.\n\n",
        machine(),
        load_before,
        load(),
        h.args
            .sizes
            .iter()
            .map(|&s| format!("{s} B: {}", megabytes(&h.args.mb, s)))
            .collect::<Vec<_>>()
            .join(", "),
        h.args.partitions
    );
    out.push_str(&markdown(&h.rows));
    if !h.failures.is_empty() {
        out.push_str("Runs that failed:\n\n");
        for f in &h.failures {
            out.push_str(&format!("- {f}\n"));
        }
    }
    Ok((out, h.failures.is_empty()))
}

/// Every case on one broker; a case that cannot be set up is reported and skipped.
fn run_target(h: &mut Harness, target: &Target) {
    for &size in &h.args.sizes.clone() {
        for &codec in &h.args.codecs.clone() {
            if let Err(e) = h.case(target, size, codec) {
                h.fail(format!("{size} B {codec} on {}", target.name), &e);
            }
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(Error::io(format!("writing {}", path.display())))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let out_path = args.out.clone();
    match run(args) {
        Ok((text, all_ok)) => {
            println!("{text}");
            if let Some(p) = out_path {
                if let Err(e) = write(&p, &text) {
                    eprintln!("side-by-side: {e}");
                    return ExitCode::FAILURE;
                }
            }
            if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("side-by-side: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_per_record_size() {
        let v: Vec<Volume> = ["100=256", "1024=1024"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(megabytes(&v, 100), 256.0);
        assert_eq!(megabytes(&v, 1024), 1024.0);
        assert_eq!(megabytes(&v, 10), 256.0, "no entry: the default");
        let all: Vec<Volume> = vec!["0.5".parse().unwrap(), "100=7".parse().unwrap()];
        assert_eq!(megabytes(&all, 100), 7.0);
        assert_eq!(megabytes(&all, 1024), 0.5);
        for bad in ["x", "100=", "=5", "100=-1", "100=0"] {
            assert!(bad.parse::<Volume>().is_err(), "{bad}");
        }
    }

    #[test]
    fn arguments_parse() {
        let a = Args::try_parse_from([
            "side-by-side",
            "--brokers",
            "nisshi",
            "--clients",
            "kingest,rdkafka",
            "--codecs",
            "lz4",
            "--mb",
            "100=1,1024=2",
        ])
        .unwrap();
        assert_eq!(a.brokers, vec![BrokerKind::Nisshi]);
        assert_eq!(a.clients, vec![ClientKind::Kingest, ClientKind::Rdkafka]);
        assert_eq!(a.codecs, vec![Codec::Lz4]);
        assert_eq!(megabytes(&a.mb, 1024), 2.0);
        assert!(Args::try_parse_from(["side-by-side", "--clients", "java"]).is_err());
    }
}
