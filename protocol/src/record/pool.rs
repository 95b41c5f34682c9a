//! Reused buffers for decompressed batches.
//!
//! A consumer decompresses batch after batch of about the same size (up to a megabyte each for
//! 1 KiB records). A fresh buffer per batch costs page faults and, above the allocator's mmap
//! threshold, an `munmap` with its TLB flush when the batch is dropped; it also has to be zeroed
//! before the decompressors that write into slices can use it. So a decompressed batch's buffer
//! comes from this process-wide pool and goes back to it when the batch's last `Bytes` drops
//! (on whatever thread that is: the pool is shared, because batches are decoded on a fetch
//! task's thread and dropped on the caller's).
//!
//! A pooled buffer stays initialized: its `Vec` length is how much of it has ever been written,
//! so a reused buffer needs no zeroing. The pool keeps at most [`retained_limit`] bytes of idle
//! buffers (16 MiB by default, see [`set_retained_limit`]) and hands a buffer out only for a
//! request it fits within twice, so it neither grows without bound nor pins a large buffer under
//! a small batch. Buffers below [`MIN_POOLED`] are plain allocations: for them the allocator is
//! as fast as the pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

/// Outputs smaller than this are not pooled.
pub const MIN_POOLED: usize = 64 * 1024;
/// The most idle buffers kept, whatever their size: a lookup is a scan.
const MAX_IDLE: usize = 32;
/// The default of [`retained_limit`].
pub const DEFAULT_RETAINED_LIMIT: usize = 16 * 1024 * 1024;

static POOL: Pool = Pool::new();

/// A set of idle buffers with a bound on the bytes it keeps.
struct Pool {
    idle: Mutex<Idle>,
    limit: AtomicUsize,
}

struct Idle {
    bufs: Vec<Vec<u8>>,
    /// The capacities of `bufs`, summed.
    bytes: usize,
}

/// The most bytes of idle decompression buffers the process keeps for reuse.
pub fn retained_limit() -> usize {
    POOL.limit.load(Ordering::Relaxed)
}

/// Sets [`retained_limit`]; 0 turns reuse off (and frees what is idle).
pub fn set_retained_limit(bytes: usize) {
    POOL.set_limit(bytes);
}

/// A buffer of at least `len` initialized bytes (its `len()` may be larger): an idle one when
/// one fits, a new zeroed one otherwise.
pub(crate) fn take(len: usize) -> Vec<u8> {
    POOL.take(len)
}

/// Grows `buf` to at least `len` initialized bytes.
pub(crate) fn grow(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}

/// Returns a buffer that holds nothing anyone uses (a failed decompression's).
pub(crate) fn give_back(buf: Vec<u8>) {
    POOL.give_back(buf);
}

/// The first `len` bytes of `buf` as `Bytes`; the buffer goes back to the pool when the last
/// clone drops.
pub(crate) fn into_bytes(buf: Vec<u8>, len: usize) -> Bytes {
    POOL.wrap(buf, len)
}

impl Pool {
    const fn new() -> Self {
        Self {
            idle: Mutex::new(Idle {
                bufs: Vec::new(),
                bytes: 0,
            }),
            limit: AtomicUsize::new(DEFAULT_RETAINED_LIMIT),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        // The pool's state is consistent at every point a panic could happen (there is none
        // inside the lock), so a poisoned lock is still usable.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
        let mut idle = self.lock();
        while idle.bytes > bytes {
            let Some(buf) = idle.bufs.pop() else { break };
            idle.bytes -= buf.capacity();
        }
    }

    fn take(&self, len: usize) -> Vec<u8> {
        if len >= MIN_POOLED {
            let mut idle = self.lock();
            let best = idle
                .bufs
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= len && b.capacity() / 2 <= len)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            if let Some(i) = best {
                let mut buf = idle.bufs.swap_remove(i);
                idle.bytes -= buf.capacity();
                drop(idle);
                grow(&mut buf, len);
                return buf;
            }
        }
        vec![0; len]
    }

    fn give_back(&self, buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap < MIN_POOLED {
            return;
        }
        let limit = self.limit.load(Ordering::Relaxed);
        let mut idle = self.lock();
        if idle.bufs.len() < MAX_IDLE && idle.bytes + cap <= limit {
            idle.bytes += cap;
            idle.bufs.push(buf);
        }
    }

    fn wrap(&'static self, mut buf: Vec<u8>, len: usize) -> Bytes {
        let len = len.min(buf.len());
        if buf.capacity() < MIN_POOLED {
            buf.truncate(len);
            return Bytes::from(buf);
        }
        Bytes::from_owner(Pooled {
            buf,
            len,
            pool: self,
        })
    }
}

/// The owner behind a pooled `Bytes`.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: &'static Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_within_bounds() {
        // A pool of its own: other tests decompress through the process-wide one meanwhile.
        let pool: &'static Pool = Box::leak(Box::new(Pool::new()));
        let mut first = pool.take(MIN_POOLED * 4);
        assert!(first.len() >= MIN_POOLED * 4);
        let ptr = first.as_ptr();
        first[0] = 7;
        let bytes = pool.wrap(first, 10);
        assert_eq!(bytes.len(), 10);
        assert_eq!(bytes[0], 7);
        drop(bytes);
        // Fits within twice: the same memory comes back, still initialized.
        let again = pool.take(MIN_POOLED * 4 - 100);
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!(again[0], 7);
        pool.give_back(again);
        // Far smaller: not handed a buffer of four times its size.
        let small = pool.take(MIN_POOLED);
        assert_ne!(small.as_ptr(), ptr);
        drop(small);
        assert_eq!(pool.lock().bufs.len(), 1);
        // Turning reuse off frees what is idle and keeps nothing.
        pool.set_limit(0);
        assert_eq!(pool.lock().bytes, 0);
        pool.give_back(vec![0; MIN_POOLED]);
        assert!(pool.lock().bufs.is_empty());
        // Small outputs are plain allocations.
        let tiny = pool.wrap(vec![1, 2, 3], 2);
        assert_eq!(&tiny[..], &[1, 2]);
    }
}
