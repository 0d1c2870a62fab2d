//! CubaLIF (`snnrs.nn.CubaLIF`) on the CPU: multi-step forward and BPTT backward.
//!
//! Per neuron and step, with LIF's charge, fire and reset ([`crate::neuron`], docs/families.md):
//!
//! ```text
//! I_t = I_{t-1} + (X_t - I_{t-1}) * leak_syn
//! H_t = charge(V_{t-1}, I_t);   S_t = [H_t >= v_threshold];   V_t = reset(H_t, S_t)
//! ```
//!
//! `H` and `I` are linear in what they depend on, so the backward needs only the saved `H`
//! sequence (for the surrogate and the reset's derivative), not `I`. Buffers are `[T, N]`
//! time-first; chunks of neurons run in parallel, the time loop inside, as in
//! [`crate::neuron`].

use crate::boundary::{check_call, slice, slice_mut, Extent, Len, RawBuf, Role};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::isa::{run_chunk, Chunk};
use crate::neuron::{row, sequence_len, with_flags, Consts, GradParams, NeuronParams};
use crate::parallel::{map_chunks, SharedOut};
use crate::surrogate::{with_surrogate, SurrogateGrad};
use std::ops::Range;

/// LIF's parameters and the synapse's `leak_syn = 1 / tau_syn`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CubaParams {
    pub lif: NeuronParams,
    /// In (0, 1]; 1 passes the input straight through (LIF).
    pub leak_syn: f64,
}

impl CubaParams {
    pub fn validate(&self) -> Result<()> {
        self.lif.validate()?;
        if !(self.leak_syn > 0.0 && self.leak_syn <= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "leak_syn (1/tau_syn) must be in (0, 1] (tau_syn >= 1), got {}",
                self.leak_syn
            )));
        }
        Ok(())
    }
}

/// The buffers of [`forward`]: `x, spikes, h_seq` are `[T, N]`; `i0, v0, i, v` are `[N]`.
pub struct ForwardIo<'a, F> {
    pub x: &'a [F],
    pub i0: &'a [F],
    pub v0: &'a [F],
    pub spikes: &'a mut [F],
    pub h_seq: &'a mut [F],
    pub i: &'a mut [F],
    pub v: &'a mut [F],
}

/// The buffers of [`backward`]: `grad_spikes, h_seq, grad_x` are `[T, N]`; `grad_i, grad_v`
/// (`dL/dI_T`, `dL/dV_T`; `None`: zero), `grad_i0, grad_v0` are `[N]`.
pub struct BackwardIo<'a, F> {
    pub grad_spikes: &'a [F],
    pub grad_i: Option<&'a [F]>,
    pub grad_v: Option<&'a [F]>,
    pub h_seq: &'a [F],
    pub grad_x: &'a mut [F],
    pub grad_i0: &'a mut [F],
    pub grad_v0: &'a mut [F],
}

/// Every slice of a call against `[T, N]` (`seq`) and `[N]` (`state`) lengths.
fn check_lens(
    steps: usize,
    n: usize,
    seq: &[(&str, usize)],
    state: &[(&str, usize)],
) -> Result<()> {
    let tn = sequence_len(steps, n)?;
    let all = seq.iter().map(|&(k, l)| (k, l, tn)).chain(state.iter().map(|&(k, l)| (k, l, n)));
    for (name, len, expected) in all {
        if len != expected {
            return Err(Error::Shape(format!("{name} has {len} elements, expected {expected}")));
        }
    }
    Ok(())
}

