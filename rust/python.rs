//! The PyO3 module `snnrs._core`: converts, then runs a kernel with the GIL released.
//!
//! Python (`snnrs.ops`) validates every argument, allocates every buffer with torch and passes
//! each as `(address, element count, DType)`; the neuron parameters cross once as a [`Params`]
//! record. Every buffer set is checked again here ([`crate::boundary`]) before memory is touched,
//! so a mistake on the Python side is an error, never an out-of-bounds access. Errors map to
//! ValueError / TypeError / RuntimeError in one place, and a panic never crosses into Python.

use crate::boundary::{BackwardBufs, DType, ForwardBufs, RateBufs, RawBuf};
use crate::error::Error;
use crate::float::Float;
use crate::neuron::{self, GradParams, NeuronParams};
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

/// A buffer's element type, as Python names it: `_core.DType.F32`.
#[pyclass(name = "DType", module = "snnrs._core", frozen, eq, eq_int, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
enum PyDType {
    F16,
    BF16,
    F32,
    F64,
}

impl From<PyDType> for DType {
    fn from(d: PyDType) -> DType {
        match d {
            PyDType::F16 => DType::F16,
            PyDType::BF16 => DType::BF16,
            PyDType::F32 => DType::F32,
            PyDType::F64 => DType::F64,
        }
    }
}

/// A buffer crosses as `(address, element count, DType)`.
impl<'a, 'py> FromPyObject<'a, 'py> for RawBuf {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let (addr, len, dtype): (u64, u64, PyDType) = obj.extract()?;
        Ok(RawBuf { addr, len, dtype: dtype.into() })
    }
}

/// The seven neuron scalars, validated once: `Params(leak, decay_input, v_threshold, v_reset,
/// detach_reset, surrogate, alpha)`. With a `leak` buffer (PLIF), the kernels use its value.
#[pyclass(module = "snnrs._core", frozen)]
#[derive(Clone, Copy)]
struct Params {
    p: NeuronParams,
    g: GradParams,
}

#[pymethods]
impl Params {
    #[new]
    fn new(
        leak: f64,
        decay_input: bool,
        v_threshold: f64,
        v_reset: Option<f64>,
        detach_reset: bool,
        surrogate: &str,
        alpha: f64,
    ) -> PyResult<Self> {
        let p = NeuronParams { leak, decay_input, v_threshold, v_reset };
        p.validate()?;
        let surrogate = Surrogate::new(SurrogateKind::from_name(surrogate)?, alpha)?;
        Ok(Params { p, g: GradParams { detach_reset, surrogate } })
    }

    /// The seven values, in the constructor's order.
    #[getter]
    fn args(&self) -> (f64, bool, f64, Option<f64>, bool, &'static str, f64) {
        let (p, s) = (self.p, self.g.surrogate);
        (
            p.leak,
            p.decay_input,
            p.v_threshold,
            p.v_reset,
            self.g.detach_reset,
            s.kind.name(),
            s.alpha,
        )
    }

    fn __repr__(&self) -> String {
        format!("Params{:?}", self.args())
    }
}

impl Params {
    /// The neuron parameters with PLIF's leak, when given, in place of the record's (the
    /// kernels validate them).
    pub(crate) fn neuron(&self, leak: Option<f64>) -> NeuronParams {
        NeuronParams { leak: leak.unwrap_or(self.p.leak), ..self.p }
    }
}

/// The element type the CPU kernels run in: the inputs' own.
fn cpu_dtype(b: &RawBuf) -> Result<DType, Error> {
    match b.dtype {
        d @ (DType::F32 | DType::F64) => Ok(d),
        other => Err(Error::Dtype(format!(
            "the CPU kernels support float32 and float64, got {}",
            other.name()
        ))),
    }
}

/// Runs `f` without the GIL, turning a panic into a RuntimeError.
fn compute<R: Send>(py: Python<'_>, f: impl FnOnce() -> Result<R, Error> + Send) -> PyResult<R> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .unwrap_or_else(|_| Err(Error::Runtime("internal error in an snnrs kernel".into())))
        .map_err(PyErr::from)
}

/// Runs `$run::<F>()` with `F` the element type `$dtype` names (float32 or float64).
macro_rules! on_cpu_dtype {
    ($dtype:expr, $run:ident) => {
        match $dtype {
            DType::F64 => $run::<f64>,
            _ => $run::<f32>,
        }
    };
}

