//! Multi-step IF / LIF / PLIF kernels on the CPU: forward, BPTT backward and rate-mode forward.
//!
//! The exact recurrences are docs/neurons.md's. One parameterisation covers the three neurons:
//! `leak = 1 / tau` (LIF), `sigmoid(w)` (PLIF) or `0` with `decay_input = false` (IF, whose charge
//! `H = V - (V - v_reset) * 0 + x` is then bit-for-bit `V + x`). Buffers are `[T, N]` row-major
//! (time-first); each kernel walks `[T, CHUNK]` tiles with the time loop inside, in parallel over
//! chunks of neurons. All kernels are pure: they read their inputs and write only their outputs.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::isa::{run_chunk, Chunk};
use crate::parallel::{map_chunks, SharedOut};
use crate::surrogate::{with_surrogate, Surrogate, SurrogateGrad};
use std::ops::Range;

/// Charge, fire and reset parameters shared by every kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuronParams {
    /// `1 / tau`, in [0, 1]; 0 (with `decay_input = false`) gives the IF neuron.
    pub leak: f64,
    /// LIF's `decay_input`: the input is scaled by `1 / tau` too.
    pub decay_input: bool,
    pub v_threshold: f64,
    /// `Some(v)`: hard reset to `v`; `None`: soft reset (subtract the threshold).
    pub v_reset: Option<f64>,
}

/// What the backward pass and the rate mode add: how the reset is differentiated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradParams {
    pub detach_reset: bool,
    pub surrogate: Surrogate,
}

impl NeuronParams {
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64| {
            Err(Error::InvalidArgument(format!("{what} must be a finite number, got {v}")))
        };
        // The state keeps `1 - leak` of `v - v_rest` per step: outside [0, 1] (NaN included)
        // it grows or flips sign, which describes no neuron.
        if !(0.0..=1.0).contains(&self.leak) {
            return Err(Error::InvalidArgument(format!(
                "leak (1/tau) must be in [0, 1] (tau >= 1), got {}",
                self.leak
            )));
        }
        if !self.v_threshold.is_finite() {
            return bad("v_threshold", self.v_threshold);
        }
        match self.v_reset {
            Some(v) if !v.is_finite() => bad("v_reset", v),
            _ => Ok(()),
        }
    }
}

/// The buffers of [`forward`]: `x`, `spikes`, `h_seq` are `[T, N]`; `v0`, `v` are `[N]`.
pub struct ForwardIo<'a, F> {
    pub x: &'a [F],
    pub v0: &'a [F],
    pub spikes: &'a mut [F],
    pub h_seq: &'a mut [F],
    pub v: &'a mut [F],
}

/// The buffers of [`backward`]. `grad_v` is `dL/dv_T` (`None`: zero). `v0` is needed only for the
/// gradient of the leak (PLIF); pass `None` to skip that reduction.
pub struct BackwardIo<'a, F> {
    pub grad_spikes: &'a [F],
    pub grad_v: Option<&'a [F]>,
    pub h_seq: &'a [F],
    pub v0: Option<&'a [F]>,
    pub grad_x: &'a mut [F],
    pub grad_v0: &'a mut [F],
}

/// The buffers of [`rate_forward`]: `x`, `spikes` are `[T, N]`; the rest `[N]`.
pub struct RateIo<'a, F> {
    pub x: &'a [F],
    pub v0: &'a [F],
    pub spikes: &'a mut [F],
    pub v: &'a mut [F],
    pub rate: &'a mut [F],
    pub eligibility: &'a mut [F],
}

fn check_len(name: &str, len: usize, expected: usize) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(Error::Shape(format!("{name} has {len} elements, expected {expected}")))
    }
}

/// Row `t` of a `[T, n]` buffer, restricted to the neurons in `r`.
#[inline(always)]
pub(crate) fn row<'a, F>(buf: &'a [F], t: usize, n: usize, r: &Range<usize>) -> &'a [F] {
    &buf[t * n + r.start..t * n + r.end]
}

