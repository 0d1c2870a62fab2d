//! Parallel loops over fixed-size chunks of neurons.
//!
//! Chunks have a fixed size, so a reduction adds the same partial sums in the same order whatever
//! the number of threads. Loops run on PyTorch's OpenMP threads when the process has attached
//! them ([`crate::openmp`]), else on rayon.
//!
//! Each calling thread keeps its own rayon pool, tagged with the process id and thread count: a
//! child process after `fork()` (a DataLoader worker) has no pool threads, so it sees a foreign
//! pid and builds a fresh pool instead of waiting on threads that do not exist. No lock is shared
//! between calling threads, so a fork can never inherit one held.

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;

/// Neurons per work item: `[T, CHUNK]` tiles stream through the cache while the per-neuron state
/// of a chunk (a few `CHUNK`-long vectors) stays in L1/L2.
pub const CHUNK: usize = 2048;

/// Below this many neuron-steps a call runs on the calling thread: waking a pool costs more.
const SERIAL_WORK: usize = 1 << 15;

struct Pool {
    pid: u32,
    threads: usize,
    pool: rayon::ThreadPool,
}

thread_local! {
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

fn with_pool<R>(threads: usize, f: impl FnOnce(&rayon::ThreadPool) -> R) -> Result<R> {
    POOL.with(|cell| {
        let mut slot = cell.borrow_mut();
        let pid = std::process::id();
        let pool = match slot.take() {
            Some(p) if p.pid == pid && p.threads == threads => p,
            old => {
                if let Some(old) = old.filter(|p| p.pid != pid) {
                    // Inherited through fork(): its threads live only in the parent. Dropping
                    // it would signal them, so leak it instead.
                    std::mem::forget(old);
                }
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("snnrs-{i}"))
                    .build()
                    .map_err(|e| Error::Runtime(format!("cannot start {threads} threads: {e}")))?;
                Pool { pid, threads, pool }
            }
        };
        Ok(f(&slot.insert(pool).pool))
    })
}

/// Chunk `c` of `0..n`.
#[cfg(test)]
fn chunk_range(c: usize, n: usize) -> Range<usize> {
    c * CHUNK..((c + 1) * CHUNK).min(n)
}

/// Calls `f` on every chunk of `0..n`, in parallel on up to `threads` threads, and returns the
/// chunks' results in chunk order. `work` is the total neuron-steps, used to stay serial when small.
pub fn map_chunks<R, F>(n: usize, work: usize, threads: usize, f: F) -> Result<Vec<R>>
where
    R: Send,
    F: Fn(Range<usize>) -> R + Sync + Send,
{
    map_chunks_of(n, CHUNK, work, threads, f)
}

/// As [`map_chunks`], with chunks of `size` (at least 1) items instead of [`CHUNK`]: for loops
/// whose items are large (a convolution's output rows, its input channels).
pub fn map_chunks_of<R, F>(
    n: usize,
    size: usize,
    work: usize,
    threads: usize,
    f: F,
) -> Result<Vec<R>>
where
    R: Send,
    F: Fn(Range<usize>) -> R + Sync + Send,
{
    let size = size.max(1);
    let count = n.div_ceil(size);
    let chunk = |c: usize| c * size..((c + 1) * size).min(n);
    if threads <= 1 || work < SERIAL_WORK || count <= 1 {
        return Ok((0..count).map(|c| f(chunk(c))).collect());
    }
    match crate::openmp::map(count, threads, chunk, &f) {
        Some(results) => Ok(results),
        None => map_on_rayon(count, threads, chunk, f),
    }
}

/// `f(chunk(c))` for every `c < count` on this thread's rayon pool of `threads`, in chunk order.
fn map_on_rayon<R, F>(
    count: usize,
    threads: usize,
    chunk: impl Fn(usize) -> Range<usize> + Sync + Send,
    f: F,
) -> Result<Vec<R>>
where
    R: Send,
    F: Fn(Range<usize>) -> R + Sync + Send,
{
    with_pool(threads, |pool| {
        pool.install(|| (0..count).into_par_iter().map(|c| f(chunk(c))).collect())
    })
}

/// A raw pointer to an output buffer that chunks write disjoint parts of.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut<F>(*mut F);

// SAFETY: every chunk writes only indices inside its own neuron range, so no two threads write
// the same element and nothing reads an element another thread writes.
unsafe impl<F: Send> Send for SharedOut<F> {}
unsafe impl<F: Send> Sync for SharedOut<F> {}

impl<F> SharedOut<F> {
    pub(crate) fn new(buf: &mut [F]) -> Self {
        SharedOut(buf.as_mut_ptr())
    }

    /// The sub-slice `[offset + range]` of the buffer.
    ///
    /// # Safety
    /// The range must lie inside the buffer and must not overlap a slice another thread holds.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, offset: usize, range: &Range<usize>) -> &mut [F] {
        std::slice::from_raw_parts_mut(self.0.add(offset + range.start), range.len())
    }

    /// Writes `v` at `index`.
    ///
    /// # Safety
    /// `index` must lie inside the buffer, and no other thread may read or write that element.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, index: usize, v: F) {
        self.0.add(index).write(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_index_once_in_order() {
        for n in [1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 7] {
            for threads in [1, 2, 3] {
                let ranges = map_chunks(n, usize::MAX, threads, |r| r).unwrap();
                let flat: Vec<usize> = ranges.into_iter().flatten().collect();
                assert_eq!(flat, (0..n).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn pool_follows_the_thread_count() {
        for threads in [2, 3, 2] {
            let seen = map_on_rayon(
                64,
                threads,
                |c| chunk_range(c, 64 * CHUNK),
                |_| rayon::current_num_threads(),
            )
            .unwrap();
            assert!(seen.iter().all(|&t| t == threads));
        }
    }
}