/// Multi-step forward: spikes `S`, charges `H` (saved for backward), final `I_T` and `V_T`.
pub fn forward<F: Float>(
    p: &CubaParams,
    steps: usize,
    io: ForwardIo<'_, F>,
    threads: usize,
) -> Result<()> {
    p.validate()?;
    let n = io.v0.len();
    let seq = [("x", io.x.len()), ("spikes", io.spikes.len()), ("h_seq", io.h_seq.len())];
    check_lens(steps, n, &seq, &[("i0", io.i0.len()), ("i", io.i.len()), ("v", io.v.len())])?;
    let k = Synapse { leak_syn: F::from_f64(p.leak_syn), steps, n };
    let (s, h) = (SharedOut::new(io.spikes), SharedOut::new(io.h_seq));
    let (i, v) = (SharedOut::new(io.i), SharedOut::new(io.v));
    let c = Consts::<F>::new(&p.lif, false);
    with_flags!(p.lif, |DECAY, HARD| {
        let k = Forward::<F, DECAY, HARD> { k, c, x: io.x, i0: io.i0, v0: io.v0, s, h, i, v };
        map_chunks(n, n * steps, threads, |r| run_chunk(&k, r))
    })?;
    Ok(())
}

/// What every chunk kernel of the family knows: the synapse's leak and the `[T, N]` extent.
#[derive(Clone, Copy)]
struct Synapse<F> {
    leak_syn: F,
    steps: usize,
    n: usize,
}

struct Forward<'a, F, const DECAY: bool, const HARD: bool> {
    k: Synapse<F>,
    c: Consts<F>,
    x: &'a [F],
    i0: &'a [F],
    v0: &'a [F],
    s: SharedOut<F>,
    h: SharedOut<F>,
    i: SharedOut<F>,
    v: SharedOut<F>,
}

impl<F: Float, const DECAY: bool, const HARD: bool> Chunk for Forward<'_, F, DECAY, HARD> {
    type Out = ();

    #[inline(always)]
    fn run(&self, r: Range<usize>) {
        let (c, ls, n, m) = (&self.c, self.k.leak_syn, self.k.n, r.len());
        // SAFETY: chunk ranges are disjoint and inside [0, n); rows are n apart.
        let (cur, v) = unsafe { (self.i.slice(0, &r), self.v.slice(0, &r)) };
        cur.copy_from_slice(&self.i0[r.clone()]);
        v.copy_from_slice(&self.v0[r.clone()]);
        for t in 0..self.k.steps {
            // SAFETY: as above, row t of spikes and h_seq.
            let (s_out, h_out) = unsafe { (self.s.slice(t * n, &r), self.h.slice(t * n, &r)) };
            let (x, cur, v) = (&row(self.x, t, n, &r)[..m], &mut cur[..m], &mut v[..m]);
            let (s_out, h_out) = (&mut s_out[..m], &mut h_out[..m]);
            for j in 0..m {
                // The reference's order of operations, so that spikes are bit-for-bit its own.
                let i = cur[j] + (x[j] - cur[j]) * ls;
                let h = c.charge::<DECAY>(v[j], i);
                let s = h.step_ge(c.threshold);
                cur[j] = i;
                h_out[j] = h;
                s_out[j] = s;
                v[j] = c.reset::<HARD>(h, s);
            }
        }
    }
}

/// BPTT backward from the saved `H` sequence: writes `dL/dx`, `dL/dI_0` and `dL/dV_0`.
pub fn backward<F: Float>(
    p: &CubaParams,
    g: &GradParams,
    steps: usize,
    io: BackwardIo<'_, F>,
    threads: usize,
) -> Result<()> {
    p.validate()?;
    let n = io.grad_v0.len();
    let given = |b: Option<&[F]>| b.map_or(n, <[F]>::len);
    check_lens(
        steps,
        n,
        &[
            ("grad_spikes", io.grad_spikes.len()),
            ("h_seq", io.h_seq.len()),
            ("grad_x", io.grad_x.len()),
        ],
        &[
            ("grad_i", given(io.grad_i)),
            ("grad_v", given(io.grad_v)),
            ("grad_i0", io.grad_i0.len()),
        ],
    )?;
    let k = Synapse { leak_syn: F::from_f64(p.leak_syn), steps, n };
    let c = Consts::<F>::new(&p.lif, g.detach_reset);
    let (gx, gi0, gv0) =
        (SharedOut::new(io.grad_x), SharedOut::new(io.grad_i0), SharedOut::new(io.grad_v0));
    with_surrogate!(g.surrogate, F, |sg| with_flags!(p.lif, |DECAY, HARD| {
        let k = Backward::<F, _, DECAY, HARD> {
            k,
            c,
            sg,
            gs: io.grad_spikes,
            gi: io.grad_i,
            gv: io.grad_v,
            h: io.h_seq,
            gx,
            gi0,
            gv0,
        };
        map_chunks(n, n * steps, threads, |r| run_chunk(&k, r))
    }))?;
    Ok(())
}

