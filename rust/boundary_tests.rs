//! The boundary's checks: every mismatch is an error before memory is touched, and whatever the
//! lengths, addresses and element types a caller claims, no check panics and every buffer set it
//! accepts is one the kernels can run on without leaving it.

use super::*;
use crate::neuron::{self, GradParams, NeuronParams};
use crate::surrogate::{Surrogate, SurrogateKind};
use proptest::prelude::*;

const P: NeuronParams =
    NeuronParams { leak: 0.5, decay_input: true, v_threshold: 1.0, v_reset: None };

fn grad() -> GradParams {
    GradParams { detach_reset: false, surrogate: Surrogate::new(SurrogateKind::Atan, 2.0).unwrap() }
}

fn of(v: &[f64]) -> RawBuf {
    RawBuf { addr: v.as_ptr() as u64, len: v.len() as u64, dtype: DType::F64 }
}

fn forward_bufs(bufs: &[Vec<f64>; 5], leak: Option<&[f64]>) -> ForwardBufs {
    ForwardBufs {
        x: of(&bufs[0]),
        v0: of(&bufs[1]),
        spikes: of(&bufs[2]),
        h_seq: of(&bufs[3]),
        v: of(&bufs[4]),
        leak: leak.map(of),
    }
}

/// Runs the CPU forward on `bufs` through the boundary, as the binding does.
fn run_forward(steps: usize, b: &ForwardBufs) -> Result<()> {
    // SAFETY: every RawBuf describes a live Vec<f64> of exactly its length, or is refused.
    let (io, leak) = unsafe { b.cpu::<f64>(steps)? };
    neuron::forward(&NeuronParams { leak: leak.unwrap_or(P.leak), ..P }, steps, io, 1)
}

#[test]
fn each_buffer_is_checked_against_the_shape_the_others_imply() {
    let (steps, n) = (3, 5);
    let good = [vec![0.5; 15], vec![0.0; 5], vec![0.0; 15], vec![0.0; 15], vec![0.0; 5]];
    run_forward(steps, &forward_bufs(&good, None)).unwrap();
    for (i, name) in ["x", "v0", "spikes", "h_seq", "v"].iter().enumerate() {
        let mut bad = good.clone();
        bad[i].push(0.0);
        let err = run_forward(steps, &forward_bufs(&bad, None)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Shape(_)), "{name}: {msg}");
        // v0 sets N, so a longer v0 is reported on the first [T, N] buffer instead.
        let named = if *name == "v0" { "x" } else { name };
        assert!(msg.starts_with(&format!("{named} has")), "{name}: {msg}");
    }
    let leak = [0.25, 0.0];
    let err = run_forward(steps, &forward_bufs(&good, Some(&leak))).unwrap_err();
    assert_eq!(err.to_string(), "leak has 2 elements, expected 1");
    run_forward(steps, &forward_bufs(&good, Some(&leak[..1]))).unwrap();
    let leak32 = [0.25f32];
    let mut b = forward_bufs(&good, None);
    b.leak = Some(RawBuf { addr: leak32.as_ptr() as u64, len: 1, dtype: DType::F32 });
    // SAFETY: as in run_forward.
    assert_eq!(unsafe { b.cpu::<f64>(steps) }.unwrap().1, Some(0.25), "a float32 leak is read");
    b.leak = Some(RawBuf { dtype: DType::F16, ..b.leak.unwrap() });
    assert!(matches!(run_forward(steps, &b), Err(Error::Dtype(_))));
    assert!(matches!(run_forward(0, &forward_bufs(&good, None)), Err(Error::Shape(_))));
    let _ = n;
}

#[test]
fn element_types_are_checked_per_buffer() {
    let good = [vec![0.5; 6], vec![0.0; 3], vec![0.0; 6], vec![0.0; 6], vec![0.0; 3]];
    let mut b = forward_bufs(&good, None);
    b.spikes.dtype = DType::F32;
    let err = run_forward(2, &b).unwrap_err();
    assert_eq!(err, Error::Dtype("spikes is float32, expected float64".into()));
    let mut b = forward_bufs(&good, None);
    b.x.dtype = DType::F32;
    // SAFETY: refused before any slice is made.
    assert!(matches!(unsafe { b.cpu::<f64>(2) }, Err(Error::Dtype(_))));
}

