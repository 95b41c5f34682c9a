//! CPU-time cross-check of the batch-decoding benchmark, for shared or busy machines.
//!
//! Criterion measures wall-clock time, which on a machine whose cores other jobs are using
//! includes the time this process waited for a core. This runs the same cases and the same code
//! as `benches/batch_decode.rs` (both include `benches/support/batch_decode_cases.rs`) and
//! measures the thread's own CPU time instead (`/proc/thread-self/schedstat`, nanoseconds; Linux
//! only), taking the best of several rounds. It prints a markdown table like BENCHMARKS.md's.
//!
//! Run: `cargo run --release -p kingest-benches --example batch_decode_cpu [rounds]`.
//! Also `... -- profile <ours|kafka-protocol|bare> <codec> <value size> <iterations>` runs one
//! case in a loop, for `perf record` or `valgrind --tool=callgrind`: build it with
//! `--profile profiling` (release code with line tables) for those.

use std::hint::black_box;

use kingest_protocol::record::{Compression, DecodeOptions, BATCH_HEADER_SIZE};

#[path = "../benches/support/batch_decode_cases.rs"]
mod cases;
use cases::{build, decode_ours, decode_theirs, decompress_bare, Case, SHAPES};

/// This thread's CPU time so far, in nanoseconds.
fn cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("reading /proc/thread-self/schedstat (Linux only)");
    stat.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("parsing schedstat")
}

/// Runs one implementation on a case once.
fn run(which: &str, case: &Case, opts: &DecodeOptions) {
    let section = &case.batch[BATCH_HEADER_SIZE..];
    match which {
        "ours" => {
            black_box(decode_ours(black_box(&case.batch), opts));
        }
        "kafka-protocol" => {
            black_box(decode_theirs(black_box(&case.batch)));
        }
        "bare" => {
            black_box(decompress_bare(
                case.codec,
                black_box(section),
                case.decompressed,
            ));
        }
        other => panic!("unknown implementation {other}"),
    }
}

/// Best-of-`rounds` CPU nanoseconds per run, each round about 0.2 s of CPU.
fn measure(which: &str, case: &Case, opts: &DecodeOptions, rounds: usize) -> f64 {
    let start = cpu_ns();
    let mut calibration = 0u64;
    while cpu_ns() - start < 20_000_000 {
        run(which, case, opts);
        calibration += 1;
    }
    let per_round = (calibration * 10).max(1);
    (0..rounds)
        .map(|_| {
            let t = cpu_ns();
            for _ in 0..per_round {
                run(which, case, opts);
            }
            (cpu_ns() - t) as f64 / per_round as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = DecodeOptions::default();
    if args.first().map(String::as_str) == Some("profile") {
        let [_, which, codec, size, iterations] = &args[..] else {
            panic!("usage: profile <ours|kafka-protocol|bare> <codec> <value size> <iterations>");
        };
        let codec = Compression::from_name(codec).expect("codec");
        let size: usize = size.parse().expect("value size");
        let (_, records) = SHAPES
            .into_iter()
            .find(|s| s.0 == size)
            .expect("a benchmarked size");
        let case = build(codec, size, records);
        for _ in 0..iterations.parse::<usize>().expect("iterations") {
            run(which, &case, &opts);
        }
        return;
    }
    let rounds: usize = args.first().map_or(5, |r| r.parse().expect("rounds"));
    println!("| codec | record size | ours records/s | ours GB/s | kafka-protocol records/s | ours/theirs | bare decompression GB/s | ours as % of bare |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (value_size, records) in SHAPES {
        for codec in Compression::ALL {
            let case = build(codec, value_size, records);
            let ours = measure("ours", &case, &opts, rounds);
            let theirs = measure("kafka-protocol", &case, &opts, rounds);
            let rps = |ns: f64| case.records as f64 / ns * 1e3; // millions per second
            let (bare, pct) = if codec == Compression::None {
                ("n/a".to_owned(), "n/a".to_owned())
            } else {
                let bare = measure("bare", &case, &opts, rounds);
                (
                    format!("{:.2}", case.decompressed as f64 / bare),
                    format!("{:.0}%", 100.0 * bare / ours),
                )
            };
            println!(
                "| {codec} | {value_size}B | {:.2} M | {:.2} | {:.2} M | {:.2}x | {bare} | {pct} |",
                rps(ours),
                case.decompressed as f64 / ours,
                rps(theirs),
                theirs / ours,
            );
        }
    }
}
