//! Surrogate gradients: the stand-in for `dS/dH` in the backward pass (docs/neurons.md).
//!
//! `sg(u)` is evaluated at `u = H - v_threshold`. Each kind is also a small struct implementing
//! [`SurrogateGrad`], so the kernels' inner loops are monomorphised per kind.

use crate::error::{Error, Result};
use crate::float::Float;
use std::f64::consts::PI;

/// The five surrogate families of docs/neurons.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurrogateKind {
    Sigmoid,
    Atan,
    Triangle,
    Rectangle,
    FastSigmoid,
}

impl SurrogateKind {
    pub const ALL: [SurrogateKind; 5] = [
        SurrogateKind::Sigmoid,
        SurrogateKind::Atan,
        SurrogateKind::Triangle,
        SurrogateKind::Rectangle,
        SurrogateKind::FastSigmoid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SurrogateKind::Sigmoid => "sigmoid",
            SurrogateKind::Atan => "atan",
            SurrogateKind::Triangle => "triangle",
            SurrogateKind::Rectangle => "rectangle",
            SurrogateKind::FastSigmoid => "fast_sigmoid",
        }
    }

    pub fn default_alpha(self) -> f64 {
        match self {
            SurrogateKind::Sigmoid => 4.0,
            SurrogateKind::Atan => 2.0,
            SurrogateKind::Triangle | SurrogateKind::Rectangle => 1.0,
            SurrogateKind::FastSigmoid => 25.0,
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
            Error::InvalidArgument(format!(
                "unknown surrogate {name:?}; expected one of {}",
                names.join(", ")
            ))
        })
    }
}

/// A surrogate family with its parameter `alpha` (the `a`, `g`, `w` or `k` of docs/neurons.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Surrogate {
    pub kind: SurrogateKind,
    pub alpha: f64,
}

impl Surrogate {
    pub fn new(kind: SurrogateKind, alpha: f64) -> Result<Self> {
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "surrogate alpha must be a finite number > 0, got {alpha}"
            )));
        }
        Ok(Surrogate { kind, alpha })
    }

    /// `sg(u)` for one value; the kernels use the monomorphised structs below instead.
    pub fn grad<F: Float>(&self, u: F) -> F {
        match self.kind {
            SurrogateKind::Sigmoid => Sigmoid::new(self.alpha).grad(u),
            SurrogateKind::Atan => Atan::new(self.alpha).grad(u),
            SurrogateKind::Triangle => Triangle::new(self.alpha).grad(u),
            SurrogateKind::Rectangle => Rectangle::new(self.alpha).grad(u),
            SurrogateKind::FastSigmoid => FastSigmoid::new(self.alpha).grad(u),
        }
    }
}

/// `sg(u)` specialised to one family and element type.
pub trait SurrogateGrad<F: Float>: Copy + Send + Sync {
    fn grad(&self, u: F) -> F;
}

/// `a * s * (1 - s)` with `s = sigmoid(a * u)`.
#[derive(Clone, Copy)]
pub struct Sigmoid<F>(F);
/// `(a / 2) / (1 + (pi / 2 * a * u)^2)`.
#[derive(Clone, Copy)]
pub struct Atan<F> {
    half_a: F,
    scale: F,
}
/// `max(0, g - |u|) / g^2`.
#[derive(Clone, Copy)]
pub struct Triangle<F> {
    g: F,
    inv_g2: F,
}
/// `(1 / w) * [|u| < w / 2]`.
#[derive(Clone, Copy)]
pub struct Rectangle<F> {
    half_w: F,
    inv_w: F,
}
/// `1 / (1 + k * |u|)^2`.
#[derive(Clone, Copy)]
pub struct FastSigmoid<F>(F);

impl<F: Float> Sigmoid<F> {
    pub fn new(a: f64) -> Self {
        Sigmoid(F::from_f64(a))
    }
}
impl<F: Float> Atan<F> {
    pub fn new(a: f64) -> Self {
        Atan { half_a: F::from_f64(a / 2.0), scale: F::from_f64(PI / 2.0 * a) }
    }
}
impl<F: Float> Triangle<F> {
    pub fn new(g: f64) -> Self {
        Triangle { g: F::from_f64(g), inv_g2: F::from_f64(1.0 / (g * g)) }
    }
}
impl<F: Float> Rectangle<F> {
    pub fn new(w: f64) -> Self {
        Rectangle { half_w: F::from_f64(w / 2.0), inv_w: F::from_f64(1.0 / w) }
    }
}
impl<F: Float> FastSigmoid<F> {
    pub fn new(k: f64) -> Self {
        FastSigmoid(F::from_f64(k))
    }
}

