//! The CubaLIF kernels against a scalar oracle: one neuron at a time, straight from the
//! equations, with the gradient checked by forward-mode tangents (a dot-product test), not by a
//! second copy of the backward recurrence.

use super::*;
use crate::neuron::{self as lif, NeuronParams};
use crate::parallel::CHUNK;
use crate::surrogate::{Surrogate, SurrogateKind};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
struct Case {
    p: CubaParams,
    g: GradParams,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        1.0f64..8.0,
        prop_oneof![Just(1.0f64), 1.0f64..6.0],
        any::<bool>(),
        0.5f64..1.5,
        prop_oneof![Just(None), (-0.5f64..0.5).prop_map(Some)],
        any::<bool>(),
        0usize..5,
    )
        .prop_map(|(tau, tau_syn, decay_input, v_threshold, v_reset, detach_reset, sg)| {
            let kind = SurrogateKind::ALL[sg];
            Case {
                p: CubaParams {
                    lif: NeuronParams { leak: 1.0 / tau, decay_input, v_threshold, v_reset },
                    leak_syn: 1.0 / tau_syn,
                },
                g: GradParams {
                    detach_reset,
                    surrogate: Surrogate::new(kind, kind.default_alpha()).unwrap(),
                },
            }
        })
}

/// One neuron's trajectory: `(S_t, H_t)` for every step, and the final `(I, V)`.
fn oracle<F: Float>(p: &CubaParams, x: &[F], i0: F, v0: F) -> (Vec<F>, Vec<F>, F, F) {
    let f = F::from_f64;
    let (leak, ls, th) = (f(p.lif.leak), f(p.leak_syn), f(p.lif.v_threshold));
    let v_rest = f(p.lif.v_reset.unwrap_or(0.0));
    let (mut i, mut v, mut s_out, mut h_out) = (i0, v0, vec![], vec![]);
    for &x in x {
        i = i + (x - i) * ls;
        let h = if p.lif.decay_input {
            v + (i - (v - v_rest)) * leak
        } else {
            v - (v - v_rest) * leak + i
        };
        let s = if h >= th { F::ONE } else { F::ZERO };
        v = match p.lif.v_reset {
            Some(r) => h * (F::ONE - s) + f(r) * s,
            None => h - th * s,
        };
        s_out.push(s);
        h_out.push(h);
    }
    (s_out, h_out, i, v)
}

/// The directional derivative of `L = sum_t gs_t S_t + gi I_T + gv V_T` along `(dx, di0, dv0)`,
/// by forward-mode tangents, with the surrogate standing in for `dS/dH`.
fn tangent(
    c: &Case,
    x: &[f64],
    (i0, v0): (f64, f64),
    seeds: (&[f64], f64, f64),
    d: (&[f64], f64, f64),
) -> f64 {
    let (p, sg) = (c.p.lif, c.g.surrogate);
    let (_, h, _, _) = oracle(&c.p, x, i0, v0);
    let (gs, gi, gv) = seeds;
    let (dx, mut di, mut dv) = d;
    let rg = if c.g.detach_reset { 0.0 } else { 1.0 };
    let mut dl = 0.0;
    for t in 0..x.len() {
        di += (dx[t] - di) * c.p.leak_syn;
        let dh = dv * (1.0 - p.leak) + di * if p.decay_input { p.leak } else { 1.0 };
        let s = if h[t] >= p.v_threshold { 1.0 } else { 0.0 };
        let ds = sg.grad(h[t] - p.v_threshold) * dh;
        dv = match p.v_reset {
            Some(r) => dh * (1.0 - s) + (r - h[t]) * ds * rg,
            None => dh - p.v_threshold * ds * rg,
        };
        dl += gs[t] * ds;
    }
    dl + gi * di + gv * dv
}

fn values(len: usize, seed: u64, scale: f64) -> Vec<f64> {
    // A fixed, well-spread sequence (Weyl): enough variety to cross the threshold both ways.
    (0..len)
        .map(|k| ((k as f64 * 0.754_877_666 + seed as f64 * 0.569_840_29) % 1.0) * scale)
        .collect()
}

