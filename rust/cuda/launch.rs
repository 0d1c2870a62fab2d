//! The three CUDA ops, and the spike packing: check the buffers, plan (vector or scalar kernel,
//! grid), launch.
//!
//! Buffers are device addresses of tensors torch allocated, contiguous, in the storage type
//! (`h_seq` always float32, PLIF's leak a float32 on the device); [`crate::boundary`] checks each
//! one's length, type and address before anything is planned. Each function returns the kernel
//! it launched and its grid size (the number of PLIF partial sums written).

use super::driver;
use super::plan::{
    choose_path, grid, kernel_dtype_row, max_grid, spike_grid, vector_aligned, BackwardArgs,
    Consts, ForwardArgs, Kernel, Op, RateArgs, SpikeArgs, SpikeKernel, SpikeOp,
};
use crate::boundary::{BackwardBufs, Extent, ForwardBufs, RateBufs, RawBuf, Types};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::neuron::{GradParams, NeuronParams};
use crate::spikes::{one_bits, PackBufs, UnpackBufs};
use crate::surrogate::{Surrogate, SurrogateKind};

/// Where to launch: torch's device index and its current stream there (`cuda_stream`).
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    pub device: i32,
    pub handle: u64,
}

/// What was launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launched {
    pub kernel: Kernel,
    pub blocks: u32,
}

/// The element types of a launch in storage type `dtype`, which must have a kernel.
fn types(dtype: DType) -> Result<Types> {
    kernel_dtype_row(dtype)?;
    Ok(Types { io: dtype, h: DType::F32, leak: DType::F32 })
}

/// `N` as the kernels take it; they need at least one neuron.
fn neurons(e: Extent) -> Result<u64> {
    if e.n == 0 {
        return Err(Error::Shape(
            "N must be at least 1 (empty tensors never reach a kernel)".into(),
        ));
    }
    Ok(e.n as u64)
}

fn addr(b: Option<RawBuf>) -> u64 {
    b.map_or(0, |b| b.addr)
}

/// Spikes, charges and final state (docs/neurons.md forward), in `x`'s storage type.
pub fn forward(
    p: &NeuronParams,
    steps: usize,
    b: &ForwardBufs,
    stream: Stream,
) -> Result<Launched> {
    let (dtype, t) = (b.x.dtype, types(b.x.dtype)?);
    p.validate()?;
    let n = neurons(b.check(steps, t)?)?;
    let dev = driver::device(stream.device, stream.handle)?;
    let ptrs = [b.x.addr, b.v0.addr, b.spikes.addr, b.h_seq.addr, b.v.addr];
    let path = choose_path(vector_aligned(&ptrs, n, dtype), n, dtype, dev.sm_count);
    // The forward does not use the surrogate: any constants do.
    let sg = Surrogate { kind: SurrogateKind::Sigmoid, alpha: 1.0 };
    let mut args = ForwardArgs {
        x: b.x.addr,
        v0: b.v0.addr,
        spikes: b.spikes.addr,
        h_seq: b.h_seq.addr,
        v: b.v.addr,
        leak_ptr: addr(b.leak),
        steps: steps as u64,
        n,
        c: Consts::new(p, false, sg),
    };
    let kernel = Kernel::new(Op::Forward, dtype, sg.kind, path)?;
    let blocks = grid(n, dtype, path)?;
    // SAFETY: every buffer was checked against the sizes the kernel reads and writes.
    unsafe { dev.launch(kernel, blocks, stream.handle, &mut args)? };
    Ok(Launched { kernel, blocks })
}

/// BPTT from the saved charges (docs/neurons.md backward), in `grad_spikes`' storage type; with
/// `v0`, per-block `dL/d(leak)` sums in `partials`, which needs [`max_grid`]`(N)` elements.
pub fn backward(
    p: &NeuronParams,
    g: &GradParams,
    steps: usize,
    b: &BackwardBufs,
    stream: Stream,
) -> Result<Launched> {
    let (dtype, t) = (b.grad_spikes.dtype, types(b.grad_spikes.dtype)?);
    p.validate()?;
    let needed = u64::from(max_grid(b.grad_v0.len)?);
    let n = neurons(b.check(steps, t, Some(needed))?)?;
    let dev = driver::device(stream.device, stream.handle)?;
    let ptrs = [
        b.grad_spikes.addr,
        addr(b.grad_v),
        b.h_seq.addr,
        addr(b.v0),
        b.grad_x.addr,
        b.grad_v0.addr,
    ];
    let path = choose_path(vector_aligned(&ptrs, n, dtype), n, dtype, dev.sm_count);
    let blocks = grid(n, dtype, path)?;
    let mut args = BackwardArgs {
        grad_spikes: b.grad_spikes.addr,
        grad_v: addr(b.grad_v),
        h_seq: b.h_seq.addr,
        v0: addr(b.v0),
        grad_x: b.grad_x.addr,
        grad_v0: b.grad_v0.addr,
        partials: addr(b.partials),
        leak_ptr: addr(b.leak),
        steps: steps as u64,
        n,
        c: Consts::new(p, g.detach_reset, g.surrogate),
    };
    let kernel = Kernel::new(Op::Backward, dtype, g.surrogate.kind, path)?;
    // SAFETY: as in `forward`; `partials` holds at least the grid of any path.
    unsafe { dev.launch(kernel, blocks, stream.handle, &mut args)? };
    Ok(Launched { kernel, blocks })
}