/// Checks `T >= 1` and returns `T * n`, the length of a `[T, n]` buffer.
pub(crate) fn sequence_len(steps: usize, n: usize) -> Result<usize> {
    if steps == 0 {
        return Err(Error::Shape("the time dimension T must be at least 1".into()));
    }
    steps.checked_mul(n).ok_or_else(|| Error::Shape(format!("T * N overflows: {steps} x {n}")))
}

/// Constants of the recurrences, converted once to the element type.
#[derive(Clone, Copy)]
pub(crate) struct Consts<F> {
    leak: F,
    /// `dH/dV = 1 - leak`.
    pub(crate) decay: F,
    /// `dH/dx`: `leak` with `decay_input`, else 1.
    pub(crate) input_gain: F,
    pub(crate) threshold: F,
    /// `v_reset`, or 0 for soft reset (its value inside the charge).
    v_rest: F,
    /// 0 with `detach_reset`, else 1: multiplies the reset's dependence on the surrogate.
    reset_grad: F,
}

impl<F: Float> Consts<F> {
    pub(crate) fn new(p: &NeuronParams, detach_reset: bool) -> Self {
        let leak = F::from_f64(p.leak);
        Consts {
            leak,
            decay: F::from_f64(1.0 - p.leak),
            input_gain: if p.decay_input { leak } else { F::ONE },
            threshold: F::from_f64(p.v_threshold),
            v_rest: F::from_f64(p.v_reset.unwrap_or(0.0)),
            reset_grad: if detach_reset { F::ZERO } else { F::ONE },
        }
    }

    #[inline(always)]
    pub(crate) fn charge<const DECAY_INPUT: bool>(&self, v: F, x: F) -> F {
        if DECAY_INPUT {
            v + (x - (v - self.v_rest)) * self.leak
        } else {
            v - (v - self.v_rest) * self.leak + x
        }
    }

    #[inline(always)]
    pub(crate) fn reset<const HARD: bool>(&self, h: F, s: F) -> F {
        if HARD {
            h * (F::ONE - s) + self.v_rest * s
        } else {
            h - self.threshold * s
        }
    }

    /// `dV_t/dH_t` with surrogate value `sg` (the reset term vanishes when detached).
    #[inline(always)]
    pub(crate) fn reset_derivative<const HARD: bool>(&self, h: F, s: F, sg: F) -> F {
        if HARD {
            (F::ONE - s) + (self.v_rest - h) * sg * self.reset_grad
        } else {
            F::ONE - self.threshold * sg * self.reset_grad
        }
    }
}

/// Runs `$call` with the const generics `DECAY_INPUT` and `HARD` fixed from `$p`.
macro_rules! with_flags {
    ($p:expr, |$d:ident, $h:ident| $call:expr) => {
        match ($p.decay_input, $p.v_reset.is_some()) {
            (false, false) => {
                const $d: bool = false;
                const $h: bool = false;
                $call
            }
            (false, true) => {
                const $d: bool = false;
                const $h: bool = true;
                $call
            }
            (true, false) => {
                const $d: bool = true;
                const $h: bool = false;
                $call
            }
            (true, true) => {
                const $d: bool = true;
                const $h: bool = true;
                $call
            }
        }
    };
}
pub(crate) use with_flags;

/// Multi-step forward: spikes `S`, charges `H` (saved for backward) and final state `v_T`.
pub fn forward<F: Float>(
    p: &NeuronParams,
    steps: usize,
    io: ForwardIo<'_, F>,
    threads: usize,
) -> Result<()> {
    p.validate()?;
    let n = io.v0.len();
    let tn = sequence_len(steps, n)?;
    check_len("x", io.x.len(), tn)?;
    check_len("spikes", io.spikes.len(), tn)?;
    check_len("h_seq", io.h_seq.len(), tn)?;
    check_len("v", io.v.len(), n)?;
    let c = Consts::<F>::new(p, false);
    let (s, h, v) = (SharedOut::new(io.spikes), SharedOut::new(io.h_seq), SharedOut::new(io.v));
    with_flags!(p, |DECAY, HARD| {
        let k = Forward::<F, DECAY, HARD> { c, x: io.x, v0: io.v0, steps, s, h, v };
        map_chunks(n, tn, threads, |r| run_chunk(&k, r))
    })?;
    Ok(())
}

