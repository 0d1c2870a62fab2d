//! Runs a chunk kernel compiled for the best instruction set the CPU offers.
//!
//! The wheel targets baseline x86-64 (SSE2). The kernel is also inlined into functions compiled
//! for AVX2 + FMA and for AVX-512, doubling and quadrupling the vector width (the sigmoid
//! surrogate's backward is compute-bound without them). Rust never contracts `a * b + c` into an
//! FMA, so every path rounds identically: results are bit-for-bit the same.

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
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has the features `run_avx512` is compiled for.
        return unsafe { run_avx512(kernel, r) };
    }
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_avx512<K: Chunk>(kernel: &K, r: Range<usize>) -> K::Out {
    kernel.run(r)
}
