//! Tests of the CPU kernels against a naive oracle written straight from docs/neurons.md: neuron loop
//! outside, time loop inside, one formula per line, no code shared with the kernels.

// The oracle indexes `[t * n + i]` by hand on purpose: that is what makes it obviously right.
#![allow(clippy::needless_range_loop)]

use super::*;
use crate::parallel::CHUNK;
use crate::surrogate::SurrogateKind;
use std::f64::consts::PI;

// ---------------------------------------------------------------------------------------------
// Deterministic random numbers (splitmix64 + Box-Muller).

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * self.uniform()).cos()
    }

    fn normals(&mut self, len: usize, mean: f64, std: f64) -> Vec<f64> {
        (0..len).map(|_| mean + std * self.normal()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Configurations.

#[derive(Debug, Clone, Copy)]
enum Kind {
    If,
    Lif { tau: f64, decay_input: bool },
}

const KINDS: [Kind; 3] = [
    Kind::If,
    Kind::Lif { tau: 2.0, decay_input: true },
    // 1 / 1.25 is inexact: the oracle divides by tau, the kernel multiplies by the leak.
    Kind::Lif { tau: 1.25, decay_input: false },
];

#[derive(Debug, Clone, Copy)]
struct Cfg {
    kind: Kind,
    v_threshold: f64,
    v_reset: Option<f64>,
    detach_reset: bool,
    surrogate: SurrogateKind,
}

impl Cfg {
    /// Every neuron x reset x detach x surrogate combination, threshold 1.
    fn all() -> Vec<Cfg> {
        let mut out = Vec::new();
        for kind in KINDS {
            for v_reset in [Some(-0.25), None] {
                for detach_reset in [false, true] {
                    for surrogate in SurrogateKind::ALL {
                        out.push(Cfg { kind, v_threshold: 1.0, v_reset, detach_reset, surrogate });
                    }
                }
            }
        }
        out
    }

    fn params(&self) -> NeuronParams {
        let (leak, decay_input) = match self.kind {
            Kind::If => (0.0, false),
            Kind::Lif { tau, decay_input } => (1.0 / tau, decay_input),
        };
        NeuronParams { leak, decay_input, v_threshold: self.v_threshold, v_reset: self.v_reset }
    }

    fn grad(&self) -> GradParams {
        let surrogate = Surrogate::new(self.surrogate, self.surrogate.default_alpha()).unwrap();
        GradParams { detach_reset: self.detach_reset, surrogate }
    }

    // --- The oracle's formulas, one per docs/neurons.md line. ---

    /// `v_reset`, or 0 for soft reset, as it appears in the charge.
    fn v_rest(&self) -> f64 {
        self.v_reset.unwrap_or(0.0)
    }

    fn charge(&self, v: f64, x: f64) -> f64 {
        match self.kind {
            Kind::If => v + x,
            Kind::Lif { tau, decay_input: true } => v + (x - (v - self.v_rest())) / tau,
            Kind::Lif { tau, decay_input: false } => v - (v - self.v_rest()) / tau + x,
        }
    }

    fn fire(&self, h: f64) -> bool {
        h >= self.v_threshold
    }

    fn reset(&self, h: f64, spike: bool) -> f64 {
        match (self.v_reset, spike) {
            (_, false) => h,
            (Some(v_reset), true) => v_reset,
            (None, true) => h - self.v_threshold,
        }
    }

    /// `sg(H - v_threshold)` with the default parameter of the surrogate.
    fn sg(&self, h: f64) -> f64 {
        let u = h - self.v_threshold;
        let a = self.surrogate.default_alpha();
        match self.surrogate {
            SurrogateKind::Sigmoid => {
                let s = 1.0 / (1.0 + (-a * u).exp());
                a * s * (1.0 - s)
            }
            SurrogateKind::Atan => (a / 2.0) / (1.0 + (PI / 2.0 * a * u).powi(2)),
            SurrogateKind::Triangle => (a - u.abs()).max(0.0) / (a * a),
            SurrogateKind::Rectangle => (1.0 / a) * f64::from(u8::from(u.abs() < a / 2.0)),
            SurrogateKind::FastSigmoid => 1.0 / (1.0 + a * u.abs()).powi(2),
        }
    }

    /// `dV_t/dH_t` through the surrogate.
    fn dv_dh(&self, h: f64, spike: bool, sg: f64) -> f64 {
        let s = f64::from(u8::from(spike));
        let reset_term = if self.detach_reset { 0.0 } else { 1.0 };
        match self.v_reset {
            Some(v_reset) => (1.0 - s) + reset_term * (v_reset - h) * sg,
            None => 1.0 - reset_term * self.v_threshold * sg,
        }
    }

    fn dh_dx(&self) -> f64 {
        match self.kind {
            Kind::Lif { tau, decay_input: true } => 1.0 / tau,
            _ => 1.0,
        }
    }

    fn dh_dv(&self) -> f64 {
        match self.kind {
            Kind::If => 1.0,
            Kind::Lif { tau, .. } => 1.0 - 1.0 / tau,
        }
    }

    /// `dH/d(1/tau)` given the previous state and the input.
    fn dh_dleak(&self, v_prev: f64, x: f64) -> f64 {
        match self.kind {
            Kind::Lif { decay_input: true, .. } => x - (v_prev - self.v_rest()),
            _ => -(v_prev - self.v_rest()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The naive oracle.

/// Everything the naive forward sees; `v_prev[t, n]` is `V_{t-1}`.
struct Trace {
    spikes: Vec<f64>,
    h: Vec<f64>,
    v_prev: Vec<f64>,
    v: Vec<f64>,
}

fn naive_forward(c: &Cfg, steps: usize, x: &[f64], v0: &[f64]) -> Trace {
    let n = v0.len();
    let mut tr = Trace {
        spikes: vec![0.0; steps * n],
        h: vec![0.0; steps * n],
        v_prev: vec![0.0; steps * n],
        v: vec![0.0; n],
    };
    for i in 0..n {
        let mut v = v0[i];
        for t in 0..steps {
            let k = t * n + i;
            let h = c.charge(v, x[k]);
            let spike = c.fire(h);
            (tr.v_prev[k], tr.h[k], tr.spikes[k]) = (v, h, f64::from(u8::from(spike)));
            v = c.reset(h, spike);
        }
        tr.v[i] = v;
    }
    tr
}

struct Grads {
    x: Vec<f64>,
    v0: Vec<f64>,
    leak: f64,
    /// `sum |term|` of the leak gradient's sum: the scale of its rounding error.
    leak_scale: f64,
}

/// BPTT through [`naive_forward`], per docs/neurons.md.
fn naive_backward(
    c: &Cfg,
    steps: usize,
    x: &[f64],
    v0: &[f64],
    grad_spikes: &[f64],
    grad_v: Option<&[f64]>,
) -> Grads {
    let n = v0.len();
    let tr = naive_forward(c, steps, x, v0);
    let mut g = Grads { x: vec![0.0; steps * n], v0: vec![0.0; n], leak: 0.0, leak_scale: 0.0 };
    for i in 0..n {
        let mut gv = grad_v.map_or(0.0, |gv| gv[i]);
        for t in (0..steps).rev() {
            let k = t * n + i;
            let h = tr.h[k];
            let sg = c.sg(h);
            let gh = grad_spikes[k] * sg + gv * c.dv_dh(h, c.fire(h), sg);
            g.x[k] = gh * c.dh_dx();
            let term = gh * c.dh_dleak(tr.v_prev[k], x[k]);
            (g.leak, g.leak_scale) = (g.leak + term, g.leak_scale + term.abs());
            gv = gh * c.dh_dv();
        }
        g.v0[i] = gv;
    }
    g
}

/// The eligibility recursion of docs/neurons.md, as a running mean.
fn naive_eligibility(c: &Cfg, steps: usize, x: &[f64], v0: &[f64]) -> Vec<f64> {
    let n = v0.len();
    let mut out = vec![0.0; n];
    for i in 0..n {
        let (mut v, mut k, mut e) = (v0[i], c.dh_dx(), 0.0);
        for t in 0..steps {
            let h = c.charge(v, x[t * n + i]);
            let (spike, sg) = (c.fire(h), c.sg(h));
            e = (t as f64 * e + k * sg) / (t as f64 + 1.0);
            k = c.dh_dx() + c.dh_dv() * k * c.dv_dh(h, spike, sg);
            v = c.reset(h, spike);
        }
        out[i] = e;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Running the kernels on owned buffers.

struct FwdOut {
    spikes: Vec<f64>,
    h: Vec<f64>,
    v: Vec<f64>,
}

fn run_forward(p: &NeuronParams, steps: usize, x: &[f64], v0: &[f64], threads: usize) -> FwdOut {
    let n = v0.len();
    let mut o = FwdOut { spikes: vec![0.0; steps * n], h: vec![0.0; steps * n], v: vec![0.0; n] };
    let io = ForwardIo { x, v0, spikes: &mut o.spikes, h_seq: &mut o.h, v: &mut o.v };
    forward(p, steps, io, threads).unwrap();
    o
}

/// `(grad_x, grad_v0, leak gradient)`.
type BwdOut = (Vec<f64>, Vec<f64>, Option<f64>);

fn run_backward(
    c: &Cfg,
    steps: usize,
    grad_spikes: &[f64],
    grad_v: Option<&[f64]>,
    h_seq: &[f64],
    v0: Option<&[f64]>,
    threads: usize,
) -> BwdOut {
    let n = h_seq.len() / steps;
    let (mut gx, mut gv0) = (vec![0.0; steps * n], vec![0.0; n]);
    let io = BackwardIo { grad_spikes, grad_v, h_seq, v0, grad_x: &mut gx, grad_v0: &mut gv0 };
    let leak = backward(&c.params(), &c.grad(), steps, io, threads).unwrap();
    (gx, gv0, leak)
}

struct RateOut {
    spikes: Vec<f64>,
    v: Vec<f64>,
    rate: Vec<f64>,
    elig: Vec<f64>,
}

fn run_rate(c: &Cfg, steps: usize, x: &[f64], v0: &[f64], threads: usize) -> RateOut {
    let n = v0.len();
    let mut o = RateOut {
        spikes: vec![0.0; steps * n],
        v: vec![0.0; n],
        rate: vec![0.0; n],
        elig: vec![0.0; n],
    };
    let io = RateIo {
        x,
        v0,
        spikes: &mut o.spikes,
        v: &mut o.v,
        rate: &mut o.rate,
        eligibility: &mut o.elig,
    };
    rate_forward(&c.params(), &c.grad(), steps, io, threads).unwrap();
    o
}

// ---------------------------------------------------------------------------------------------
// Test data and comparisons.

/// Random inputs for one `[steps, n]` problem of a neuron; the charge straddles the threshold of 1.
struct Data {
    x: Vec<f64>,
    v0: Vec<f64>,
    grad_spikes: Vec<f64>,
    grad_v: Vec<f64>,
}

impl Data {
    fn new(c: &Cfg, seed: u64, steps: usize, n: usize) -> Data {
        let mut rng = Rng(seed);
        let gain = c.dh_dx();
        Data {
            x: rng.normals(steps * n, 0.7 / gain, 0.8 / gain),
            v0: rng.normals(n, 0.0, 0.5),
            grad_spikes: rng.normals(steps * n, 0.0, 1.0),
            grad_v: rng.normals(n, 0.0, 1.0),
        }
    }
}

/// A neuron count that is not a multiple of the chunk and, with T = 5, is parallelised.
const N_ODD: usize = 4 * CHUNK + 37;
const STEPS: [usize; 2] = [1, 5];
const RTOL: f64 = 1e-12;

/// `|got - want| <= rtol * max(|got|, |want|, floor)`: relative, but never finer than the
/// rounding left by cancellation among terms of size `floor`.
fn assert_close_at_scale(what: &str, got: &[f64], want: &[f64], rtol: f64, floor: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = rtol * g.abs().max(w.abs()).max(floor);
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g:e}, want {w:e}");
    }
}

/// Inputs, threshold and upstream gradients are all of order 1 here: scale 1.
fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_close_at_scale(what, got, want, rtol, 1.0);
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Guards against a vacuous comparison: the data must both fire and stay silent.
fn assert_mixed_spikes(what: &str, spikes: &[f64]) {
    let rate = spikes.iter().sum::<f64>() / spikes.len() as f64;
    assert!((0.05..0.95).contains(&rate), "{what}: spike rate {rate} makes a weak test");
}

// ---------------------------------------------------------------------------------------------
// Equivalence with the oracle.

#[test]
fn forward_matches_the_naive_oracle() {
    for (seed, c) in Cfg::all().iter().enumerate() {
        for steps in STEPS {
            let d = Data::new(c, seed as u64, steps, N_ODD);
            let want = naive_forward(c, steps, &d.x, &d.v0);
            let got = run_forward(&c.params(), steps, &d.x, &d.v0, 2);
            let what = format!("{c:?} T={steps}");
            assert_mixed_spikes(&what, &want.spikes);
            assert_eq!(got.spikes, want.spikes, "{what}: spikes");
            assert_close(&format!("{what} h"), &got.h, &want.h, RTOL);
            assert_close(&format!("{what} v"), &got.v, &want.v, RTOL);
        }
    }
}

#[test]
fn backward_matches_the_naive_bptt() {
    for (seed, c) in Cfg::all().iter().enumerate() {
        for steps in STEPS {
            let d = Data::new(c, seed as u64, steps, N_ODD);
            let h = naive_forward(c, steps, &d.x, &d.v0).h;
            for grad_v in [None, Some(&d.grad_v[..])] {
                let what = format!("{c:?} T={steps} grad_v={}", grad_v.is_some());
                let want = naive_backward(c, steps, &d.x, &d.v0, &d.grad_spikes, grad_v);
                let (gx, gv0, leak) =
                    run_backward(c, steps, &d.grad_spikes, grad_v, &h, Some(&d.v0), 2);
                assert_close(&format!("{what} grad_x"), &gx, &want.x, RTOL);
                assert_close(&format!("{what} grad_v0"), &gv0, &want.v0, RTOL);
                assert_close_at_scale(
                    &format!("{what} grad_leak"),
                    &[leak.unwrap()],
                    &[want.leak],
                    RTOL,
                    want.leak_scale,
                );

                // Without v0 there is no leak gradient, and nothing else changes.
                let (gx2, gv02, leak2) =
                    run_backward(c, steps, &d.grad_spikes, grad_v, &h, None, 2);
                assert_eq!(leak2, None, "{what}");
                assert_eq!((bits(&gx2), bits(&gv02)), (bits(&gx), bits(&gv0)), "{what}");
            }
        }
    }
}

#[test]
fn rate_forward_matches_the_naive_oracle() {
    for (seed, c) in Cfg::all().iter().enumerate() {
        for steps in STEPS {
            let d = Data::new(c, seed as u64, steps, N_ODD);
            let want = naive_forward(c, steps, &d.x, &d.v0);
            let got = run_rate(c, steps, &d.x, &d.v0, 2);
            let what = format!("{c:?} T={steps}");
            assert_eq!(got.spikes, want.spikes, "{what}: spikes");
            assert_close(&format!("{what} v"), &got.v, &want.v, RTOL);
            let rate: Vec<f64> = (0..N_ODD)
                .map(|i| (0..steps).map(|t| want.spikes[t * N_ODD + i]).sum::<f64>() / steps as f64)
                .collect();
            assert_close(&format!("{what} rate"), &got.rate, &rate, RTOL);
            let elig = naive_eligibility(c, steps, &d.x, &d.v0);
            assert_close(&format!("{what} eligibility"), &got.elig, &elig, RTOL);
        }
    }
}

/// docs/neurons.md's property: `e = d(mean_t S_t)/dc` through BPTT, `c` a current added at every step.
/// It holds for a constant input and, as the derivative along a uniform shift, for any input.
#[test]
fn eligibility_is_the_bptt_derivative_of_the_rate() {
    let n = 3 * CHUNK + 5;
    for (seed, c) in Cfg::all().iter().enumerate() {
        for steps in [1, 5, 16] {
            let d = Data::new(c, seed as u64 + 1000, steps, n);
            let constant: Vec<f64> = (0..steps * n).map(|k| d.x[k % n]).collect();
            for (input, x) in [("constant", &constant), ("random", &d.x)] {
                let what = format!("{c:?} T={steps} {input} input");
                let grad_spikes = vec![1.0 / steps as f64; steps * n];
                let g = naive_backward(c, steps, x, &d.v0, &grad_spikes, None);
                let dc: Vec<f64> =
                    (0..n).map(|i| (0..steps).map(|t| g.x[t * n + i]).sum()).collect();
                let got = run_rate(c, steps, x, &d.v0, 2);
                assert_mixed_spikes(&what, &got.spikes);
                assert_close(&what, &got.elig, &dc, RTOL);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Thread-count independence.

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    let n = 8 * CHUNK + 37;
    let steps = 5;
    for (seed, c) in Cfg::all().iter().enumerate() {
        let d = Data::new(c, seed as u64, steps, n);
        let p = c.params();
        let run = |threads| {
            let f = run_forward(&p, steps, &d.x, &d.v0, threads);
            let (gx, gv0, leak) =
                run_backward(c, steps, &d.grad_spikes, Some(&d.grad_v), &f.h, Some(&d.v0), threads);
            let r = run_rate(c, steps, &d.x, &d.v0, threads);
            let leak = leak.unwrap().to_bits();
            let all = [f.spikes, f.h, f.v, gx, gv0, r.spikes, r.v, r.rate, r.elig];
            (all.map(|v| bits(&v)), leak)
        };
        let one = run(1);
        for threads in [2, 3] {
            assert!(run(threads) == one, "{c:?}: threads={threads} differs from threads=1");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Finite differences, below threshold.

/// `(f(at + eps e_k) - f(at - eps e_k)) / (2 eps)` for every `k`.
fn central_differences(at: &[f64], eps: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut probe = at.to_vec();
    (0..at.len())
        .map(|k| {
            probe[k] = at[k] + eps;
            let up = f(&probe);
            probe[k] = at[k] - eps;
            let down = f(&probe);
            probe[k] = at[k];
            (up - down) / (2.0 * eps)
        })
        .collect()
}

/// Sub-threshold checks: with no spikes and a surrogate that vanishes far from threshold (the
/// triangle), `L = sum_n gV_n * v_T,n` is smooth and backward must be its true gradient.
#[test]
fn gradients_match_finite_differences_below_threshold() {
    let (steps, n) = (5, 40);
    for kind in KINDS {
        for v_reset in [Some(-0.25), None] {
            let c = Cfg {
                kind,
                v_threshold: 1e6,
                v_reset,
                detach_reset: false,
                surrogate: SurrogateKind::Triangle,
            };
            let what = format!("{c:?}");
            let d = Data::new(&c, 7, steps, n);
            let loss = |p: &NeuronParams, x: &[f64], v0: &[f64]| -> f64 {
                let f = run_forward(p, steps, x, v0, 1);
                assert!(f.spikes.iter().all(|&s| s == 0.0), "{what}: spiked");
                f.v.iter().zip(&d.grad_v).map(|(v, g)| v * g).sum()
            };
            let p = c.params();
            let h_seq = run_forward(&p, steps, &d.x, &d.v0, 1).h;
            let zeros = vec![0.0; steps * n];
            let (gx, gv0, leak) =
                run_backward(&c, steps, &zeros, Some(&d.grad_v), &h_seq, Some(&d.v0), 1);

            // L is linear in x and v0: a central difference is exact up to rounding.
            let fd_x = central_differences(&d.x, 1e-3, |x| loss(&p, x, &d.v0));
            assert_close(&format!("{what} dL/dx"), &gx, &fd_x, 1e-8);
            let fd_v0 = central_differences(&d.v0, 1e-3, |v0| loss(&p, &d.x, v0));
            assert_close(&format!("{what} dL/dv0"), &gv0, &fd_v0, 1e-8);

            // L is a degree-T polynomial in the leak (IF has leak 0: no two-sided difference).
            if let Kind::Lif { .. } = kind {
                let h = 1e-5;
                let at = |leak| loss(&NeuronParams { leak, ..p }, &d.x, &d.v0);
                let fd = (at(p.leak + h) - at(p.leak - h)) / (2.0 * h);
                assert_close(&format!("{what} dL/dleak"), &[leak.unwrap()], &[fd], 1e-7);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input.

/// Buffers for one call, every one of the right length except `short`, one element short.
fn buffers(lens: &[usize], short: Option<usize>) -> Vec<Vec<f64>> {
    let len = |i: usize, l: usize| if short == Some(i) { l - 1 } else { l };
    lens.iter().enumerate().map(|(i, &l)| vec![0.5; len(i, l)]).collect()
}

/// Sizes buffers for `T = max(steps, 1)` and calls one kernel on them.
type Call = fn(&NeuronParams, usize, usize, Option<usize>) -> Result<()>;

fn call_forward(p: &NeuronParams, steps: usize, n: usize, short: Option<usize>) -> Result<()> {
    let tn = steps.max(1) * n;
    let mut b = buffers(&[tn, n, tn, tn, n], short);
    let [x, v0, spikes, h_seq, v] = &mut b[..] else { unreachable!() };
    forward(p, steps, ForwardIo { x, v0, spikes, h_seq, v }, 2)
}

/// With `grad_v` and `v0` given, so that every buffer is checked.
fn call_backward(p: &NeuronParams, steps: usize, n: usize, short: Option<usize>) -> Result<()> {
    let tn = steps.max(1) * n;
    let mut b = buffers(&[tn, n, tn, n, tn, n], short);
    let [grad_spikes, grad_v, h_seq, v0, grad_x, grad_v0] = &mut b[..] else { unreachable!() };
    let grad_v = Some(&grad_v[..]);
    let io = BackwardIo { grad_spikes, grad_v, h_seq, v0: Some(v0), grad_x, grad_v0 };
    backward(p, &LIF.grad(), steps, io, 2).map(drop)
}

fn call_rate(p: &NeuronParams, steps: usize, n: usize, short: Option<usize>) -> Result<()> {
    let tn = steps.max(1) * n;
    let mut b = buffers(&[tn, n, tn, n, n, n], short);
    let [x, v0, spikes, v, rate, eligibility] = &mut b[..] else { unreachable!() };
    rate_forward(p, &LIF.grad(), steps, RateIo { x, v0, spikes, v, rate, eligibility }, 2)
}

/// Each kernel with its number of buffers.
const KERNELS: [(&str, usize, Call); 3] =
    [("forward", 5, call_forward), ("backward", 6, call_backward), ("rate_forward", 6, call_rate)];

const LIF: Cfg = Cfg {
    kind: Kind::Lif { tau: 2.0, decay_input: true },
    v_threshold: 1.0,
    v_reset: Some(-0.25),
    detach_reset: false,
    surrogate: SurrogateKind::Atan,
};

#[test]
fn wrong_buffer_lengths_and_zero_steps_are_shape_errors() {
    let p = LIF.params();
    let (steps, n) = (3, CHUNK + 1);
    for (name, buffers, call) in KERNELS {
        assert_eq!(call(&p, steps, n, None), Ok(()), "{name}");
        assert_eq!(call(&p, steps, 0, None), Ok(()), "{name}: an empty layer is fine");
        for short in 0..buffers {
            let r = call(&p, steps, n, Some(short));
            assert!(matches!(r, Err(Error::Shape(_))), "{name}, buffer {short} short: {r:?}");
        }
        let r = call(&p, 0, n, None);
        assert!(matches!(r, Err(Error::Shape(_))), "{name}, T = 0: {r:?}");
    }
}

#[test]
fn invalid_parameters_are_errors() {
    let p = LIF.params();
    let bad = [
        NeuronParams { leak: f64::NAN, ..p },
        NeuronParams { leak: -0.5, ..p },
        NeuronParams { leak: f64::INFINITY, ..p },
        NeuronParams { leak: 1.5, ..p },
        NeuronParams { leak: 1e300, ..p },
        NeuronParams { v_threshold: f64::NAN, ..p },
        NeuronParams { v_threshold: f64::NEG_INFINITY, ..p },
        NeuronParams { v_reset: Some(f64::NAN), ..p },
    ];
    for p in bad {
        for (name, _, call) in KERNELS {
            let r = call(&p, 2, 10, None);
            assert!(matches!(r, Err(Error::InvalidArgument(_))), "{name} {p:?}: {r:?}");
        }
    }
    // The leak gradient with decay_input divides by the leak: 0 is refused, not a NaN.
    let p = NeuronParams { leak: 0.0, ..p };
    let r = call_backward(&p, 2, 10, None);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
}

/// `T * N` past `usize::MAX` must not wrap into a length that matches the buffers.
#[test]
fn overflowing_sizes_are_errors() {
    let p = LIF.params();
    let steps = usize::MAX / 2 + 1; // steps * 2 wraps to 0
    let mut b = buffers(&[0, 2, 0, 0, 2], None);
    let [x, v0, spikes, h_seq, v] = &mut b[..] else { unreachable!() };
    let r = forward(&p, steps, ForwardIo { x, v0, spikes, h_seq, v }, 1);
    assert!(r.is_err(), "{r:?}");
}
