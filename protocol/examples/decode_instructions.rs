//! Decodes one benchmark batch (the `batch_decode` bench's cases: 1000 records of 100 B or
//! 1024 of 1 KiB, JSON values, each codec) in a loop, for instruction counts under callgrind
//! (`scripts/bench-decompress-instructions.sh` runs it before and after a change), and prints
//! what the loop allocated: allocator calls and bytes per batch, counted by a wrapping global
//! allocator, and minor page faults per batch (`/proc/self/stat`; Linux only, and not
//! deterministic).
//!
//! Run: `cargo run --release -p kingest-protocol --example decode_instructions -- zstd 1024 100`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use kingest_protocol::record::{Compression, DecodeOptions};

// The bench's own cases, so that these are the same bytes BENCHMARKS.md's tables decode.
// `decode_theirs` and `decompress_bare` are not used here.
#[allow(dead_code)]
#[path = "../../benches/benches/support/batch_decode_cases.rs"]
mod cases;

/// The system allocator, counting calls and bytes.
struct Counting;

static CALLS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// The one unsafe item in the crate: a global allocator cannot be written without it, and this
// one only forwards to `System`. It is a measuring tool, not part of the library.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// This process's minor page faults so far.
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): minflt is
    // the 10th field overall, the 8th after the name.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [codec, size, iterations] = &args[..] else {
        eprintln!("usage: decode_instructions <none|gzip|snappy|lz4|zstd> <100|1024> <iterations>");
        std::process::exit(2);
    };
    let codec = Compression::from_name(codec).expect("a codec name");
    let size: usize = size.parse().expect("a value size");
    let iterations: u64 = iterations.parse().expect("an iteration count");
    let (_, records) = cases::SHAPES
        .into_iter()
        .find(|s| s.0 == size)
        .expect("a benchmarked value size (100 or 1024)");
    let case = cases::build(codec, size, records);
    let opts = DecodeOptions::default();
    // One batch outside the count, so that first-use costs (a context, a pooled buffer) are
    // setup, as they are for a consumer's long run.
    black_box(cases::decode_ours(&case.batch, &opts));
    // Faults first: reading them allocates, and that is not the loop's.
    let faults = minor_faults();
    let (calls, bytes) = (CALLS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
    for _ in 0..iterations {
        black_box(cases::decode_ours(black_box(&case.batch), &opts));
    }
    let (calls, bytes) = (
        CALLS.load(Ordering::Relaxed) - calls,
        BYTES.load(Ordering::Relaxed) - bytes,
    );
    let faults = minor_faults() - faults;
    let per = |n: u64| n as f64 / iterations.max(1) as f64;
    println!(
        "allocations/batch {:.2} bytes-allocated/batch {:.0} minor-faults/batch {:.2}",
        per(calls),
        per(bytes),
        per(faults),
    );
}