fn run_forward<F: Float>(
    params: Params,
    steps: usize,
    b: ForwardBufs,
    threads: usize,
) -> Result<(), Error> {
    // SAFETY: the buffers are tensors snnrs.ops holds alive for the call; `cpu` checks each
    // against the others before making slices.
    let (io, leak) = unsafe { b.cpu::<F>(steps)? };
    neuron::forward::<F>(&params.neuron(leak), steps, io, threads)
}

/// Multi-step forward over `x [T, N]`, `v0 [N]` into `spikes, h_seq [T, N]`, `v [N]`; `leak`:
/// PLIF's `sigmoid(w)` (one float32 or float64) or None.
#[pyfunction]
#[pyo3(signature = (params, steps, x, v0, spikes, h_seq, v, leak, threads))]
#[allow(clippy::too_many_arguments)]
fn forward(
    py: Python<'_>,
    params: &Bound<'_, Params>,
    steps: usize,
    x: RawBuf,
    v0: RawBuf,
    spikes: RawBuf,
    h_seq: RawBuf,
    v: RawBuf,
    leak: Option<RawBuf>,
    threads: usize,
) -> PyResult<()> {
    let run = on_cpu_dtype!(cpu_dtype(&x)?, run_forward);
    let b = ForwardBufs { x, v0, spikes, h_seq, v, leak };
    let params = *params.get();
    compute(py, move || run(params, steps, b, threads))
}

fn run_backward<F: Float>(
    params: Params,
    steps: usize,
    b: BackwardBufs,
    threads: usize,
) -> Result<Option<f64>, Error> {
    // SAFETY: as in run_forward.
    let (io, leak) = unsafe { b.cpu::<F>(steps)? };
    neuron::backward::<F>(&params.neuron(leak), &params.g, steps, io, threads)
}

/// BPTT backward from `h_seq [T, N]`: writes `grad_x [T, N]` and `grad_v0 [N]`; `grad_v` (None:
/// zero) and `v0` (None: no leak gradient) are `[N]`. Returns `dL/d(leak)` when `v0` is given.
#[pyfunction]
#[pyo3(signature = (params, steps, grad_spikes, grad_v, h_seq, v0, grad_x, grad_v0, leak, threads))]
#[allow(clippy::too_many_arguments)]
fn backward(
    py: Python<'_>,
    params: &Bound<'_, Params>,
    steps: usize,
    grad_spikes: RawBuf,
    grad_v: Option<RawBuf>,
    h_seq: RawBuf,
    v0: Option<RawBuf>,
    grad_x: RawBuf,
    grad_v0: RawBuf,
    leak: Option<RawBuf>,
    threads: usize,
) -> PyResult<Option<f64>> {
    let run = on_cpu_dtype!(cpu_dtype(&h_seq)?, run_backward);
    let partials = None;
    let b = BackwardBufs { grad_spikes, grad_v, h_seq, v0, grad_x, grad_v0, leak, partials };
    let params = *params.get();
    compute(py, move || run(params, steps, b, threads))
}

fn run_rate<F: Float>(
    params: Params,
    steps: usize,
    b: RateBufs,
    threads: usize,
) -> Result<(), Error> {
    // SAFETY: as in run_forward.
    let (io, leak) = unsafe { b.cpu::<F>(steps)? };
    neuron::rate_forward::<F>(&params.neuron(leak), &params.g, steps, io, threads)
}

/// Rate-mode forward over `x [T, N]`, `v0 [N]` into `spikes [T, N]`, `v, rate, eligibility [N]`.
#[pyfunction]
#[pyo3(signature = (params, steps, x, v0, spikes, v, rate, eligibility, leak, threads))]
#[allow(clippy::too_many_arguments)]
fn rate_forward(
    py: Python<'_>,
    params: &Bound<'_, Params>,
    steps: usize,
    x: RawBuf,
    v0: RawBuf,
    spikes: RawBuf,
    v: RawBuf,
    rate: RawBuf,
    eligibility: RawBuf,
    leak: Option<RawBuf>,
    threads: usize,
) -> PyResult<()> {
    let run = on_cpu_dtype!(cpu_dtype(&x)?, run_rate);
    let b = RateBufs { x, v0, spikes, v, rate, eligibility, leak };
    let params = *params.get();
    compute(py, move || run(params, steps, b, threads))
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
    m.add_class::<PyDType>()?;
    m.add_class::<Params>()?;
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
