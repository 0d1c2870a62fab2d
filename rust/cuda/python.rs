//! The CUDA functions of `snnrs._core` (feature `cuda`): validate and convert, then launch with
//! the GIL released. Buffers are `data_ptr()`s of contiguous CUDA tensors torch allocated; 0
//! marks an optional one absent. Each launch returns `(kernel name, blocks)`.
#![allow(clippy::too_many_arguments)] // flat signatures keep the Python call cheap

use super::{compute, grad_params, neuron_params};
use crate::cuda::plan::{all_kernel_names, max_grid, missing_entries, Dtype, Target};
use crate::cuda::{self, nvrtc, BackwardBufs, ForwardBufs, Launched, RateBufs, Stream};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn stream(device: i32, stream: u64) -> Stream {
    Stream { device, handle: stream }
}

fn out(l: Launched) -> (String, u32) {
    (l.kernel, l.blocks)
}

/// Forward on CUDA. Buffers: `x, v0, spikes, h_seq (float32), v`; `leak_ptr`: PLIF's float32
/// `sigmoid(w)` on the device, or 0 to use `leak`.
#[pyfunction]
#[pyo3(signature = (dtype_name, device, cuda_stream, steps, n, x, v0, spikes, h_seq, v, leak_ptr, leak, decay_input, v_threshold, v_reset))]
fn cuda_forward(
    py: Python<'_>,
    dtype_name: &str,
    device: i32,
    cuda_stream: u64,
    steps: usize,
    n: usize,
    x: u64,
    v0: u64,
    spikes: u64,
    h_seq: u64,
    v: u64,
    leak_ptr: u64,
    leak: f64,
    decay_input: bool,
    v_threshold: f64,
    v_reset: Option<f64>,
) -> PyResult<(String, u32)> {
    let p = neuron_params(leak, decay_input, v_threshold, v_reset)?;
    let dtype = Dtype::from_torch(dtype_name)?;
    let b = ForwardBufs { x, v0, spikes, h_seq, v, leak: leak_ptr };
    compute(py, move || cuda::forward(dtype, &p, steps, n, b, stream(device, cuda_stream))).map(out)
}

/// BPTT backward on CUDA. Buffers: `grad_spikes, grad_v (0: none), h_seq, v0 (0: no leak
/// gradient), grad_x, grad_v0`, and `partials` (float64, `partials_len >= cuda_max_blocks(n)`):
/// with `v0`, block `i` writes its sum of `dL/d(leak)` to `partials[i]`.
#[pyfunction]
#[pyo3(signature = (dtype_name, device, cuda_stream, steps, n, grad_spikes, grad_v, h_seq, v0, grad_x, grad_v0, partials, partials_len, leak_ptr, leak, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha))]
fn cuda_backward(
    py: Python<'_>,
    dtype_name: &str,
    device: i32,
    cuda_stream: u64,
    steps: usize,
    n: usize,
    grad_spikes: u64,
    grad_v: u64,
    h_seq: u64,
    v0: u64,
    grad_x: u64,
    grad_v0: u64,
    partials: u64,
    partials_len: u64,
    leak_ptr: u64,
    leak: f64,
    decay_input: bool,
    v_threshold: f64,
    v_reset: Option<f64>,
    detach_reset: bool,
    surrogate: &str,
    alpha: f64,
) -> PyResult<(String, u32)> {
    let p = neuron_params(leak, decay_input, v_threshold, v_reset)?;
    let g = grad_params(detach_reset, surrogate, alpha)?;
    let dtype = Dtype::from_torch(dtype_name)?;
    let b = BackwardBufs {
        grad_spikes,
        grad_v,
        h_seq,
        v0,
        grad_x,
        grad_v0,
        partials,
        partials_len,
        leak: leak_ptr,
    };
    compute(py, move || cuda::backward(dtype, &p, &g, steps, n, b, stream(device, cuda_stream)))
        .map(out)
}

/// Rate-mode forward on CUDA. Buffers: `x, v0, spikes, v, rate, eligibility`.
#[pyfunction]
#[pyo3(signature = (dtype_name, device, cuda_stream, steps, n, x, v0, spikes, v, rate, eligibility, leak_ptr, leak, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha))]
fn cuda_rate_forward(
    py: Python<'_>,
    dtype_name: &str,
    device: i32,
    cuda_stream: u64,
    steps: usize,
    n: usize,
    x: u64,
    v0: u64,
    spikes: u64,
    v: u64,
    rate: u64,
    eligibility: u64,
    leak_ptr: u64,
    leak: f64,
    decay_input: bool,
    v_threshold: f64,
    v_reset: Option<f64>,
    detach_reset: bool,
    surrogate: &str,
    alpha: f64,
) -> PyResult<(String, u32)> {
    let p = neuron_params(leak, decay_input, v_threshold, v_reset)?;
    let g = grad_params(detach_reset, surrogate, alpha)?;
    let dtype = Dtype::from_torch(dtype_name)?;
    let b = RateBufs { x, v0, spikes, v, rate, eligibility, leak: leak_ptr };
    compute(py, move || cuda::rate_forward(dtype, &p, &g, steps, n, b, stream(device, cuda_stream)))
        .map(out)
}

/// The most blocks a launch over `n` neurons uses: the length `partials` needs.
#[pyfunction]
fn cuda_max_blocks(n: u64) -> PyResult<u32> {
    Ok(max_grid(n)?)
}

/// Every kernel entry point, by name.
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
