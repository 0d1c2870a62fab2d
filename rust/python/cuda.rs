//! The CUDA part of `snnrs._core` (feature `cuda`): the execution context `Cuda(device, stream)`
//! that the ops of [`super`] launch in, and the kernels' diagnostics. Buffers are
//! `(address, element count, DType)` of contiguous CUDA tensors torch allocated, checked by
//! [`crate::boundary`] like the CPU ones; launches return `(kernel index, blocks)`, the index
//! into `cuda_kernel_names()`.

use super::compute;
use crate::cuda::plan::{all_kernel_names, max_grid, missing_entries, Target, BLOCK};
use crate::cuda::{nvrtc, Stream};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The execution context of the CUDA kernels: torch's device index of the tensors and its
/// current stream there (`torch.cuda.current_stream(device).cuda_stream`).
#[pyclass(module = "snnrs._core", frozen, get_all, new = "from_fields")]
pub(super) struct Cuda {
    device: i32,
    stream: u64,
}

impl Cuda {
    pub(super) fn stream(&self) -> Stream {
        Stream { device: self.device, handle: self.stream }
    }
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
    m.add("CUDA_BLOCK", BLOCK)?;
    m.add_class::<Cuda>()?;
    m.add_function(wrap_pyfunction!(cuda_max_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(cuda_kernel_names, m)?)?;
    m.add_function(wrap_pyfunction!(cuda_compile, m)?)?;
    Ok(())
}
