//! Runs a chunk kernel compiled for the best instruction set the CPU offers.
//!
//! The wheel targets baseline x86-64 (SSE2). On CPUs with AVX2 + FMA the kernel is also inlined
//! into a function compiled for those features, doubling the vector width. Rust never contracts
//! `a * b + c` into an FMA, so both paths round identically: results are bit-for-bit the same.

use std::ops::Range;

/// A kernel over one chunk of neurons. `run` must be `#[inline(always)]`, so that it is
/// compiled into each instruction-set variant below.
pub trait Chunk: Sync {
    type Out: Send;
    fn run(&self, r: Range<usize>) -> Self::Out;
}

/// Runs `kernel` on the neurons `r` with the widest vector instructions available.
#[inline]
pub fn run_chunk<K: Chunk>(kernel: &K, r: Range<usize>) -> K::Out {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features `run_avx2_fma` is compiled for.
        return unsafe { run_avx2_fma(kernel, r) };
    }
    kernel.run(r)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2_fma<K: Chunk>(kernel: &K, r: Range<usize>) -> K::Out {
    kernel.run(r)
}
