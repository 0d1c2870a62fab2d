//! The PyO3 module `snnrs._core`: validates and converts, then runs a kernel with the GIL released.
//!
//! Python (`snnrs.ops`) allocates every buffer with torch and passes contiguous tensors as
//! `(data_ptr, numel)` through `T` and `N`; this file never allocates outputs. Errors map to
//! ValueError / TypeError / RuntimeError in one place, and a panic never crosses into Python.
#![allow(clippy::too_many_arguments)] // flat signatures keep the Python call cheap

use crate::error::Error;
use crate::float::Float;
use crate::neuron::{self, sequence_len, BackwardIo, ForwardIo, GradParams, NeuronParams, RateIo};
use crate::surrogate::{Surrogate, SurrogateKind};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[cfg(feature = "cuda")]
#[path = "cuda/python.rs"]
mod cuda;

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::InvalidArgument(m) | Error::Shape(m) => PyValueError::new_err(m),
            Error::Dtype(m) => PyTypeError::new_err(m),
            Error::Runtime(m) => PyRuntimeError::new_err(m),
        }
    }
}

#[derive(Clone, Copy)]
enum Dtype {
    F32,
    F64,
}

fn dtype(name: &str) -> Result<Dtype, Error> {
    match name {
        "float32" => Ok(Dtype::F32),
        "float64" => Ok(Dtype::F64),
        other => {
            Err(Error::Dtype(format!("the CPU kernels support float32 and float64, got {other}")))
        }
    }
}

/// A buffer Python passed as `(data_ptr, numel)`.
#[derive(Clone, Copy)]
struct Buf {
    ptr: usize,
    len: usize,
}

impl Buf {
    fn checked<F>(self, name: &str) -> Result<*mut F, Error> {
        if self.len == 0 {
            return Ok(std::ptr::NonNull::<F>::dangling().as_ptr());
        }
        if self.ptr == 0 || !self.ptr.is_multiple_of(std::mem::align_of::<F>()) {
            return Err(Error::Runtime(format!("{name}: null or misaligned data pointer")));
        }
        Ok(self.ptr as *mut F)
    }

    /// # Safety
    /// `ptr` must address `len` initialised elements of type `F` that outlive the call.
    unsafe fn read<'a, F>(self, name: &str) -> Result<&'a [F], Error> {
        Ok(std::slice::from_raw_parts(self.checked::<F>(name)?, self.len))
    }

    /// # Safety
    /// As [`Buf::read`], and no other live slice may overlap it.
    unsafe fn write<'a, F>(self, name: &str) -> Result<&'a mut [F], Error> {
        Ok(std::slice::from_raw_parts_mut(self.checked::<F>(name)?, self.len))
    }
}

fn neuron_params(
    leak: f64,
    decay_input: bool,
    v_threshold: f64,
    v_reset: Option<f64>,
) -> Result<NeuronParams, Error> {
    let p = NeuronParams { leak, decay_input, v_threshold, v_reset };
    p.validate()?;
    Ok(p)
}

fn grad_params(detach_reset: bool, surrogate: &str, alpha: f64) -> Result<GradParams, Error> {
    Ok(GradParams {
        detach_reset,
        surrogate: Surrogate::new(SurrogateKind::from_name(surrogate)?, alpha)?,
    })
}

/// Runs `f` without the GIL, turning a panic into a RuntimeError.
fn compute<R: Send>(py: Python<'_>, f: impl FnOnce() -> Result<R, Error> + Send) -> PyResult<R> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .unwrap_or_else(|_| Err(Error::Runtime("internal error in an snnrs kernel".into())))
        .map_err(PyErr::from)
}

