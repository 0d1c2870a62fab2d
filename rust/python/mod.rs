//! The PyO3 module `snnrs._core`: converts, then runs a kernel with the GIL released.
//!
//! Python (`snnrs.backends.cpu` and `.cuda`, called by `snnrs.ops`) validates every argument,
//! allocates every buffer with torch and passes each as a keyword, `x=(address, element count,
//! DType)`, collected here into the op's buffer set ([`ForwardBufs`], [`BackwardBufs`],
//! [`RateBufs`]); the neuron parameters cross once as a [`Params`] record, and where to run as an
//! execution context, `Cpu(threads)` or (feature `cuda`, [`cuda`]) `Cuda(device, stream)`. Each
//! op is one function, `op(ctx, params, steps, **bufs)`, whatever the device. Every buffer set is
//! checked again here ([`crate::boundary`]) before memory is touched, so a mistake on the Python
//! side is an error, never an out-of-bounds access. Errors map to ValueError / TypeError /
//! RuntimeError in one place, and a panic never crosses into Python.

use crate::boundary::{BackwardBufs, ForwardBufs, RateBufs, RawBuf};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::neuron::{self, GradParams, NeuronParams};
use crate::surrogate::{Surrogate, SurrogateKind};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::panic::{catch_unwind, AssertUnwindSafe};

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "cuda")]
use crate::cuda::{Launched, Stream};

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::InvalidArgument(m) | Error::Shape(m) => PyValueError::new_err(m),
            Error::Dtype(m) => PyTypeError::new_err(m),
            Error::Runtime(m) => PyRuntimeError::new_err(m),
        }
    }
}

/// A buffer crosses as `(address, element count, DType)`.
impl<'a, 'py> FromPyObject<'a, 'py> for RawBuf {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let (addr, len, dtype) = obj.extract()?;
        Ok(RawBuf { addr, len, dtype })
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

/// The execution context of the CPU kernels: `threads` threads (torch's count).
#[pyclass(module = "snnrs._core", frozen, get_all, new = "from_fields")]
struct Cpu {
    threads: usize,
}

/// Where an op runs, from the `ctx` argument: `_core.Cpu`, or `_core.Cuda` (feature `cuda`).
enum Context {
    Cpu {
        threads: usize,
    },
    #[cfg(feature = "cuda")]
    Cuda(Stream),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Context {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(cpu) = obj.cast::<Cpu>() {
            return Ok(Context::Cpu { threads: cpu.get().threads });
        }
        #[cfg(feature = "cuda")]
        if let Ok(c) = obj.cast::<cuda::Cuda>() {
            return Ok(Context::Cuda(c.get().stream()));
        }
        let expected = if cfg!(feature = "cuda") { "_core.Cpu or _core.Cuda" } else { "_core.Cpu" };
        Err(PyTypeError::new_err(format!(
            "ctx must be an execution context, {expected}, got {}",
            obj.get_type().name()?
        )))
    }
}

/// What an op returns: on the CPU, None or (backward with `v0`) PLIF's `dL/d(leak)`; on CUDA,
/// `(kernel index into cuda_kernel_names(), blocks)`.
#[derive(IntoPyObject)]
enum Ran {
    Cpu(Option<f64>),
    #[cfg(feature = "cuda")]
    Cuda((usize, u32)),
}

/// An op's buffers, given as the call's keywords, `name=(address, element count, DType)`: each
/// taken by its name. A required one missing or None, or a name the op does not have, is a
/// TypeError, as in any Python call; a bad description notes which buffer it was.
struct Keywords<'a, 'py> {
    py: Python<'py>,
    op: &'static str,
    given: Option<&'a Bound<'py, PyDict>>,
    taken: usize,
}

impl<'a, 'py> Keywords<'a, 'py> {
    fn new(py: Python<'py>, op: &'static str, given: Option<&'a Bound<'py, PyDict>>) -> Self {
        Keywords { py, op, given, taken: 0 }
    }

    /// The buffer `name` (`key`: the same, interned), None when absent or None.
    fn opt(&mut self, key: &Bound<'py, PyString>, name: &'static str) -> PyResult<Option<RawBuf>> {
        let Some(value) = self.given.map(|d| d.get_item(key)).transpose()?.flatten() else {
            return Ok(None);
        };
        self.taken += 1;
        value.extract().inspect_err(|e: &PyErr| {
            // As PyO3 does for arguments (Python 3.11+; a note is all that is lost before).
            let note = format!("while processing '{name}'");
            let _ = e.value(self.py).call_method1("add_note", (note,));
        })
    }

