//! Packing against a naive oracle written from the layout alone (element `k` is bit `k % 8` of
//! byte `k / 8`), for every width, size and thread count, and the raw-buffer checks.

use super::*;
use crate::parallel::CHUNK;
use proptest::prelude::*;

/// The oracle: one element at a time, by value.
fn oracle_pack(spikes: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; spikes.len().div_ceil(8)];
    for (k, &s) in spikes.iter().enumerate() {
        if s {
            out[k / 8] |= 1 << (k % 8);
        }
    }
    out
}

fn patterns<T: Bits>(spikes: &[bool], one: T) -> Vec<T> {
    spikes.iter().map(|&s| if s { one } else { T::ZERO }).collect()
}

fn round_trip<T: Bits>(spikes: &[bool], one: T, threads: usize) {
    let x = patterns(spikes, one);
    let mut bits = vec![0xa5u8; packed_len(x.len())];
    assert_eq!(pack(&x, one, &mut bits, threads).unwrap(), None);
    assert_eq!(bits, oracle_pack(spikes));
    let mut back = vec![T::from_u64(0x1234); x.len()];
    unpack(&bits, one, &mut back, threads).unwrap();
    assert_eq!(back, x);
}

const ONES: [u64; 4] = [0x3c00, 0x3f80, 0x3f80_0000, 0x3ff0_0000_0000_0000];

fn every_width(spikes: &[bool], threads: usize) {
    round_trip(spikes, ONES[0] as u16, threads);
    round_trip(spikes, ONES[1] as u16, threads);
    round_trip(spikes, ONES[2] as u32, threads);
    round_trip(spikes, ONES[3], threads);
}

#[test]
fn the_patterns_of_one_are_the_floats() {
    assert_eq!(one_bits(DType::F32).unwrap(), u64::from(1.0f32.to_bits()));
    assert_eq!(one_bits(DType::F64).unwrap(), 1.0f64.to_bits());
    assert_eq!(one_bits(DType::BF16).unwrap(), u64::from(1.0f32.to_bits() >> 16));
    assert_eq!(one_bits(DType::F16).unwrap(), 0x3c00); // sign 0, exponent 15 (bias), mantissa 0
    assert!(matches!(one_bits(DType::U8), Err(Error::Dtype(_))));
}

#[test]
fn sizes_around_bytes_words_and_chunks_round_trip() {
    let big = 3 * CHUNK * 8 + 13;
    for n in [0, 1, 7, 8, 9, 63, 64, 65, 127, 129, 1000, big] {
        let spikes: Vec<bool> = (0..n).map(|k| (k * 2_654_435_761usize) % 7 < 3).collect();
        for threads in [1, 2, 3] {
            every_width(&spikes, threads);
        }
        every_width(&vec![true; n], 2);
        every_width(&vec![false; n], 2);
    }
}

#[test]
fn large_inputs_split_into_chunks_the_same_way() {
    let n = (1 << 20) + 5;
    let spikes: Vec<bool> = (0..n).map(|k| (k ^ (k >> 3)) % 3 == 0).collect();
    round_trip(&spikes, ONES[2] as u32, 4);
}

/// Not spikes in any width: -0.0, NaN, infinities, 0.5, 2.0, the smallest subnormal, and 1.0's
/// pattern with one more bit.
fn not_spikes(one: u64, width: u32) -> Vec<u64> {
    let sign = 1u64 << (width - 1);
    let exp_mask = match width {
        16 if one == 0x3c00 => 0x7c00,
        16 => 0x7f80,
        32 => 0x7f80_0000,
        _ => 0x7ff0_0000_0000_0000,
    };
    let mantissa = one.trailing_zeros(); // 1.0 = exponent bias, mantissa 0
    vec![
        sign,
        sign | one,
        exp_mask | 1,
        exp_mask,
        sign | exp_mask,
        one - (1 << mantissa), // 0.5
        one + (1 << mantissa), // 2.0
        1,
        one | 1,
    ]
}