/// The forward over one chunk of neurons.
struct Forward<'a, F, const DECAY: bool, const HARD: bool> {
    c: Consts<F>,
    x: &'a [F],
    v0: &'a [F],
    steps: usize,
    s: SharedOut<F>,
    h: SharedOut<F>,
    v: SharedOut<F>,
}

impl<F: Float, const DECAY: bool, const HARD: bool> Chunk for Forward<'_, F, DECAY, HARD> {
    type Out = ();

    #[inline(always)]
    fn run(&self, r: Range<usize>) {
        let (c, n, m) = (&self.c, self.v0.len(), r.len());
        // SAFETY: chunk ranges are disjoint and inside [0, n); rows are n apart.
        let v = unsafe { self.v.slice(0, &r) };
        v.copy_from_slice(&self.v0[r.clone()]);
        for t in 0..self.steps {
            let (s_out, h_out) = unsafe { (self.s.slice(t * n, &r), self.h.slice(t * n, &r)) };
            // Equal lengths let the compiler drop bounds checks and vectorise the loop.
            let (x, v) = (&row(self.x, t, n, &r)[..m], &mut v[..m]);
            let (s_out, h_out) = (&mut s_out[..m], &mut h_out[..m]);
            for i in 0..m {
                let h = c.charge::<DECAY>(v[i], x[i]);
                let s = h.step_ge(c.threshold);
                h_out[i] = h;
                s_out[i] = s;
                v[i] = c.reset::<HARD>(h, s);
            }
        }
    }
}

/// BPTT backward from the saved `H` sequence. Writes `dL/dx` and `dL/dv_0`; returns
/// `dL/d(leak)` summed over all neurons and steps when `io.v0` is given (PLIF), else `None`.
pub fn backward<F: Float>(
    p: &NeuronParams,
    g: &GradParams,
    steps: usize,
    io: BackwardIo<'_, F>,
    threads: usize,
) -> Result<Option<f64>> {
    p.validate()?;
    let n = io.grad_v0.len();
    let tn = sequence_len(steps, n)?;
    check_len("grad_spikes", io.grad_spikes.len(), tn)?;
    check_len("h_seq", io.h_seq.len(), tn)?;
    check_len("grad_x", io.grad_x.len(), tn)?;
    if let Some(gv) = io.grad_v {
        check_len("grad_v", gv.len(), n)?;
    }
    if let Some(v0) = io.v0 {
        check_len("v0", v0.len(), n)?;
        if p.decay_input && p.leak <= 0.0 {
            return Err(Error::InvalidArgument(
                "the leak gradient with decay_input needs 1/tau > 0".into(),
            ));
        }
    }
    let c = Consts::<F>::new(p, g.detach_reset);
    let (gx, gv0) = (SharedOut::new(io.grad_x), SharedOut::new(io.grad_v0));
    macro_rules! run {
        ($sg:expr, $d:ident, $h:ident, $leak:literal) => {{
            let k = Backward::<F, _, $d, $h, $leak> {
                c,
                sg: $sg,
                gs: io.grad_spikes,
                gv: io.grad_v,
                h: io.h_seq,
                v0: io.v0.unwrap_or(&[]),
                steps,
                gx,
                gv0,
            };
            map_chunks(n, tn, threads, |r| run_chunk(&k, r))
        }};
    }
    let partials = with_surrogate!(g.surrogate, F, |sg| with_flags!(p, |DECAY, HARD| {
        if io.v0.is_some() {
            run!(sg, DECAY, HARD, true)
        } else {
            run!(sg, DECAY, HARD, false)
        }
    }))?;
    Ok(io.v0.map(|_| partials.iter().sum()))
}