#[test]
fn outputs_may_not_overlap_any_other_buffer() {
    let mem = vec![0.0f64; 64];
    let at = |offset: usize, len: usize| RawBuf {
        addr: mem[offset..].as_ptr() as u64,
        len: len as u64,
        dtype: DType::F64,
    };
    let b = ForwardBufs {
        x: at(0, 6),
        v0: at(6, 3),
        spikes: at(9, 6),
        h_seq: at(15, 6),
        v: at(21, 3),
        leak: None,
    };
    let t = Types { io: DType::F64, h: DType::F64, leak: DType::F64 };
    b.check(2, t).unwrap();
    let inputs_may_alias = ForwardBufs { v0: at(0, 3), ..b };
    inputs_may_alias.check(2, t).unwrap();
    for bad in [
        ForwardBufs { spikes: at(5, 6), ..b },
        ForwardBufs { v: at(14, 3), ..b },
        ForwardBufs { h_seq: at(9, 6), ..b },
        ForwardBufs { leak: Some(at(22, 1)), ..b },
    ] {
        let err = bad.check(2, t).unwrap_err();
        assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("overlap")), "{err}");
    }
}

#[test]
fn null_misaligned_and_unaddressable_buffers_are_refused() {
    let t = Types { io: DType::F32, h: DType::F32, leak: DType::F32 };
    let b = |addr: u64, len: u64| RawBuf { addr, len, dtype: DType::F32 };
    let ok = RateBufs {
        x: b(0x1000, 4),
        v0: b(0x2000, 2),
        spikes: b(0x3000, 4),
        v: b(0x4000, 2),
        rate: b(0x5000, 2),
        eligibility: b(0x6000, 2),
        leak: None,
    };
    ok.check(2, t).unwrap();
    for bad in [
        RateBufs { rate: b(0, 2), ..ok },
        RateBufs { rate: b(0x5002, 2), ..ok },
        RateBufs { x: b(u64::MAX - 7, 4), ..ok },
        RateBufs { eligibility: b(isize::MAX as u64 - 3, 2), ..ok },
    ] {
        assert!(matches!(bad.check(2, t), Err(Error::InvalidArgument(_))), "{bad:?}");
    }
    // A zero-length buffer's address is never used.
    let empty = b(0, 0);
    let none = RateBufs {
        x: empty,
        v0: empty,
        spikes: empty,
        v: empty,
        rate: empty,
        eligibility: empty,
        leak: None,
    };
    assert_eq!(none.check(3, t).unwrap(), Extent { steps: 3, n: 0 });
}

#[test]
fn partials_are_required_with_v0_on_cuda_only() {
    let t = Types { io: DType::F32, h: DType::F32, leak: DType::F32 };
    let b = |addr: u64, len: u64| RawBuf { addr, len, dtype: DType::F32 };
    let ok = BackwardBufs {
        grad_spikes: b(0x1000, 4),
        grad_v: None,
        h_seq: b(0x2000, 4),
        v0: Some(b(0x3000, 2)),
        grad_x: b(0x4000, 4),
        grad_v0: b(0x5000, 2),
        leak: None,
        partials: None,
    };
    ok.check(2, t, None).unwrap();
    assert!(matches!(ok.check(2, t, Some(3)), Err(Error::Shape(m)) if m.contains("partials")));
    let partials = Some(RawBuf { addr: 0x6000, len: 3, dtype: DType::F64 });
    BackwardBufs { partials, ..ok }.check(2, t, Some(3)).unwrap();
    BackwardBufs { partials, ..ok }.check(2, t, Some(2)).unwrap();
    assert!(BackwardBufs { partials, ..ok }.check(2, t, Some(4)).is_err());
    assert!(BackwardBufs { partials, ..ok }.check(2, t, None).is_err(), "CPU takes none");
    BackwardBufs { v0: None, ..ok }.check(2, t, Some(3)).unwrap();
}

