//! The CUDA functions of `snnrs._core` (feature `cuda`): convert, then launch with the GIL
//! released. Buffers are `(address, element count, DType)` of contiguous CUDA tensors torch
//! allocated, checked by [`crate::boundary`] like the CPU ones. Each launch returns
//! `(kernel index, blocks)`; the index points into `cuda_kernel_names()`.

use super::{compute, Params};
use crate::boundary::{BackwardBufs, ForwardBufs, RateBufs, RawBuf};
use crate::cuda::plan::{all_kernel_names, max_grid, missing_entries, Dtype, Target};
use crate::cuda::{self, nvrtc, Launched, Stream};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn out(l: Launched) -> (usize, u32) {
    (l.kernel.index(), l.blocks)
}

/// The kernels' storage type: the one of `b`, which must have a CUDA kernel.
fn dtype(b: &RawBuf) -> Result<Dtype, crate::Error> {
    Dtype::try_from(b.dtype)
}

/// Forward on CUDA: `x [T, N]`, `v0 [N]` into `spikes [T, N]`, `h_seq [T, N]` (float32),
/// `v [N]`; `leak`: PLIF's float32 `sigmoid(w)` on the device, or None.
#[pyfunction]
#[pyo3(signature = (params, device, cuda_stream, steps, x, v0, spikes, h_seq, v, leak))]
#[allow(clippy::too_many_arguments)]
fn cuda_forward(
    py: Python<'_>,
    params: &Bound<'_, Params>,
    device: i32,
    cuda_stream: u64,
    steps: usize,
    x: RawBuf,
    v0: RawBuf,
    spikes: RawBuf,
    h_seq: RawBuf,
    v: RawBuf,
    leak: Option<RawBuf>,
) -> PyResult<(usize, u32)> {
    let dt = dtype(&x)?;
    let b = ForwardBufs { x, v0, spikes, h_seq, v, leak };
    let (p, stream) = (params.get().p, Stream { device, handle: cuda_stream });
    compute(py, move || cuda::forward(dt, &p, steps, &b, stream)).map(out)
}

/// BPTT backward on CUDA: as the CPU `backward`, plus `partials` (float64, at least
/// `cuda_max_blocks(N)` elements, only with `v0`), where block `i` writes its sum of
/// `dL/d(leak)`.
#[pyfunction]
#[pyo3(signature = (params, device, cuda_stream, steps, grad_spikes, grad_v, h_seq, v0, grad_x, grad_v0, leak, partials))]
#[allow(clippy::too_many_arguments)]
fn cuda_backward(
    py: Python<'_>,
    params: &Bound<'_, Params>,
    device: i32,
    cuda_stream: u64,
    steps: usize,
    grad_spikes: RawBuf,
    grad_v: Option<RawBuf>,
    h_seq: RawBuf,
    v0: Option<RawBuf>,
    grad_x: RawBuf,
    grad_v0: RawBuf,
    leak: Option<RawBuf>,
    partials: Option<RawBuf>,
) -> PyResult<(usize, u32)> {
    let dt = dtype(&grad_spikes)?;
    let b = BackwardBufs { grad_spikes, grad_v, h_seq, v0, grad_x, grad_v0, leak, partials };
    let (r, stream) = (*params.get(), Stream { device, handle: cuda_stream });
    compute(py, move || cuda::backward(dt, &r.p, &r.g, steps, &b, stream)).map(out)
}

/// Rate-mode forward on CUDA: `x [T, N]`, `v0 [N]` into `spikes [T, N]`, `v, rate,
/// eligibility [N]`.
#[pyfunction]
#[pyo3(signature = (params, device, cuda_stream, steps, x, v0, spikes, v, rate, eligibility, leak))]
#[allow(clippy::too_many_arguments)]
fn cuda_rate_forward(
    py: Python<'_>,
    params: &Bound<'_, Params>,
    device: i32,
    cuda_stream: u64,
    steps: usize,
    x: RawBuf,
    v0: RawBuf,
    spikes: RawBuf,
    v: RawBuf,
    rate: RawBuf,
    eligibility: RawBuf,
    leak: Option<RawBuf>,
) -> PyResult<(usize, u32)> {
    let dt = dtype(&x)?;
    let b = RateBufs { x, v0, spikes, v, rate, eligibility, leak };
    let (r, stream) = (*params.get(), Stream { device, handle: cuda_stream });
    compute(py, move || cuda::rate_forward(dt, &r.p, &r.g, steps, &b, stream)).map(out)
}

/// The most blocks a launch over `n` neurons uses: the length `partials` needs.
#[pyfunction]
fn cuda_max_blocks(n: u64) -> PyResult<u32> {
    Ok(max_grid(n)?)
}

/// Every kernel entry point, by name, in the order of the indices the launches return.
#[pyfunction]
fn cuda_kernel_names() -> Vec<String> {
    all_kernel_names()
}

/// Compiles every kernel with NVRTC for compute capability `arch` (e.g. 90), as PTX and as a
/// cubin, with no GPU needed. Returns `{"nvrtc": "13.2", "ptx": str, "cubin_bytes": int}`;
/// raises RuntimeError when no libnvrtc loads, compilation fails or an entry point is missing.
#[pyfunction]
fn cuda_compile(py: Python<'_>, arch: u32) -> PyResult<Bound<'_, PyDict>> {
    let (version, ptx, cubin) = compute(py, move || {
        let (major, minor) = nvrtc::version()?;
        let ptx = nvrtc::compile(Target::Ptx(arch))?;
        let text = ptx.ptx().unwrap_or_default().to_owned();
        let missing = missing_entries(&text, &all_kernel_names());
        if !missing.is_empty() {
            return Err(crate::Error::Runtime(format!(
                "kernels missing from the PTX: {missing:?}"
            )));
        }
        let cubin = nvrtc::compile(Target::Cubin(arch))?;
        Ok((format!("{major}.{minor}"), text, cubin.image.len()))
    })?;
    let d = PyDict::new(py);
    d.set_item("nvrtc", version)?;
    d.set_item("ptx", ptx)?;
    d.set_item("cubin_bytes", cubin)?;
    Ok(d)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CUDA_BLOCK", crate::cuda::plan::BLOCK)?;
    m.add_function(wrap_pyfunction!(cuda_forward, m)?)?;
    m.add_function(wrap_pyfunction!(cuda_backward, m)?)?;
    m.add_function(wrap_pyfunction!(cuda_rate_forward, m)?)?;
    m.add_function(wrap_pyfunction!(cuda_max_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(cuda_kernel_names, m)?)?;
    m.add_function(wrap_pyfunction!(cuda_compile, m)?)?;
    Ok(())
}
