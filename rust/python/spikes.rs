//! Spike packing in `_core` ([`crate::spikes`]): `pack_spikes(ctx, *, x, bits, flag=None)` and
//! `unpack_spikes(ctx, *, bits, out)`, buffers as `(address, element count, DType)` keywords
//! like every op's, checked in Rust before memory is touched ([`PackBufs::check`]).
//!
//! On the CPU, `pack_spikes` returns None when every element of `x` was a spike (then `bits`
//! holds them), else the index of the first that is not (then `bits` is all zero). On CUDA
//! (`flag`: one zeroed uint8 the kernel sets to 1 on a non-spike) both launch on the stream and
//! return the number of blocks; the caller reads the flag back and checks the padding bits of
//! an unpack.

use super::{compute, Context, Keywords};
use crate::spikes::{PackBufs, UnpackBufs};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// What a spike call returns: see the module documentation.
#[derive(IntoPyObject)]
enum Done {
    Cpu(Option<usize>),
    #[cfg(feature = "cuda")]
    Cuda(u32),
}

/// Packs `x` (n floating elements) into `bits` (ceil(n / 8) uint8); on CUDA, `flag` (one
/// uint8) is set to 1 when an element is not a spike.
#[pyfunction]
#[pyo3(signature = (ctx, **bufs))]
fn pack_spikes(py: Python<'_>, ctx: Context, bufs: Option<&Bound<'_, PyDict>>) -> PyResult<Done> {
    let mut k = Keywords::new(py, "pack_spikes", bufs);
    let b: PyResult<PackBufs> = take!(k, PackBufs { x, bits; flag });
    let b = b?;
    match ctx {
        // SAFETY: the buffers are tensors the caller holds alive for the call; `pack_cpu`
        // checks each against the others before making slices.
        Context::Cpu { threads } => {
            compute(py, move || unsafe { b.pack_cpu(threads) }).map(Done::Cpu)
        }
        #[cfg(feature = "cuda")]
        Context::Cuda(stream) => {
            compute(py, move || crate::cuda::pack_spikes(&b, stream)).map(Done::Cuda)
        }
    }
}

/// Unpacks `bits` (ceil(n / 8) uint8, padding bits 0) into `out` (n floating elements).
#[pyfunction]
#[pyo3(signature = (ctx, **bufs))]
fn unpack_spikes(py: Python<'_>, ctx: Context, bufs: Option<&Bound<'_, PyDict>>) -> PyResult<Done> {
    let mut k = Keywords::new(py, "unpack_spikes", bufs);
    let b: PyResult<UnpackBufs> = take!(k, UnpackBufs { bits, out; });
    let b = b?;
    match ctx {
        // SAFETY: as in `pack_spikes`.
        Context::Cpu { threads } => {
            compute(py, move || unsafe { b.unpack_cpu(threads) }).map(|()| Done::Cpu(None))
        }
        #[cfg(feature = "cuda")]
        Context::Cuda(stream) => {
            compute(py, move || crate::cuda::unpack_spikes(&b, stream)).map(Done::Cuda)
        }
    }
}

/// The spike kernels' CUDA entry points, `snnrs_<pack|unpack>_u<bits>` (not among
/// `cuda_kernel_names()`, the neuron kernels).
#[cfg(feature = "cuda")]
#[pyfunction]
fn cuda_spike_kernel_names() -> Vec<String> {
    crate::cuda::plan::spike_kernel_names()
}

/// Adds the functions to `_core`.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pack_spikes, m)?)?;
    m.add_function(wrap_pyfunction!(unpack_spikes, m)?)?;
    #[cfg(feature = "cuda")]
    m.add_function(wrap_pyfunction!(cuda_spike_kernel_names, m)?)?;
    Ok(())
}