struct Backward<'a, F, S, const DECAY: bool, const HARD: bool> {
    k: Synapse<F>,
    c: Consts<F>,
    sg: S,
    gs: &'a [F],
    gi: Option<&'a [F]>,
    gv: Option<&'a [F]>,
    h: &'a [F],
    gx: SharedOut<F>,
    gi0: SharedOut<F>,
    gv0: SharedOut<F>,
}

impl<F: Float, S: SurrogateGrad<F>, const DECAY: bool, const HARD: bool> Chunk
    for Backward<'_, F, S, DECAY, HARD>
{
    type Out = ();

    #[inline(always)]
    fn run(&self, r: Range<usize>) {
        let n = self.k.n;
        // SAFETY: chunk ranges are disjoint and inside [0, n). `gi` and `gv` carry dL/dI and
        // dL/dV backwards and end as dL/dI_0 and dL/dV_0.
        let (gi, gv) = unsafe { (self.gi0.slice(0, &r), self.gv0.slice(0, &r)) };
        for (out, given) in [(&mut *gi, self.gi), (&mut *gv, self.gv)] {
            match given {
                Some(g) => out.copy_from_slice(&g[r.clone()]),
                None => out.fill(F::ZERO),
            }
        }
        for t in (0..self.k.steps).rev() {
            // SAFETY: as above, row t of grad_x.
            let gx = unsafe { self.gx.slice(t * n, &r) };
            self.row(row(self.gs, t, n, &r), row(self.h, t, n, &r), gx, gi, gv);
        }
    }
}

impl<F: Float, S: SurrogateGrad<F>, const DECAY: bool, const HARD: bool>
    Backward<'_, F, S, DECAY, HARD>
{
    /// One time step of the chunk. Separate slices (not raw pointers) tell the compiler that
    /// nothing aliases, which it needs to vectorise.
    #[inline(always)]
    fn row(&self, gs: &[F], h: &[F], gx: &mut [F], gi: &mut [F], gv: &mut [F]) {
        let (c, sg, m) = (&self.c, self.sg, gv.len());
        let (ls, keep) = (self.k.leak_syn, F::ONE - self.k.leak_syn);
        let (gs, h, gx, gi) = (&gs[..m], &h[..m], &mut gx[..m], &mut gi[..m]);
        for j in 0..m {
            let h = h[j];
            let s = h.step_ge(c.threshold);
            let sgv = sg.grad(h - c.threshold);
            let gh = gs[j] * sgv + gv[j] * c.reset_derivative::<HARD>(h, s, sgv);
            // dL/dI_t: through H_t, and through I_{t+1} (carried in `gi`).
            let g_cur = gh * c.input_gain + gi[j];
            gx[j] = g_cur * ls;
            gi[j] = g_cur * keep;
            gv[j] = gh * c.decay;
        }
    }
}

// -- The buffer sets of the two ops, as they cross from a caller (see crate::boundary). --------
//
// `leak_syn` crosses as one float64 element, as PLIF's leak does, so that an op keeps the
// `op(ctx, params, steps, **bufs)` form of every other.

/// The buffers of [`forward`], each as its caller describes it.
#[derive(Debug, Clone, Copy)]
pub struct ForwardBufs {
    pub x: RawBuf,
    pub i0: RawBuf,
    pub v0: RawBuf,
    pub spikes: RawBuf,
    pub h_seq: RawBuf,
    pub i: RawBuf,
    pub v: RawBuf,
    pub leak_syn: RawBuf,
}

