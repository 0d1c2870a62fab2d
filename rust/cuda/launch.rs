//! The three CUDA ops: validate, plan (vector or scalar kernel, grid), launch.
//!
//! Buffers are device addresses of tensors torch allocated, contiguous, in the storage type
//! (`h_seq` always float32); 0 marks an optional buffer as absent. Each function returns the
//! kernel it launched and its grid size (the number of PLIF partial sums written).

use super::driver;
use super::plan::{
    choose_path, grid, kernel_name, vector_aligned, BackwardArgs, Consts, Dtype, ForwardArgs, Op,
    RateArgs,
};
use crate::error::{Error, Result};
use crate::neuron::{sequence_len, GradParams, NeuronParams};
use crate::surrogate::{Surrogate, SurrogateKind};

/// Where to launch: torch's device index and its current stream there (`cuda_stream`).
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    pub device: i32,
    pub handle: u64,
}

/// What was launched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    pub kernel: String,
    pub blocks: u32,
}

/// Device pointers of [`forward`]: `x, spikes, h_seq` are `[T, N]`, `v0, v` are `[N]`;
/// `leak` is PLIF's float32 `sigmoid(w)` (0: use `NeuronParams::leak`).
#[derive(Debug, Clone, Copy)]
pub struct ForwardBufs {
    pub x: u64,
    pub v0: u64,
    pub spikes: u64,
    pub h_seq: u64,
    pub v: u64,
    pub leak: u64,
}

/// Device pointers of [`backward`]. `grad_v` (0: zero) and `v0` (0: no leak gradient) are
/// optional; with `v0`, `partials` receives one float64 per block (`partials_len` of them).
#[derive(Debug, Clone, Copy)]
pub struct BackwardBufs {
    pub grad_spikes: u64,
    pub grad_v: u64,
    pub h_seq: u64,
    pub v0: u64,
    pub grad_x: u64,
    pub grad_v0: u64,
    pub partials: u64,
    pub partials_len: u64,
    pub leak: u64,
}

/// Device pointers of [`rate_forward`]: `x, spikes` are `[T, N]`, the rest `[N]`.
#[derive(Debug, Clone, Copy)]
pub struct RateBufs {
    pub x: u64,
    pub v0: u64,
    pub spikes: u64,
    pub v: u64,
    pub rate: u64,
    pub eligibility: u64,
    pub leak: u64,
}

/// Required buffers must be non-null and element-aligned (optional ones may be 0).
fn check_ptrs(required: &[(&str, u64, u64)], optional: &[(&str, u64, u64)]) -> Result<()> {
    let required = required.iter().map(|&(name, ptr, align)| (name, ptr, align, false));
    let optional = optional.iter().map(|&(name, ptr, align)| (name, ptr, align, true));
    for (name, ptr, align, may_be_null) in required.chain(optional) {
        if (ptr == 0 && !may_be_null) || ptr % align != 0 {
            return Err(Error::Runtime(format!("{name}: null or misaligned device pointer")));
        }
    }
    Ok(())
}

fn checked_n(steps: usize, n: usize) -> Result<u64> {
    sequence_len(steps, n)?;
    if n == 0 {
        return Err(Error::Shape(
            "N must be at least 1 (empty tensors never reach a kernel)".into(),
        ));
    }
    Ok(n as u64)
}

/// Spikes, charges and final state (NEURONS.md forward).
pub fn forward(
    dtype: Dtype,
    p: &NeuronParams,
    steps: usize,
    n: usize,
    b: ForwardBufs,
    stream: Stream,
) -> Result<Launched> {
    p.validate()?;
    let n = checked_n(steps, n)?;
    let es = dtype.size();
    let required = [("x", b.x, es), ("v0", b.v0, es), ("spikes", b.spikes, es)];
    check_ptrs(&[("h_seq", b.h_seq, 4), ("v", b.v, es)], &[("leak", b.leak, 4)])?;
    check_ptrs(&required, &[])?;
    let dev = driver::device(stream.device, stream.handle)?;
    let aligned = vector_aligned(&[b.x, b.v0, b.spikes, b.h_seq, b.v], n, dtype);
    let path = choose_path(aligned, n, dtype, dev.sm_count);
    // The forward does not use the surrogate: any constants do.
    let sg = Surrogate { kind: SurrogateKind::Sigmoid, alpha: 1.0 };
    let mut args = ForwardArgs {
        x: b.x,
        v0: b.v0,
        spikes: b.spikes,
        h_seq: b.h_seq,
        v: b.v,
        leak_ptr: b.leak,
        steps: steps as u64,
        n,
        c: Consts::new(p, false, sg),
    };
    let kernel = kernel_name(Op::Forward, dtype, sg.kind, path);
    let blocks = grid(n, dtype, path)?;
    // SAFETY: the caller (snnrs.ops) passes live, contiguous tensors of the sizes stated.
    unsafe { dev.launch(&kernel, blocks, stream.handle, &mut args)? };
    Ok(Launched { kernel, blocks })
}