fn refuses<T: Bits>(one: T, bad: T, n: usize, at: usize) {
    let mut x: Vec<T> = (0..n).map(|k| if k % 3 == 0 { one } else { T::ZERO }).collect();
    x[at] = bad;
    let mut bits = vec![0xffu8; packed_len(n)];
    assert_eq!(pack(&x, one, &mut bits, 2).unwrap(), Some(at), "{bad:?} at {at} of {n}");
    assert!(bits.iter().all(|&b| b == 0), "a refused pack leaves no partial result");
}

#[test]
fn any_non_spike_anywhere_refuses_the_whole_tensor() {
    let big = 2 * CHUNK * 8 + 3;
    for (w, &one) in ONES.iter().enumerate() {
        let width = [16, 16, 32, 64][w];
        for bad in not_spikes(one, width) {
            for (n, at) in [(1, 0), (9, 8), (64, 63), (65, 64), (200, 77), (big, big - 1)] {
                match width {
                    16 => refuses(one as u16, bad as u16, n, at),
                    32 => refuses(one as u32, bad as u32, n, at),
                    _ => refuses(one, bad, n, at),
                }
            }
        }
    }
}

#[test]
fn unpack_refuses_wrong_lengths_and_padding_bits_before_writing() {
    let mut out = vec![7u32; 9];
    assert!(
        matches!(unpack(&[0], 1, &mut out, 1), Err(Error::Shape(m)) if m.contains("9 elements need 2"))
    );
    assert!(
        matches!(unpack(&[0, 0b10], 1, &mut out, 1), Err(Error::InvalidArgument(m)) if m.contains("padding"))
    );
    assert_eq!(out, vec![7; 9]);
    unpack(&[0, 0b1], 1, &mut out, 1).unwrap();
    assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let mut none: [u32; 0] = [];
    unpack(&[], 1, &mut none, 1).unwrap();
    assert!(matches!(pack(&[1u32], 1, &mut [], 1), Err(Error::Shape(_))));
}

fn raw(addr: u64, len: u64, dtype: DType) -> RawBuf {
    RawBuf { addr, len, dtype }
}

#[test]
fn raw_buffers_are_checked_before_any_memory_is_touched() {
    let x = raw(0x1000, 9, DType::F32);
    let bits = raw(0x2000, 2, DType::U8);
    let ok = PackBufs { x, bits, flag: None };
    assert_eq!(ok.check(false).unwrap(), (DType::F32, 9));
    let err = |b: PackBufs, flag| b.check(flag).unwrap_err();
    assert!(matches!(err(PackBufs { bits: raw(0x2000, 1, DType::U8), ..ok }, false),
                     Error::Shape(m) if m.contains("bits has 1 elements, expected 2")));
    assert!(matches!(err(PackBufs { bits: raw(0x2000, 2, DType::F16), ..ok }, false),
                     Error::Dtype(m) if m.contains("bits is float16, expected uint8")));
    assert!(matches!(err(PackBufs { x: raw(0x1000, 9, DType::U8), ..ok }, false),
                     Error::Dtype(m) if m.contains("x is uint8")));
    assert!(matches!(err(PackBufs { x: raw(0x1002, 9, DType::F32), ..ok }, false),
                     Error::InvalidArgument(m) if m.contains("misaligned")));
    assert!(matches!(err(PackBufs { bits: raw(0x1010, 2, DType::U8), ..ok }, false),
                     Error::InvalidArgument(m) if m.contains("overlap")));
    assert!(matches!(err(ok, true), Error::Shape(m) if m.contains("flag")));
    let flagged = PackBufs { flag: Some(raw(0x3000, 1, DType::U8)), ..ok };
    assert!(flagged.check(true).is_ok());
    assert!(matches!(err(flagged, false), Error::InvalidArgument(m) if m.contains("CUDA")));
    let u = UnpackBufs { bits, out: raw(0x1000, 9, DType::BF16) };
    assert_eq!(u.check().unwrap(), (DType::BF16, 9));
    assert!(matches!(UnpackBufs { out: raw(0x1000, 17, DType::F64), ..u }.check(),
                     Err(Error::Shape(m)) if m.contains("bits has 2 elements, expected 3")));
    assert!(matches!(UnpackBufs { out: raw(0x1000, 9, DType::U8), ..u }.check(),
                     Err(Error::Dtype(m)) if m.contains("out is uint8")));
    let empty = PackBufs { x: raw(0, 0, DType::F64), bits: raw(0, 0, DType::U8), flag: None };
    assert_eq!(empty.check(false).unwrap(), (DType::F64, 0));
}

