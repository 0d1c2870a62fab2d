//! The event convolution in `_core` ([`crate::event_conv`], CPU only):
//! `event_conv2d(ctx, shape, stride, padding, groups, *, x, weight, y, bias=None)` and
//! `event_conv2d_weight(ctx, shape, stride, padding, groups, *, x, grad_y, grad_weight)`.
//! `shape` is `(batch, c_in, height, width, c_out, kernel_h, kernel_w)`; `stride` and `padding`
//! are `(h, w)` pairs; buffers are float32 `(address, element count, DType)` keywords, checked
//! against the geometry in Rust before memory is touched. Each returns None when every element
//! of `x` was a spike (+0.0 or +1.0), else the index of the first that is not (the output is
//! then unspecified).

use super::{compute, Context, Keywords};
use crate::event_conv::{ForwardBufs, Geometry, WeightGradBufs};
use pyo3::prelude::*;
use pyo3::types::PyDict;

type Shape = (usize, usize, usize, usize, usize, usize, usize);

fn geometry(
    shape: Shape,
    stride: (usize, usize),
    padding: (usize, usize),
    groups: usize,
) -> Geometry {
    let (batch, c_in, height, width, c_out, kh, kw) = shape;
    Geometry { batch, c_in, height, width, c_out, kernel: (kh, kw), stride, padding, groups }
}

fn threads(ctx: Context) -> PyResult<usize> {
    match ctx {
        Context::Cpu { threads } => Ok(threads),
        #[cfg(feature = "cuda")]
        Context::Cuda(_) => Err(pyo3::exceptions::PyRuntimeError::new_err(
            "the event convolution runs on the CPU only",
        )),
    }
}

/// `y = conv2d(x, weight, bias)` for spikes `x`.
#[pyfunction]
#[pyo3(signature = (ctx, shape, stride, padding, groups, **bufs))]
fn event_conv2d(
    py: Python<'_>,
    ctx: Context,
    shape: Shape,
    stride: (usize, usize),
    padding: (usize, usize),
    groups: usize,
    bufs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Option<usize>> {
    let threads = threads(ctx)?;
    let mut k = Keywords::new(py, "event_conv2d", bufs);
    let b: PyResult<ForwardBufs> = take!(k, ForwardBufs { x, weight, y; bias });
    let (b, geo) = (b?, geometry(shape, stride, padding, groups));
    // SAFETY: the buffers are tensors the caller holds alive for the call; `forward_cpu`
    // checks each against the geometry and the others before making slices.
    compute(py, move || unsafe { b.forward_cpu(&geo, threads) })
}

/// `grad_weight = conv2d_weight(x, grad_y)` for spikes `x`.
#[pyfunction]
#[pyo3(signature = (ctx, shape, stride, padding, groups, **bufs))]
fn event_conv2d_weight(
    py: Python<'_>,
    ctx: Context,
    shape: Shape,
    stride: (usize, usize),
    padding: (usize, usize),
    groups: usize,
    bufs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Option<usize>> {
    let threads = threads(ctx)?;
    let mut k = Keywords::new(py, "event_conv2d_weight", bufs);
    let b: PyResult<WeightGradBufs> = take!(k, WeightGradBufs { x, grad_y, grad_weight; });
    let (b, geo) = (b?, geometry(shape, stride, padding, groups));
    // SAFETY: as in `event_conv2d`.
    compute(py, move || unsafe { b.weight_grad_cpu(&geo, threads) })
}

/// Adds the functions to `_core`.
pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(event_conv2d, m)?)?;
    m.add_function(wrap_pyfunction!(event_conv2d_weight, m)?)?;
    Ok(())
}