/// The backward over one chunk of neurons; `LEAK_GRAD` also sums `dL/d(leak)`.
struct Backward<'a, F, S, const DECAY: bool, const HARD: bool, const LEAK_GRAD: bool> {
    c: Consts<F>,
    sg: S,
    gs: &'a [F],
    gv: Option<&'a [F]>,
    h: &'a [F],
    /// `[N]` with `LEAK_GRAD`, else empty.
    v0: &'a [F],
    steps: usize,
    gx: SharedOut<F>,
    gv0: SharedOut<F>,
}

impl<F: Float, S: SurrogateGrad<F>, const DECAY: bool, const HARD: bool, const LEAK_GRAD: bool>
    Chunk for Backward<'_, F, S, DECAY, HARD, LEAK_GRAD>
{
    type Out = f64;

    #[inline(always)]
    fn run(&self, r: Range<usize>) -> f64 {
        let (c, m) = (&self.c, r.len());
        let n = self.h.len() / self.steps;
        // SAFETY: chunk ranges are disjoint and inside [0, n). `gv` carries dL/dV backwards
        // and ends as dL/dv0.
        let gv = unsafe { self.gv0.slice(0, &r) };
        match self.gv {
            Some(g) => gv.copy_from_slice(&g[r.clone()]),
            None => gv.fill(F::ZERO),
        }
        let (mut leak_acc, mut v_prev) = (vec![0.0f64; m], vec![F::ZERO; m]);
        for t in (0..self.steps).rev() {
            if LEAK_GRAD {
                // V_{t-1}: the initial state, or the reset of the previous charge.
                if t == 0 {
                    v_prev.copy_from_slice(&self.v0[r.clone()]);
                } else {
                    for (vp, &hp) in v_prev.iter_mut().zip(row(self.h, t - 1, n, &r)) {
                        *vp = c.reset::<HARD>(hp, hp.step_ge(c.threshold));
                    }
                }
            }
            // SAFETY: as above, row t of grad_x.
            let gx = unsafe { self.gx.slice(t * n, &r) };
            let (gs, h) = (row(self.gs, t, n, &r), row(self.h, t, n, &r));
            self.row(gs, h, &v_prev, gx, gv, &mut leak_acc);
        }
        if LEAK_GRAD {
            leak_acc.iter().sum()
        } else {
            0.0
        }
    }
}

impl<F: Float, S: SurrogateGrad<F>, const DECAY: bool, const HARD: bool, const LEAK_GRAD: bool>
    Backward<'_, F, S, DECAY, HARD, LEAK_GRAD>
{
    /// One time step of the chunk. Separate slices (not raw pointers) tell the compiler that
    /// nothing aliases, which it needs to vectorise.
    #[inline(always)]
    fn row(&self, gs: &[F], h: &[F], v_prev: &[F], gx: &mut [F], gv: &mut [F], acc: &mut [f64]) {
        let (c, sg, m) = (&self.c, self.sg, gv.len());
        let (gs, h, v_prev, gx, acc) =
            (&gs[..m], &h[..m], &v_prev[..m], &mut gx[..m], &mut acc[..m]);
        for i in 0..m {
            let h = h[i];
            let s = h.step_ge(c.threshold);
            let sgv = sg.grad(h - c.threshold);
            let gh = gs[i] * sgv + gv[i] * c.reset_derivative::<HARD>(h, s, sgv);
            gx[i] = gh * c.input_gain;
            gv[i] = gh * c.decay;
            if LEAK_GRAD {
                // dH/d(leak): x - (V - v_rest) = (H - V) / leak with decay_input,
                // else -(V - v_rest).
                let dh = if DECAY { (h - v_prev[i]) / c.leak } else { c.v_rest - v_prev[i] };
                acc[i] += (gh * dh).to_f64();
            }
        }
    }
}