/// Rate-mode spike pass (docs/neurons.md rate-based mode), in `x`'s storage type.
pub fn rate_forward(
    p: &NeuronParams,
    g: &GradParams,
    steps: usize,
    b: &RateBufs,
    stream: Stream,
) -> Result<Launched> {
    let (dtype, t) = (b.x.dtype, types(b.x.dtype)?);
    p.validate()?;
    let n = neurons(b.check(steps, t)?)?;
    let dev = driver::device(stream.device, stream.handle)?;
    let ptrs = [b.x.addr, b.v0.addr, b.spikes.addr, b.v.addr, b.rate.addr, b.eligibility.addr];
    let path = choose_path(vector_aligned(&ptrs, n, dtype), n, dtype, dev.sm_count);
    let mut args = RateArgs {
        x: b.x.addr,
        v0: b.v0.addr,
        spikes: b.spikes.addr,
        v: b.v.addr,
        rate: b.rate.addr,
        eligibility: b.eligibility.addr,
        leak_ptr: addr(b.leak),
        steps: steps as u64,
        n,
        c: Consts::new(p, g.detach_reset, g.surrogate),
    };
    let kernel = Kernel::new(Op::Rate, dtype, g.surrogate.kind, path)?;
    let blocks = grid(n, dtype, path)?;
    // SAFETY: as in `forward`.
    unsafe { dev.launch(kernel, blocks, stream.handle, &mut args)? };
    Ok(Launched { kernel, blocks })
}

/// Packs the spikes `x` into `bits` ([`crate::spikes`]'s layout), and sets the zeroed `flag`
/// to 1 when an element is not a spike (then `bits` is meaningless). Returns the blocks
/// launched (0 for an empty `x`).
pub fn pack_spikes(b: &PackBufs, stream: Stream) -> Result<u32> {
    let (dtype, n) = b.check(true)?;
    let args = SpikeArgs {
        src: b.x.addr,
        dst: b.bits.addr,
        flag: addr(b.flag),
        n: n as u64,
        one: one_bits(dtype)?,
    };
    launch_spikes(SpikeOp::Pack, dtype, args, stream)
}

/// Unpacks `bits` into `out`; the caller has checked the padding bits (which would need a read
/// back here). Returns the blocks launched (0 for an empty `out`).
pub fn unpack_spikes(b: &UnpackBufs, stream: Stream) -> Result<u32> {
    let (dtype, n) = b.check()?;
    let args = SpikeArgs {
        src: b.bits.addr,
        dst: b.out.addr,
        flag: 0,
        n: n as u64,
        one: one_bits(dtype)?,
    };
    launch_spikes(SpikeOp::Unpack, dtype, args, stream)
}

fn launch_spikes(op: SpikeOp, dtype: DType, mut args: SpikeArgs, stream: Stream) -> Result<u32> {
    let kernel = SpikeKernel::new(op, dtype)?;
    let blocks = spike_grid(op, args.n)?;
    if blocks == 0 {
        return Ok(0);
    }
    let dev = driver::device(stream.device, stream.handle)?;
    // SAFETY: the buffers were checked against `n` elements and `ceil(n / 8)` bytes.
    unsafe { dev.launch_spikes(kernel, blocks, stream.handle, &mut args)? };
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(addr: u64, len: u64, dtype: DType) -> RawBuf {
        RawBuf { addr, len, dtype }
    }

    #[test]
    fn bad_buffers_are_errors_before_any_driver_call() {
        let p = NeuronParams { leak: 0.5, decay_input: true, v_threshold: 1.0, v_reset: None };
        let s = Stream { device: 0, handle: 0 };
        let f = |addr| buf(addr, 8, DType::F32);
        let ok = ForwardBufs {
            x: buf(0x1000, 16, DType::F32),
            v0: f(0x2000),
            spikes: buf(0x3000, 16, DType::F32),
            h_seq: buf(0x4000, 16, DType::F32),
            v: f(0x5000),
            leak: None,
        };
        let run = |b: ForwardBufs| forward(&p, 2, &b, s).unwrap_err();
        assert!(matches!(run(ForwardBufs { x: buf(0x1002, 16, DType::F32), ..ok }),
                         Error::InvalidArgument(m) if m.contains("misaligned")));
        assert!(matches!(run(ForwardBufs { x: buf(0x1000, 8, DType::F32), ..ok }),
                         Error::Shape(m) if m.contains("x has 8 elements, expected 16")));
        assert!(matches!(run(ForwardBufs { x: buf(0x1000, 16, DType::F64), ..ok }),
                         Error::Dtype(m) if m.contains("bfloat16, got float64")));
        assert!(matches!(run(ForwardBufs { h_seq: buf(0x4000, 16, DType::F16), ..ok }),
                         Error::Dtype(m) if m.contains("h_seq is float16")));
        assert!(matches!(run(ForwardBufs { v: buf(0x1010, 8, DType::F32), ..ok }),
                         Error::InvalidArgument(m) if m.contains("overlap")));
        let empty = ForwardBufs { x: buf(0x1000, 0, DType::F32), v0: buf(0, 0, DType::F32), ..ok };
        let empty = ForwardBufs { spikes: empty.x, h_seq: empty.x, v: empty.v0, ..empty };
        assert!(matches!(run(empty), Error::Shape(m) if m.contains("at least 1")));
    }
}