impl<F: Float> SurrogateGrad<F> for Sigmoid<F> {
    #[inline(always)]
    fn grad(&self, u: F) -> F {
        // sg is even: take s = sigmoid(-a|u|) <= 1/2, so that `1 - s` cancels no digits.
        let s = F::ONE / (F::ONE + (self.0 * u.abs()).exp());
        self.0 * s * (F::ONE - s)
    }
}
impl<F: Float> SurrogateGrad<F> for Atan<F> {
    #[inline(always)]
    fn grad(&self, u: F) -> F {
        let z = self.scale * u;
        self.half_a / (F::ONE + z * z)
    }
}
impl<F: Float> SurrogateGrad<F> for Triangle<F> {
    #[inline(always)]
    fn grad(&self, u: F) -> F {
        let d = self.g - u.abs();
        if d > F::ZERO {
            d * self.inv_g2
        } else {
            F::ZERO
        }
    }
}
impl<F: Float> SurrogateGrad<F> for Rectangle<F> {
    #[inline(always)]
    fn grad(&self, u: F) -> F {
        if u.abs() < self.half_w {
            self.inv_w
        } else {
            F::ZERO
        }
    }
}
impl<F: Float> SurrogateGrad<F> for FastSigmoid<F> {
    #[inline(always)]
    fn grad(&self, u: F) -> F {
        let d = F::ONE + self.0 * u.abs();
        F::ONE / (d * d)
    }
}

/// Runs `$body` with `$g` bound to the monomorphised surrogate of `$s` for element type `$f`.
macro_rules! with_surrogate {
    ($s:expr, $f:ty, |$g:ident| $body:expr) => {{
        use $crate::surrogate::*;
        let s: Surrogate = $s;
        match s.kind {
            SurrogateKind::Sigmoid => {
                let $g = Sigmoid::<$f>::new(s.alpha);
                $body
            }
            SurrogateKind::Atan => {
                let $g = Atan::<$f>::new(s.alpha);
                $body
            }
            SurrogateKind::Triangle => {
                let $g = Triangle::<$f>::new(s.alpha);
                $body
            }
            SurrogateKind::Rectangle => {
                let $g = Rectangle::<$f>::new(s.alpha);
                $body
            }
            SurrogateKind::FastSigmoid => {
                let $g = FastSigmoid::<$f>::new(s.alpha);
                $body
            }
        }
    }};
}
pub(crate) use with_surrogate;

#[cfg(test)]
mod tests {
    use super::*;

    /// The smooth function whose derivative each surrogate is.
    fn primitive(kind: SurrogateKind, a: f64, u: f64) -> f64 {
        match kind {
            SurrogateKind::Sigmoid => 1.0 / (1.0 + (-a * u).exp()),
            SurrogateKind::Atan => (PI / 2.0 * a * u).atan() / PI + 0.5,
            SurrogateKind::Triangle => {
                let c = u.clamp(-a, a);
                (c + a - c * c.abs() / (2.0 * a)) / a - 0.5
            }
            SurrogateKind::Rectangle => (u / a + 0.5).clamp(0.0, 1.0),
            SurrogateKind::FastSigmoid => u / (1.0 + a * u.abs()),
        }
    }

    #[test]
    fn each_surrogate_is_the_derivative_of_its_primitive() {
        let h = 1e-6;
        for kind in SurrogateKind::ALL {
            for a in [0.5, kind.default_alpha(), 3.0] {
                let s = Surrogate::new(kind, a).unwrap();
                for i in -300..=300 {
                    let u = i as f64 * 0.01 + 0.003; // avoid the kinks of triangle / rectangle
                    if kind == SurrogateKind::Rectangle && ((u.abs() - a / 2.0).abs() < 2.0 * h) {
                        continue;
                    }
                    let fd = (primitive(kind, a, u + h) - primitive(kind, a, u - h)) / (2.0 * h);
                    let g: f64 = s.grad(u);
                    assert!((fd - g).abs() < 1e-6, "{kind:?} a={a} u={u}: fd {fd} vs sg {g}");
                }
            }
        }
    }

    #[test]
    fn surrogates_peak_at_threshold_and_are_symmetric() {
        for kind in SurrogateKind::ALL {
            let s = Surrogate::new(kind, kind.default_alpha()).unwrap();
            let at0: f64 = s.grad(0.0);
            for u in [0.1, 0.4, 1.5] {
                let (p, m): (f64, f64) = (s.grad(u), s.grad(-u));
                assert_eq!(p, m, "{kind:?} not symmetric at {u}");
                assert!(p <= at0, "{kind:?} exceeds its peak at {u}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_bad_input_is_rejected() {
        for kind in SurrogateKind::ALL {
            assert_eq!(SurrogateKind::from_name(kind.name()).unwrap(), kind);
        }
        assert!(SurrogateKind::from_name("relu").is_err());
        assert!(Surrogate::new(SurrogateKind::Atan, 0.0).is_err());
        assert!(Surrogate::new(SurrogateKind::Atan, f64::NAN).is_err());
    }
}