/// Rate-mode forward (no gradient): spikes, final state, firing rate `mean_t S_t` and the
/// eligibility `mean_t k_t * sg_t`, where `k_t = dH_t/dc` for a constant input current `c`.
pub fn rate_forward<F: Float>(
    p: &NeuronParams,
    g: &GradParams,
    steps: usize,
    io: RateIo<'_, F>,
    threads: usize,
) -> Result<()> {
    p.validate()?;
    let n = io.v0.len();
    let tn = sequence_len(steps, n)?;
    check_len("x", io.x.len(), tn)?;
    check_len("spikes", io.spikes.len(), tn)?;
    for (name, len) in
        [("v", io.v.len()), ("rate", io.rate.len()), ("eligibility", io.eligibility.len())]
    {
        check_len(name, len, n)?;
    }
    let c = Consts::<F>::new(p, g.detach_reset);
    let (s, v) = (SharedOut::new(io.spikes), SharedOut::new(io.v));
    let (rate, elig) = (SharedOut::new(io.rate), SharedOut::new(io.eligibility));
    with_surrogate!(g.surrogate, F, |sg| with_flags!(p, |DECAY, HARD| {
        let k = Rate::<F, _, DECAY, HARD> { c, sg, x: io.x, v0: io.v0, steps, s, v, rate, elig };
        map_chunks(n, tn, threads, |r| run_chunk(&k, r))
    }))?;
    Ok(())
}

/// The rate-mode forward over one chunk of neurons.
struct Rate<'a, F, S, const DECAY: bool, const HARD: bool> {
    c: Consts<F>,
    sg: S,
    x: &'a [F],
    v0: &'a [F],
    steps: usize,
    s: SharedOut<F>,
    v: SharedOut<F>,
    rate: SharedOut<F>,
    elig: SharedOut<F>,
}

impl<F: Float, S: SurrogateGrad<F>, const DECAY: bool, const HARD: bool> Chunk
    for Rate<'_, F, S, DECAY, HARD>
{
    type Out = ();

    #[inline(always)]
    fn run(&self, r: Range<usize>) {
        let (c, sg, n, m) = (&self.c, self.sg, self.v0.len(), r.len());
        // SAFETY: chunk ranges are disjoint and inside [0, n).
        let (v, rate, elig) =
            unsafe { (self.v.slice(0, &r), self.rate.slice(0, &r), self.elig.slice(0, &r)) };
        v.copy_from_slice(&self.v0[r.clone()]);
        rate.fill(F::ZERO);
        elig.fill(F::ZERO);
        let mut k = vec![c.input_gain; m];
        for t in 0..self.steps {
            // SAFETY: as above, row t of spikes.
            let s_out = unsafe { self.s.slice(t * n, &r) };
            let (x, s_out, v) = (&row(self.x, t, n, &r)[..m], &mut s_out[..m], &mut v[..m]);
            let (rate, elig, k) = (&mut rate[..m], &mut elig[..m], &mut k[..m]);
            for i in 0..m {
                let h = c.charge::<DECAY>(v[i], x[i]);
                let s = h.step_ge(c.threshold);
                let sgv = sg.grad(h - c.threshold);
                s_out[i] = s;
                rate[i] = rate[i] + s;
                elig[i] = elig[i] + k[i] * sgv;
                k[i] = c.input_gain + c.decay * k[i] * c.reset_derivative::<HARD>(h, s, sgv);
                v[i] = c.reset::<HARD>(h, s);
            }
        }
        let steps = F::from_f64(self.steps as f64);
        for (rt, e) in rate.iter_mut().zip(elig.iter_mut()) {
            *rt = *rt / steps;
            *e = *e / steps;
        }
    }
}

#[cfg(test)]
#[path = "neuron_tests.rs"]
mod tests;