    /// The buffer `name`, which must be given.
    fn req(&mut self, key: &Bound<'py, PyString>, name: &'static str) -> PyResult<RawBuf> {
        self.opt(key, name)?
            .ok_or_else(|| PyTypeError::new_err(format!("{}() needs the buffer '{name}'", self.op)))
    }

    /// Fails on a keyword not taken: one not among the op's `names`.
    fn finish(self, names: &[&str]) -> PyResult<()> {
        let Some(given) = self.given.filter(|d| d.len() > self.taken) else { return Ok(()) };
        for key in given.keys() {
            let key = key.str()?;
            if !names.contains(&key.to_str()?) {
                return Err(PyTypeError::new_err(format!("{}() has no buffer '{key}'", self.op)));
            }
        }
        Ok(())
    }
}

/// `Ok($bufs)` from the keywords `$k`, each buffer taken by its field's name (the required ones,
/// then after `;` the optional ones), or the first error; no other keyword is allowed.
macro_rules! take {
    ($k:ident, $bufs:ident { $($req:ident),* ; $($opt:ident),* }) => {{
        let bufs = $bufs {
            $($req: $k.req(pyo3::intern!($k.py, stringify!($req)), stringify!($req))?,)*
            $($opt: $k.opt(pyo3::intern!($k.py, stringify!($opt)), stringify!($opt))?,)*
        };
        $k.finish(&[$(stringify!($req),)* $(stringify!($opt),)*])?;
        Ok(bufs)
    }};
}

/// One op: its buffer set, collected from the keywords, and how each device runs it.
trait Op: Copy + Send + Sync {
    /// Takes every buffer of the op from `k`.
    fn collect(k: Keywords<'_, '_>) -> PyResult<Self>;

    /// The element type the CPU kernels compute in: that of this buffer.
    fn cpu_dtype(&self) -> DType;

    /// Runs the CPU kernels in `F` on `threads` threads.
    fn run_cpu<F: Float>(self, r: &Params, steps: usize, threads: usize) -> Result<Option<f64>>;

    /// Launches the CUDA kernels on `stream`.
    #[cfg(feature = "cuda")]
    fn run_cuda(self, r: &Params, steps: usize, stream: Stream) -> Result<Launched>;
}

/// Runs the op of the buffer set `b` in `ctx`: checks the element type, then computes without
/// the GIL (where the boundary checks the buffers against each other).
fn run<B: Op>(py: Python<'_>, ctx: Context, r: Params, steps: usize, b: B) -> PyResult<Ran> {
    match ctx {
        Context::Cpu { threads } => {
            let kernels = match b.cpu_dtype() {
                DType::F64 => B::run_cpu::<f64>,
                DType::F32 => B::run_cpu::<f32>,
                other => {
                    return Err(Error::Dtype(format!(
                        "the CPU kernels support float32 and float64, got {}",
                        other.name()
                    ))
                    .into())
                }
            };
            compute(py, move || kernels(b, &r, steps, threads)).map(Ran::Cpu)
        }
        #[cfg(feature = "cuda")]
        Context::Cuda(stream) => compute(py, move || b.run_cuda(&r, steps, stream))
            .map(|l| Ran::Cuda((l.kernel.index(), l.blocks))),
    }
}

impl Op for ForwardBufs {
    fn collect(mut k: Keywords<'_, '_>) -> PyResult<Self> {
        take!(k, ForwardBufs { x, v0, spikes, h_seq, v; leak })
    }

    fn cpu_dtype(&self) -> DType {
        self.x.dtype
    }

    fn run_cpu<F: Float>(self, r: &Params, steps: usize, threads: usize) -> Result<Option<f64>> {
        // SAFETY: the buffers are tensors the backend holds alive for the call; `cpu` checks
        // each against the others before making slices.
        let (io, leak) = unsafe { self.cpu::<F>(steps)? };
        neuron::forward::<F>(&r.neuron(leak), steps, io, threads).map(|()| None)
    }

    #[cfg(feature = "cuda")]
    fn run_cuda(self, r: &Params, steps: usize, stream: Stream) -> Result<Launched> {
        crate::cuda::forward(&r.p, steps, &self, stream)
    }
}

impl Op for BackwardBufs {
    fn collect(mut k: Keywords<'_, '_>) -> PyResult<Self> {
        take!(k, BackwardBufs { grad_spikes, h_seq, grad_x, grad_v0; grad_v, v0, leak, partials })
    }

    fn cpu_dtype(&self) -> DType {
        self.h_seq.dtype
    }