impl ForwardBufs {
    /// Checks every buffer against `steps`, `v0`'s length and the element type `io`.
    pub fn check(&self, steps: usize, io: DType) -> Result<Extent> {
        use Len::*;
        check_call(
            steps,
            self.v0.len,
            &[
                Role::input("x", self.x, io, Seq),
                Role::input("i0", self.i0, io, State),
                Role::input("v0", self.v0, io, State),
                Role::output("spikes", self.spikes, io, Seq),
                Role::output("h_seq", self.h_seq, io, Seq),
                Role::output("i", self.i, io, State),
                Role::output("v", self.v, io, State),
                Role::input("leak_syn", self.leak_syn, DType::F64, Exactly(1)),
            ],
        )
    }

    /// Checks the buffers for the kernels in `F` and views them as slices.
    ///
    /// # Safety
    /// Each buffer must address `len` initialised elements of its `dtype` that stay alive and
    /// untouched by anyone else for `'a`.
    pub unsafe fn cpu<'a, F: Float>(&self, steps: usize) -> Result<(ForwardIo<'a, F>, f64)> {
        self.check(steps, F::DTYPE)?;
        let io = ForwardIo {
            x: slice(self.x),
            i0: slice(self.i0),
            v0: slice(self.v0),
            spikes: slice_mut(self.spikes),
            h_seq: slice_mut(self.h_seq),
            i: slice_mut(self.i),
            v: slice_mut(self.v),
        };
        Ok((io, slice::<f64>(self.leak_syn)[0]))
    }
}

/// The buffers of [`backward`], each as its caller describes it.
#[derive(Debug, Clone, Copy)]
pub struct BackwardBufs {
    pub grad_spikes: RawBuf,
    pub grad_i: Option<RawBuf>,
    pub grad_v: Option<RawBuf>,
    pub h_seq: RawBuf,
    pub grad_x: RawBuf,
    pub grad_i0: RawBuf,
    pub grad_v0: RawBuf,
    pub leak_syn: RawBuf,
}

impl BackwardBufs {
    /// Checks every buffer against `steps`, `grad_v0`'s length and the element type `io`.
    pub fn check(&self, steps: usize, io: DType) -> Result<Extent> {
        use Len::*;
        check_call(
            steps,
            self.grad_v0.len,
            &[
                Role::input("grad_spikes", self.grad_spikes, io, Seq),
                Role::input("grad_i", self.grad_i, io, State),
                Role::input("grad_v", self.grad_v, io, State),
                Role::input("h_seq", self.h_seq, io, Seq),
                Role::output("grad_x", self.grad_x, io, Seq),
                Role::output("grad_i0", self.grad_i0, io, State),
                Role::output("grad_v0", self.grad_v0, io, State),
                Role::input("leak_syn", self.leak_syn, DType::F64, Exactly(1)),
            ],
        )
    }

    /// As [`ForwardBufs::cpu`].
    ///
    /// # Safety
    /// As [`ForwardBufs::cpu`].
    pub unsafe fn cpu<'a, F: Float>(&self, steps: usize) -> Result<(BackwardIo<'a, F>, f64)> {
        self.check(steps, F::DTYPE)?;
        let io = BackwardIo {
            grad_spikes: slice(self.grad_spikes),
            grad_i: self.grad_i.map(|b| slice(b)),
            grad_v: self.grad_v.map(|b| slice(b)),
            h_seq: slice(self.h_seq),
            grad_x: slice_mut(self.grad_x),
            grad_i0: slice_mut(self.grad_i0),
            grad_v0: slice_mut(self.grad_v0),
        };
        Ok((io, slice::<f64>(self.leak_syn)[0]))
    }
}

#[cfg(test)]
#[path = "cuba_tests.rs"]
mod tests;