/// Runs both kernels in `F` on `[steps, n]` inputs; returns spikes, h, i, v, grad_x, grad_i0,
/// grad_v0.
#[allow(clippy::type_complexity)]
fn run<F: Float>(
    c: &Case,
    steps: usize,
    n: usize,
    x: &[F],
    state: (&[F], &[F]),
    seeds: (&[F], &[F], &[F]),
    threads: usize,
) -> (Vec<F>, Vec<F>, Vec<F>, Vec<F>, Vec<F>, Vec<F>, Vec<F>) {
    let (tn, z) = (steps * n, F::ZERO);
    let (mut s, mut h, mut i, mut v) = (vec![z; tn], vec![z; tn], vec![z; n], vec![z; n]);
    let io = ForwardIo {
        x,
        i0: state.0,
        v0: state.1,
        spikes: &mut s,
        h_seq: &mut h,
        i: &mut i,
        v: &mut v,
    };
    forward(&c.p, steps, io, threads).unwrap();
    let (mut gx, mut gi0, mut gv0) = (vec![z; tn], vec![z; n], vec![z; n]);
    let io = BackwardIo {
        grad_spikes: seeds.0,
        grad_i: Some(seeds.1),
        grad_v: Some(seeds.2),
        h_seq: &h,
        grad_x: &mut gx,
        grad_i0: &mut gi0,
        grad_v0: &mut gv0,
    };
    backward(&c.p, &c.g, steps, io, threads).unwrap();
    (s, h, i, v, gx, gi0, gv0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn kernels_match_the_scalar_oracle_and_its_tangents(c in cases(), steps in 1usize..10,
                                                        n in 1usize..40, seed in 0u64..1000) {
        let (tn, vr) = (steps * n, c.p.lif.v_reset.unwrap_or(0.0));
        let x = values(tn, seed, 3.0);
        let i0 = values(n, seed + 1, 1.0);
        let v0: Vec<f64> = values(n, seed + 2, 1.0).iter().map(|v| v + vr - 0.5).collect();
        let (gs, gi, gv) = (values(tn, seed + 3, 1.0), values(n, seed + 4, 1.0), values(n, seed + 5, 1.0));
        let (s, h, i, v, gx, gi0, gv0) = run(&c, steps, n, &x, (&i0, &v0), (&gs, &gi, &gv), 1);
        let (dx, di0, dv0) = (values(tn, seed + 6, 2.0), values(n, seed + 7, 2.0), values(n, seed + 8, 2.0));
        for k in 0..n {
            let col = |b: &[f64]| (0..steps).map(|t| b[t * n + k]).collect::<Vec<_>>();
            let (os, oh, oi, ov) = oracle(&c.p, &col(&x), i0[k], v0[k]);
            prop_assert_eq!(&col(&s), &os);
            prop_assert_eq!(&col(&h), &oh);
            prop_assert_eq!((i[k], v[k]), (oi, ov));
            // <J^T g, d> by the kernels, <g, J d> by the tangents.
            let back: f64 = col(&gx).iter().zip(col(&dx)).map(|(a, b)| a * b).sum::<f64>()
                + gi0[k] * di0[k] + gv0[k] * dv0[k];
            let (seeds, d) = ((&col(&gs)[..], gi[k], gv[k]), (&col(&dx)[..], di0[k], dv0[k]));
            let fwd = tangent(&c, &col(&x), (i0[k], v0[k]), seeds, d);
            prop_assert!((back - fwd).abs() <= 1e-9 * (1.0 + fwd.abs()), "{back} vs {fwd}");
        }
        // float32: the same operations in the same order, so the same bits as its oracle.
        let f = |b: &[f64]| b.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        let (s32, h32, i32_, v32, ..) = run(&c, steps, n, &f(&x), (&f(&i0), &f(&v0)), (&f(&gs), &f(&gi), &f(&gv)), 1);
        for k in 0..n {
            let col = |b: &[f32]| (0..steps).map(|t| b[t * n + k]).collect::<Vec<_>>();
            let (os, oh, oi, ov) = oracle(&c.p, &col(&f(&x)), i0[k] as f32, v0[k] as f32);
            prop_assert_eq!((col(&s32), col(&h32), i32_[k], v32[k]), (os, oh, oi, ov));
        }
    }
}

#[test]
fn tau_syn_one_is_the_lif_kernel_and_threads_change_nothing() {
    let (steps, n) = (9, 2 * CHUNK + 5); // above the serial threshold: runs in parallel
    let lifp = NeuronParams { leak: 0.5, decay_input: true, v_threshold: 1.0, v_reset: Some(0.0) };
    let g = GradParams {
        detach_reset: false,
        surrogate: Surrogate::new(SurrogateKind::Atan, 2.0).unwrap(),
    };
    let c = Case { p: CubaParams { lif: lifp, leak_syn: 1.0 }, g };
    let x = values(steps * n, 11, 3.0);
    let (zeros, gs, gv) = (vec![0.0; n], values(steps * n, 12, 1.0), values(n, 13, 1.0));
    let got = run(&c, steps, n, &x, (&zeros, &zeros), (&gs, &zeros, &gv), 3);
    assert_eq!(got, run(&c, steps, n, &x, (&zeros, &zeros), (&gs, &zeros, &gv), 1));
    let (mut s, mut h, mut v) = (vec![0.0; steps * n], vec![0.0; steps * n], vec![0.0; n]);
    let io = lif::ForwardIo { x: &x, v0: &zeros, spikes: &mut s, h_seq: &mut h, v: &mut v };
    lif::forward(&lifp, steps, io, 1).unwrap();
    let (mut gx, mut gv0) = (vec![0.0; steps * n], vec![0.0; n]);
    let io = lif::BackwardIo {
        grad_spikes: &gs,
        grad_v: Some(&gv),
        h_seq: &h,
        v0: None,
        grad_x: &mut gx,
        grad_v0: &mut gv0,
    };
    lif::backward(&lifp, &g, steps, io, 1).unwrap();
    assert_eq!((got.0, got.1, got.3, got.4, got.6), (s, h, v, gx, gv0));
    assert!(got.5.iter().all(|&g| g == 0.0), "nothing reaches I_0 through a pass-through synapse");
}

#[test]
fn bad_buffers_and_parameters_are_errors() {
    let buf = |addr: u64, len: u64| RawBuf { addr, len, dtype: DType::F64 };
    let ok = ForwardBufs {
        x: buf(0x1000, 6),
        i0: buf(0x2000, 3),
        v0: buf(0x3000, 3),
        spikes: buf(0x4000, 6),
        h_seq: buf(0x5000, 6),
        i: buf(0x6000, 3),
        v: buf(0x7000, 3),
        leak_syn: buf(0x8000, 1),
    };
    assert!(ok.check(2, DType::F64).is_ok());
    assert!(matches!(
        ForwardBufs { i0: buf(0x2000, 2), ..ok }.check(2, DType::F64),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        ForwardBufs { h_seq: buf(0x1008, 6), ..ok }.check(2, DType::F64),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(ok.check(2, DType::F32), Err(Error::Dtype(_))));
    let syn32 = RawBuf { dtype: DType::F32, ..ok.leak_syn };
    assert!(matches!(
        ForwardBufs { leak_syn: syn32, ..ok }.check(2, DType::F64),
        Err(Error::Dtype(_))
    ));
    let back = BackwardBufs {
        grad_spikes: buf(0x1000, 6),
        grad_i: None,
        grad_v: Some(buf(0x2000, 4)),
        h_seq: buf(0x3000, 6),
        grad_x: buf(0x4000, 6),
        grad_i0: buf(0x5000, 3),
        grad_v0: buf(0x6000, 3),
        leak_syn: buf(0x8000, 1),
    };
    assert!(matches!(back.check(2, DType::F64), Err(Error::Shape(_))));
    assert!(BackwardBufs { grad_v: None, ..back }.check(2, DType::F64).is_ok());
    // The slice kernels check their own lengths and parameters too.
    let p = CubaParams {
        lif: NeuronParams { leak: 0.5, decay_input: true, v_threshold: 1.0, v_reset: None },
        leak_syn: 0.5,
    };
    let fwd = |p: &CubaParams, h_len: usize| {
        let (x, z) = (vec![0.0f64; 6], vec![0.0f64; 3]);
        let (mut s, mut h, mut i, mut v) =
            (vec![0.0; 6], vec![0.0; h_len], vec![0.0; 3], vec![0.0; 3]);
        let io = ForwardIo {
            x: &x,
            i0: &z,
            v0: &z,
            spikes: &mut s,
            h_seq: &mut h,
            i: &mut i,
            v: &mut v,
        };
        forward(p, 2, io, 1)
    };
    assert!(matches!(fwd(&p, 5), Err(Error::Shape(_))));
    assert!(matches!(fwd(&CubaParams { leak_syn: 0.0, ..p }, 6), Err(Error::InvalidArgument(_))));
    assert!(fwd(&p, 6).is_ok());
}