fn run_forward<F: Float>(
    p: &NeuronParams,
    steps: usize,
    n: usize,
    bufs: [usize; 5],
    threads: usize,
) -> Result<(), Error> {
    let tn = sequence_len(steps, n)?;
    let [x, v0, s, h, v] = bufs;
    // SAFETY: snnrs.ops passes distinct, contiguous tensors of these sizes and dtype F.
    let io = unsafe {
        ForwardIo {
            x: Buf { ptr: x, len: tn }.read("x")?,
            v0: Buf { ptr: v0, len: n }.read("v0")?,
            spikes: Buf { ptr: s, len: tn }.write("spikes")?,
            h_seq: Buf { ptr: h, len: tn }.write("h_seq")?,
            v: Buf { ptr: v, len: n }.write("v")?,
        }
    };
    neuron::forward::<F>(p, steps, io, threads)
}

/// Multi-step forward. Buffers: `x, v0, spikes, h_seq, v` (`[T, N]`, `[N]`, `[T, N]`, `[T, N]`, `[N]`).
#[pyfunction]
#[pyo3(signature = (dtype_name, steps, n, x, v0, spikes, h_seq, v, leak, decay_input, v_threshold, v_reset, threads))]
fn forward(
    py: Python<'_>,
    dtype_name: &str,
    steps: usize,
    n: usize,
    x: usize,
    v0: usize,
    spikes: usize,
    h_seq: usize,
    v: usize,
    leak: f64,
    decay_input: bool,
    v_threshold: f64,
    v_reset: Option<f64>,
    threads: usize,
) -> PyResult<()> {
    let p = neuron_params(leak, decay_input, v_threshold, v_reset)?;
    let bufs = [x, v0, spikes, h_seq, v];
    let dt = dtype(dtype_name)?;
    compute(py, move || match dt {
        Dtype::F32 => run_forward::<f32>(&p, steps, n, bufs, threads),
        Dtype::F64 => run_forward::<f64>(&p, steps, n, bufs, threads),
    })
}

fn run_backward<F: Float>(
    p: &NeuronParams,
    g: &GradParams,
    steps: usize,
    n: usize,
    bufs: [usize; 6],
    threads: usize,
) -> Result<Option<f64>, Error> {
    let tn = sequence_len(steps, n)?;
    let [gs, gv, h, v0, gx, gv0] = bufs;
    // SAFETY: as in run_forward; a zero pointer for grad_v / v0 means "absent".
    let io = unsafe {
        BackwardIo {
            grad_spikes: Buf { ptr: gs, len: tn }.read("grad_spikes")?,
            grad_v: if gv == 0 { None } else { Some(Buf { ptr: gv, len: n }.read("grad_v")?) },
            h_seq: Buf { ptr: h, len: tn }.read("h_seq")?,
            v0: if v0 == 0 { None } else { Some(Buf { ptr: v0, len: n }.read("v0")?) },
            grad_x: Buf { ptr: gx, len: tn }.write("grad_x")?,
            grad_v0: Buf { ptr: gv0, len: n }.write("grad_v0")?,
        }
    };
    neuron::backward::<F>(p, g, steps, io, threads)
}

/// BPTT backward. Buffers: `grad_spikes, grad_v (0: none), h_seq, v0 (0: no leak gradient),
/// grad_x, grad_v0`. Returns `dL/d(leak)` when `v0` is given, else None.
#[pyfunction]
#[pyo3(signature = (dtype_name, steps, n, grad_spikes, grad_v, h_seq, v0, grad_x, grad_v0, leak, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha, threads))]
fn backward(
    py: Python<'_>,
    dtype_name: &str,
    steps: usize,
    n: usize,
    grad_spikes: usize,
    grad_v: usize,
    h_seq: usize,
    v0: usize,
    grad_x: usize,
    grad_v0: usize,
    leak: f64,
    decay_input: bool,
    v_threshold: f64,
    v_reset: Option<f64>,
    detach_reset: bool,
    surrogate: &str,
    alpha: f64,
    threads: usize,
) -> PyResult<Option<f64>> {
    let p = neuron_params(leak, decay_input, v_threshold, v_reset)?;
    let g = grad_params(detach_reset, surrogate, alpha)?;
    let bufs = [grad_spikes, grad_v, h_seq, v0, grad_x, grad_v0];
    let dt = dtype(dtype_name)?;
    compute(py, move || match dt {
        Dtype::F32 => run_backward::<f32>(&p, &g, steps, n, bufs, threads),
        Dtype::F64 => run_backward::<f64>(&p, &g, steps, n, bufs, threads),
    })
}

