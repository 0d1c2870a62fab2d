//! The CubaLIF ops of `_core` ([`crate::families::cuba`]), in the `op(ctx, params, steps,
//! **bufs)` form of every op: `params` is the LIF record, the synapse's `leak_syn = 1 / tau_syn`
//! crosses as a one-element float64 buffer. CPU only: on CUDA they are a RuntimeError.

use super::{run, Context, Keywords, Op, Params, Ran};
use crate::dtype::DType;
use crate::error::Result;
use crate::families::cuba::{self, BackwardBufs, CubaParams, ForwardBufs};
use crate::float::Float;
use pyo3::prelude::*;
use pyo3::types::PyDict;

#[cfg(feature = "cuda")]
use crate::cuda::{Launched, Stream};

fn params(r: &Params, leak_syn: f64) -> CubaParams {
    CubaParams { lif: r.neuron(None), leak_syn }
}

#[cfg(feature = "cuda")]
fn no_cuda() -> Result<Launched> {
    Err(crate::error::Error::Runtime("CubaLIF has no CUDA kernel; run it on the CPU".into()))
}

impl Op for ForwardBufs {
    fn collect(mut k: Keywords<'_, '_>) -> PyResult<Self> {
        take!(k, ForwardBufs { x, i0, v0, spikes, h_seq, i, v, leak_syn; })
    }

    fn cpu_dtype(&self) -> DType {
        self.x.dtype
    }

    fn run_cpu<F: Float>(self, r: &Params, steps: usize, threads: usize) -> Result<Option<f64>> {
        // SAFETY: the buffers are tensors the caller holds alive for the call; `cpu` checks
        // each against the others before making slices.
        let (io, leak_syn) = unsafe { self.cpu::<F>(steps)? };
        cuba::forward::<F>(&params(r, leak_syn), steps, io, threads).map(|()| None)
    }

    #[cfg(feature = "cuda")]
    fn run_cuda(self, _: &Params, _: usize, _: Stream) -> Result<Launched> {
        no_cuda()
    }
}

impl Op for BackwardBufs {
    fn collect(mut k: Keywords<'_, '_>) -> PyResult<Self> {
        take!(k, BackwardBufs { grad_spikes, h_seq, grad_x, grad_i0, grad_v0, leak_syn; grad_i, grad_v })
    }

    fn cpu_dtype(&self) -> DType {
        self.h_seq.dtype
    }

    fn run_cpu<F: Float>(self, r: &Params, steps: usize, threads: usize) -> Result<Option<f64>> {
        // SAFETY: as for ForwardBufs.
        let (io, leak_syn) = unsafe { self.cpu::<F>(steps)? };
        cuba::backward::<F>(&params(r, leak_syn), &r.g, steps, io, threads).map(|()| None)
    }

    #[cfg(feature = "cuda")]
    fn run_cuda(self, _: &Params, _: usize, _: Stream) -> Result<Launched> {
        no_cuda()
    }
}

op_function!(
    /// CubaLIF forward over `x [T, N]` from `i0, v0 [N]` into `spikes, h_seq [T, N]` and
    /// `i, v [N]`; `leak_syn`: `1 / tau_syn`, one float64 element.
    cubalif_forward(ForwardBufs)
);

op_function!(
    /// CubaLIF BPTT backward from `h_seq [T, N]`: writes `grad_x [T, N]`, `grad_i0, grad_v0 [N]`;
    /// `grad_i, grad_v` (None: zero) are `[N]`; `leak_syn` as in the forward.
    cubalif_backward(BackwardBufs)
);

/// Adds the ops to `_core`.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cubalif_forward, m)?)?;
    m.add_function(wrap_pyfunction!(cubalif_backward, m)?)
}
