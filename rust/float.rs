//! The arithmetic the kernels need from their element type: float32 or float64.

use crate::dtype::DType;
use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// A floating-point element type the neuron kernels are generic over.
pub trait Float:
    Copy
    + Send
    + Sync
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// The buffer element type this is.
    const DTYPE: DType;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn abs(self) -> Self;
    /// 1 when `self >= other`, else 0 (a spike).
    #[inline(always)]
    fn step_ge(self, other: Self) -> Self {
        if self >= other {
            Self::ONE
        } else {
            Self::ZERO
        }
    }
}

macro_rules! impl_float {
    ($t:ty, $exp:ident, $dtype:ident) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const DTYPE: DType = DType::$dtype;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
        }
    };
}

impl_float!(f32, exp_f32, F32);
impl_float!(f64, exp_f64, F64);

// `exp` without a libm call, so that loops using it vectorise (the sigmoid surrogate): round
// `x / ln 2` to an integer `n` with the 1.5 * 2^k magic-number trick (plain SSE2), evaluate
// `e^r` for `|r| <= ln 2 / 2` by a polynomial, and scale by `2^n` through the exponent bits.
// Inputs are clamped to the finite range; NaN propagates through the polynomial.

#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    // Cephes expf's minimax polynomial; relative error below 2e-7.
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let n = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    e * f32::from_bits(((n + 127) as u32) << 23)
}

#[inline(always)]
fn exp_f64(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    let x = x.clamp(-708.0, 709.0);
    let t = x * std::f64::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * 6.931_471_803_691_238e-1 - n * 1.908_214_929_270_587_7e-10;
    // Taylor series to r^13 by Horner: truncation error below 1e-17 for |r| <= 0.35.
    let mut e = 1.0 / FACTORIALS[13];
    for k in (0..13).rev() {
        e = e * r + 1.0 / FACTORIALS[k];
    }
    let n = t.to_bits() as i64 - MAGIC.to_bits() as i64;
    e * f64::from_bits(((n + 1023) as u64) << 52)
}

const FACTORIALS: [f64; 14] = {
    let mut f = [1.0; 14];
    let mut k = 1;
    while k < 14 {
        f[k] = f[k - 1] * k as f64;
        k += 1;
    }
    f
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_whole_range() {
        for i in -8690..=8790 {
            let x = i as f64 * 0.01 + 0.003;
            let (e32, e64) = (Float::exp(x as f32), Float::exp(x));
            let (r32, r64) = ((x as f32).exp(), x.exp());
            assert!(((e32 - r32) / r32).abs() < 4e-7, "f32 exp({x}): {e32} vs {r32}");
            assert!(((e64 - r64) / r64).abs() < 4e-16, "f64 exp({x}): {e64} vs {r64}");
        }
        assert!(Float::exp(f32::NAN).is_nan() && Float::exp(f64::NAN).is_nan());
        assert_eq!(Float::exp(-1e4_f32), Float::exp(-87.0_f32));
        assert!(Float::exp(1e4_f64).is_finite());
    }
}