fn run_rate<F: Float>(
    p: &NeuronParams,
    g: &GradParams,
    steps: usize,
    n: usize,
    bufs: [usize; 6],
    threads: usize,
) -> Result<(), Error> {
    let tn = sequence_len(steps, n)?;
    let [x, v0, s, v, rate, elig] = bufs;
    // SAFETY: as in run_forward.
    let io = unsafe {
        RateIo {
            x: Buf { ptr: x, len: tn }.read("x")?,
            v0: Buf { ptr: v0, len: n }.read("v0")?,
            spikes: Buf { ptr: s, len: tn }.write("spikes")?,
            v: Buf { ptr: v, len: n }.write("v")?,
            rate: Buf { ptr: rate, len: n }.write("rate")?,
            eligibility: Buf { ptr: elig, len: n }.write("eligibility")?,
        }
    };
    neuron::rate_forward::<F>(p, g, steps, io, threads)
}

/// Rate-mode forward. Buffers: `x, v0, spikes, v, rate, eligibility`.
#[pyfunction]
#[pyo3(signature = (dtype_name, steps, n, x, v0, spikes, v, rate, eligibility, leak, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha, threads))]
fn rate_forward(
    py: Python<'_>,
    dtype_name: &str,
    steps: usize,
    n: usize,
    x: usize,
    v0: usize,
    spikes: usize,
    v: usize,
    rate: usize,
    eligibility: usize,
    leak: f64,
    decay_input: bool,
    v_threshold: f64,
    v_reset: Option<f64>,
    detach_reset: bool,
    surrogate: &str,
    alpha: f64,
    threads: usize,
) -> PyResult<()> {
    let p = neuron_params(leak, decay_input, v_threshold, v_reset)?;
    let g = grad_params(detach_reset, surrogate, alpha)?;
    let bufs = [x, v0, spikes, v, rate, eligibility];
    let dt = dtype(dtype_name)?;
    compute(py, move || match dt {
        Dtype::F32 => run_rate::<f32>(&p, &g, steps, n, bufs, threads),
        Dtype::F64 => run_rate::<f64>(&p, &g, steps, n, bufs, threads),
    })
}

/// The surrogate names and their default parameters, for the Python side to validate against.
#[pyfunction]
fn surrogates() -> Vec<(&'static str, f64)> {
    SurrogateKind::ALL.iter().map(|k| (k.name(), k.default_alpha())).collect()
}

/// Runs the CPU kernels' parallel loops on the GNU OpenMP runtime at `path` (torch's own).
#[pyfunction]
fn attach_openmp(path: &str) -> PyResult<()> {
    Ok(crate::openmp::attach(path)?)
}

/// Chooses the attached OpenMP runtime (True) or rayon (False); returns whether OpenMP is used.
#[pyfunction]
fn use_openmp(enabled: bool) -> bool {
    crate::openmp::set_enabled(enabled);
    crate::openmp::active()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CHUNK", crate::parallel::CHUNK)?;
    m.add_function(wrap_pyfunction!(forward, m)?)?;
    m.add_function(wrap_pyfunction!(backward, m)?)?;
    m.add_function(wrap_pyfunction!(rate_forward, m)?)?;
    m.add_function(wrap_pyfunction!(surrogates, m)?)?;
    m.add_function(wrap_pyfunction!(attach_openmp, m)?)?;
    m.add_function(wrap_pyfunction!(use_openmp, m)?)?;
    #[cfg(feature = "cuda")]
    cuda::register(m)?;
    Ok(())
}