/// BPTT from the saved charges (NEURONS.md backward); with `v0`, per-block `dL/d(leak)` sums.
pub fn backward(
    dtype: Dtype,
    p: &NeuronParams,
    g: &GradParams,
    steps: usize,
    n: usize,
    b: BackwardBufs,
    stream: Stream,
) -> Result<Launched> {
    p.validate()?;
    let n = checked_n(steps, n)?;
    let es = dtype.size();
    let required = [("grad_spikes", b.grad_spikes, es), ("grad_x", b.grad_x, es)];
    check_ptrs(&required, &[("grad_v", b.grad_v, es), ("v0", b.v0, es)])?;
    check_ptrs(&[("h_seq", b.h_seq, 4), ("grad_v0", b.grad_v0, es)], &[("leak", b.leak, 4)])?;
    let dev = driver::device(stream.device, stream.handle)?;
    let ptrs = [b.grad_spikes, b.grad_v, b.h_seq, b.v0, b.grad_x, b.grad_v0];
    let path = choose_path(vector_aligned(&ptrs, n, dtype), n, dtype, dev.sm_count);
    let blocks = grid(n, dtype, path)?;
    if b.v0 != 0 {
        check_ptrs(&[("partials", b.partials, 8)], &[])?;
        if b.partials_len < u64::from(blocks) {
            return Err(Error::Shape(format!(
                "partials has {} elements, the launch needs {blocks} (see cuda_max_blocks)",
                b.partials_len
            )));
        }
    }
    let mut args = BackwardArgs {
        grad_spikes: b.grad_spikes,
        grad_v: b.grad_v,
        h_seq: b.h_seq,
        v0: b.v0,
        grad_x: b.grad_x,
        grad_v0: b.grad_v0,
        partials: b.partials,
        leak_ptr: b.leak,
        steps: steps as u64,
        n,
        c: Consts::new(p, g.detach_reset, g.surrogate),
    };
    let kernel = kernel_name(Op::Backward, dtype, g.surrogate.kind, path);
    // SAFETY: as in `forward`.
    unsafe { dev.launch(&kernel, blocks, stream.handle, &mut args)? };
    Ok(Launched { kernel, blocks })
}

/// Rate-mode spike pass (NEURONS.md rate-based mode).
pub fn rate_forward(
    dtype: Dtype,
    p: &NeuronParams,
    g: &GradParams,
    steps: usize,
    n: usize,
    b: RateBufs,
    stream: Stream,
) -> Result<Launched> {
    p.validate()?;
    let n = checked_n(steps, n)?;
    let es = dtype.size();
    let required = [("x", b.x, es), ("v0", b.v0, es), ("spikes", b.spikes, es), ("v", b.v, es)];
    check_ptrs(&required, &[("leak", b.leak, 4)])?;
    check_ptrs(&[("rate", b.rate, es), ("eligibility", b.eligibility, es)], &[])?;
    let dev = driver::device(stream.device, stream.handle)?;
    let ptrs = [b.x, b.v0, b.spikes, b.v, b.rate, b.eligibility];
    let path = choose_path(vector_aligned(&ptrs, n, dtype), n, dtype, dev.sm_count);
    let mut args = RateArgs {
        x: b.x,
        v0: b.v0,
        spikes: b.spikes,
        v: b.v,
        rate: b.rate,
        eligibility: b.eligibility,
        leak_ptr: b.leak,
        steps: steps as u64,
        n,
        c: Consts::new(p, g.detach_reset, g.surrogate),
    };
    let kernel = kernel_name(Op::Rate, dtype, g.surrogate.kind, path);
    let blocks = grid(n, dtype, path)?;
    // SAFETY: as in `forward`.
    unsafe { dev.launch(&kernel, blocks, stream.handle, &mut args)? };
    Ok(Launched { kernel, blocks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pointers_and_shapes_are_errors_before_any_driver_call() {
        assert!(check_ptrs(&[("x", 0, 4)], &[]).is_err());
        assert!(check_ptrs(&[("x", 0x1002, 4)], &[]).is_err());
        assert!(check_ptrs(&[("x", 0x1002, 2)], &[("grad_v", 0, 2)]).is_ok());
        assert!(check_ptrs(&[], &[("grad_v", 0x1001, 2)]).is_err());
        assert!(checked_n(0, 5).is_err());
        assert!(checked_n(3, 0).is_err());
        assert_eq!(checked_n(3, 5).unwrap(), 5);
    }
}