    fn run_cpu<F: Float>(self, r: &Params, steps: usize, threads: usize) -> Result<Option<f64>> {
        // SAFETY: as for ForwardBufs.
        let (io, leak) = unsafe { self.cpu::<F>(steps)? };
        neuron::backward::<F>(&r.neuron(leak), &r.g, steps, io, threads)
    }

    #[cfg(feature = "cuda")]
    fn run_cuda(self, r: &Params, steps: usize, stream: Stream) -> Result<Launched> {
        crate::cuda::backward(&r.p, &r.g, steps, &self, stream)
    }
}

impl Op for RateBufs {
    fn collect(mut k: Keywords<'_, '_>) -> PyResult<Self> {
        take!(k, RateBufs { x, v0, spikes, v, rate, eligibility; leak })
    }

    fn cpu_dtype(&self) -> DType {
        self.x.dtype
    }

    fn run_cpu<F: Float>(self, r: &Params, steps: usize, threads: usize) -> Result<Option<f64>> {
        // SAFETY: as for ForwardBufs.
        let (io, leak) = unsafe { self.cpu::<F>(steps)? };
        neuron::rate_forward::<F>(&r.neuron(leak), &r.g, steps, io, threads).map(|()| None)
    }

    #[cfg(feature = "cuda")]
    fn run_cuda(self, r: &Params, steps: usize, stream: Stream) -> Result<Launched> {
        crate::cuda::rate_forward(&r.p, &r.g, steps, &self, stream)
    }
}

/// Defines the `_core` function `$name(ctx, params, steps, **bufs)` of the op with buffer set
/// `$bufs`, the same on every device: collects the buffers, then [`run`]s it.
macro_rules! op_function {
    ($(#[$doc:meta])* $name:ident($bufs:ty)) => {
        $(#[$doc])*
        #[pyfunction]
        #[pyo3(signature = (ctx, params, steps, **bufs))]
        fn $name(
            py: Python<'_>,
            ctx: Context,
            params: &Bound<'_, Params>,
            steps: usize,
            bufs: Option<&Bound<'_, PyDict>>,
        ) -> PyResult<Ran> {
            let b = <$bufs>::collect(Keywords::new(py, stringify!($name), bufs))?;
            run(py, ctx, *params.get(), steps, b)
        }
    };
}

op_function!(
    /// Multi-step forward over `x [T, N]`, `v0 [N]` into `spikes, h_seq [T, N]`, `v [N]`;
    /// `leak`: PLIF's `sigmoid(w)` (one element) or None. On CUDA, `h_seq` is float32 whatever
    /// `x` is.
    forward(ForwardBufs)
);

op_function!(
    /// BPTT backward from `h_seq [T, N]`: writes `grad_x [T, N]` and `grad_v0 [N]`; `grad_v`
    /// (None: zero) and `v0` (None: no leak gradient) are `[N]`. On the CPU, returns
    /// `dL/d(leak)` when `v0` is given; on CUDA, block `i` writes its sum of it to `partials[i]`
    /// (float64, at least `cuda_max_blocks(N)` elements, only with `v0`).
    backward(BackwardBufs)
);

op_function!(
    /// Rate-mode forward over `x [T, N]`, `v0 [N]` into `spikes [T, N]`, `v, rate,
    /// eligibility [N]`.
    rate_forward(RateBufs)
);

mod cuba;
mod event_conv;
mod spikes;

/// Runs `f` without the GIL, turning a panic into a RuntimeError.
fn compute<R: Send>(py: Python<'_>, f: impl FnOnce() -> Result<R> + Send) -> PyResult<R> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .unwrap_or_else(|_| Err(Error::Runtime("internal error in an snnrs kernel".into())))
        .map_err(PyErr::from)
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
    m.add_class::<DType>()?;
    m.add_class::<Params>()?;
    m.add_class::<Cpu>()?;
    m.add_function(wrap_pyfunction!(forward, m)?)?;
    m.add_function(wrap_pyfunction!(backward, m)?)?;
    m.add_function(wrap_pyfunction!(rate_forward, m)?)?;
    cuba::register(m)?;
    spikes::register(m)?;
    event_conv::register(m)?;
    m.add_function(wrap_pyfunction!(surrogates, m)?)?;
    m.add_function(wrap_pyfunction!(attach_openmp, m)?)?;
    m.add_function(wrap_pyfunction!(use_openmp, m)?)?;
    #[cfg(feature = "cuda")]
    cuda::register(m)?;
    Ok(())
}