#[test]
fn raw_buffers_pack_and_unpack_every_dtype_through_the_cpu_path() {
    let spikes: Vec<bool> = (0..77).map(|k| k % 5 == 1).collect();
    let expected = oracle_pack(&spikes);
    let x32: Vec<f32> = spikes.iter().map(|&s| f32::from(u8::from(s))).collect();
    let x64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
    let x16: Vec<u16> = patterns(&spikes, 0x3c00u16);
    let xb16: Vec<u16> = patterns(&spikes, 0x3f80u16);
    let cases: [(u64, DType); 4] = [
        (x32.as_ptr() as u64, DType::F32),
        (x64.as_ptr() as u64, DType::F64),
        (x16.as_ptr() as u64, DType::F16),
        (xb16.as_ptr() as u64, DType::BF16),
    ];
    for (addr, dtype) in cases {
        let mut bits = vec![0u8; expected.len()];
        let b = PackBufs {
            x: raw(addr, 77, dtype),
            bits: raw(bits.as_mut_ptr() as u64, bits.len() as u64, DType::U8),
            flag: None,
        };
        // SAFETY: the vectors live through the call and match the descriptions.
        assert_eq!(unsafe { b.pack_cpu(2) }.unwrap(), None);
        assert_eq!(bits, expected);
        let mut out = vec![0xffu64; 77];
        let u = UnpackBufs {
            bits: raw(bits.as_ptr() as u64, bits.len() as u64, DType::U8),
            out: raw(out.as_mut_ptr() as u64, 77, dtype),
        };
        unsafe { u.unpack_cpu(1) }.unwrap();
        // SAFETY: `out` holds at least 77 elements of every width.
        let same = unsafe {
            std::slice::from_raw_parts(out.as_ptr().cast::<u8>(), 77 * dtype.size() as usize)
                == std::slice::from_raw_parts(addr as *const u8, 77 * dtype.size() as usize)
        };
        assert!(same, "{dtype:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_spikes_round_trip_exactly(
        spikes in prop::collection::vec(any::<bool>(), 0..3000),
        threads in 1usize..4,
    ) {
        every_width(&spikes, threads);
    }

    #[test]
    fn any_pattern_is_packed_exactly_when_it_is_a_spike(
        values in prop::collection::vec(prop_oneof![Just(0u32), Just(0x3f80_0000), any::<u32>()], 0..600),
    ) {
        let one = 0x3f80_0000u32;
        let first = values.iter().position(|&v| v != 0 && v != one);
        let mut bits = vec![0u8; packed_len(values.len())];
        prop_assert_eq!(pack(&values, one, &mut bits, 2).unwrap(), first);
        if first.is_none() {
            let spikes: Vec<bool> = values.iter().map(|&v| v == one).collect();
            prop_assert_eq!(bits, oracle_pack(&spikes));
        }
    }

    /// Whatever a caller claims, checking never panics or overflows.
    #[test]
    fn checks_never_panic_on_any_claim(
        claims in prop::collection::vec((any::<u64>(), any::<u64>(), 0usize..5), 3),
        flag in any::<bool>(),
    ) {
        let all = [DType::F16, DType::BF16, DType::F32, DType::F64, DType::U8];
        let r: Vec<RawBuf> = claims.iter().map(|&(a, l, d)| raw(a, l, all[d])).collect();
        let _ = PackBufs { x: r[0], bits: r[1], flag: flag.then_some(r[2]) }.check(flag);
        let _ = UnpackBufs { bits: r[0], out: r[1] }.check();
    }
}