/// A buffer of `len` elements for a claimed length `claim` (usually the same).
fn buffers(lens: &[usize]) -> Vec<Vec<f64>> {
    lens.iter().map(|&len| (0..len).map(|i| (i % 7) as f64 * 0.4 - 0.5).collect()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Arbitrary lengths: the forward either refuses them or runs on exactly `[T, N]` / `[N]`.
    #[test]
    fn forward_with_arbitrary_lengths_never_leaves_its_buffers(
        steps in 0usize..5, lens in prop::collection::vec(0usize..24, 5), leak in 0usize..3,
    ) {
        let bufs = buffers(&lens);
        let leak_buf = vec![0.3; leak];
        let b = ForwardBufs {
            x: of(&bufs[0]), v0: of(&bufs[1]), spikes: of(&bufs[2]), h_seq: of(&bufs[3]),
            v: of(&bufs[4]), leak: (leak > 0).then(|| of(&leak_buf)),
        };
        let n = lens[1];
        let fits = steps > 0 && [lens[0], lens[2], lens[3]].iter().all(|&l| l == steps * n)
            && lens[4] == n && leak != 2;
        prop_assert_eq!(run_forward(steps, &b).is_ok(), fits);
    }

    #[test]
    fn backward_with_arbitrary_lengths_never_leaves_its_buffers(
        steps in 0usize..5, lens in prop::collection::vec(0usize..24, 6),
        with_grad_v in any::<bool>(), with_v0 in any::<bool>(),
    ) {
        let bufs = buffers(&lens);
        let b = BackwardBufs {
            grad_spikes: of(&bufs[0]), grad_v: with_grad_v.then(|| of(&bufs[1])),
            h_seq: of(&bufs[2]), v0: with_v0.then(|| of(&bufs[3])), grad_x: of(&bufs[4]),
            grad_v0: of(&bufs[5]), leak: None, partials: None,
        };
        let n = lens[5];
        let fits = steps > 0 && [lens[0], lens[2], lens[4]].iter().all(|&l| l == steps * n)
            && (!with_grad_v || lens[1] == n) && (!with_v0 || lens[3] == n);
        // SAFETY: as in run_forward.
        let ran = unsafe { b.cpu::<f64>(steps) }
            .and_then(|(io, _)| neuron::backward(&P, &grad(), steps, io, 1));
        prop_assert_eq!(ran.is_ok(), fits);
    }

    #[test]
    fn rate_forward_with_arbitrary_lengths_never_leaves_its_buffers(
        steps in 0usize..5, lens in prop::collection::vec(0usize..24, 6),
    ) {
        let bufs = buffers(&lens);
        let b = RateBufs {
            x: of(&bufs[0]), v0: of(&bufs[1]), spikes: of(&bufs[2]), v: of(&bufs[3]),
            rate: of(&bufs[4]), eligibility: of(&bufs[5]), leak: None,
        };
        let n = lens[1];
        let fits = steps > 0 && lens[0] == steps * n && lens[2] == steps * n
            && lens[3..].iter().all(|&l| l == n);
        // SAFETY: as in run_forward.
        let ran = unsafe { b.cpu::<f64>(steps) }
            .and_then(|(io, _)| neuron::rate_forward(&P, &grad(), steps, io, 1));
        prop_assert_eq!(ran.is_ok(), fits);
    }

    /// Whatever a caller claims, checking never panics or overflows.
    #[test]
    fn checks_never_panic_on_any_claim(
        steps in any::<usize>(),
        claims in prop::collection::vec((any::<u64>(), any::<u64>(), 0usize..4), 6),
        leak in any::<bool>(),
    ) {
        let raw: Vec<RawBuf> = claims.iter()
            .map(|&(addr, len, d)| RawBuf { addr, len, dtype: DType::ALL[d] })
            .collect();
        let t = Types { io: DType::F32, h: DType::F32, leak: DType::F32 };
        let f = ForwardBufs { x: raw[0], v0: raw[1], spikes: raw[2], h_seq: raw[3], v: raw[4],
                              leak: leak.then_some(raw[5]) };
        let _ = f.check(steps, t);
        let b = BackwardBufs { grad_spikes: raw[0], grad_v: Some(raw[1]), h_seq: raw[2],
                               v0: leak.then_some(raw[3]), grad_x: raw[4], grad_v0: raw[5],
                               leak: None, partials: Some(raw[1]) };
        let _ = b.check(steps, t, Some(raw[0].len));
        let r = RateBufs { x: raw[0], v0: raw[1], spikes: raw[2], v: raw[3], rate: raw[4],
                           eligibility: raw[5], leak: None };
        let _ = r.check(steps, t);
    }
}
