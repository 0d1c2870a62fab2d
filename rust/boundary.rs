//! What crosses into the kernels from a caller that allocated the memory (Python, through
//! `snnrs.ops`): raw buffers, each described by its own address, element count and element type.
//!
//! Nothing here trusts that the caller computed one size and applied it to every buffer. Each
//! op's buffer set is checked as a whole before any memory is touched: every length against the
//! `[T, N]` / `[N]` shape the op implies (N from the state buffer, T given), every element type
//! against the call's, every address non-null and aligned, and every written buffer disjoint
//! from every other buffer of the call. The CPU path then views them as slices
//! ([`ForwardBufs::cpu`] and its siblings); the CUDA path passes the addresses to its kernels.
//! This module has no PyO3 in it, so its property tests run under plain `cargo test`.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::neuron::{sequence_len, BackwardIo, ForwardIo, RateIo};

/// One buffer as its caller describes it: the address of its first element, its element count
/// and its element type. An address of a zero-length buffer is never used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawBuf {
    pub addr: u64,
    pub len: u64,
    pub dtype: DType,
}

impl RawBuf {
    /// Checks element type, element count, address and that the whole range is addressable.
    fn expect(&self, name: &str, dtype: DType, len: u64) -> Result<()> {
        if self.dtype != dtype {
            return Err(Error::Dtype(format!(
                "{name} is {}, expected {}",
                self.dtype.name(),
                dtype.name()
            )));
        }
        if self.len != len {
            return Err(Error::Shape(format!("{name} has {} elements, expected {len}", self.len)));
        }
        if self.len == 0 {
            return Ok(());
        }
        if self.addr == 0 || !self.addr.is_multiple_of(dtype.size()) {
            return Err(Error::InvalidArgument(format!(
                "{name}: null or misaligned address {:#x} for {}",
                self.addr,
                dtype.name()
            )));
        }
        self.end().map(|_| ())
    }

    /// One past the last byte.
    fn end(&self) -> Result<u64> {
        self.len
            .checked_mul(self.dtype.size())
            .and_then(|bytes| self.addr.checked_add(bytes))
            .filter(|&end| end <= isize::MAX as u64)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "a buffer of {} {} elements at {:#x} exceeds the address space",
                    self.len,
                    self.dtype.name(),
                    self.addr
                ))
            })
    }

    fn overlaps(&self, other: &RawBuf) -> bool {
        if self.len == 0 || other.len == 0 {
            return false;
        }
        match (self.end(), other.end()) {
            (Ok(a_end), Ok(b_end)) => self.addr < b_end && other.addr < a_end,
            _ => true,
        }
    }
}

/// How long a buffer must be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Len {
    /// `[T, N]`.
    Seq,
    /// `[N]`.
    State,
    /// Exactly this many elements.
    Exactly(u64),
    /// At least this many (CUDA's per-block partial sums).
    AtLeast(u64),
}

/// One buffer of a call: its name (for messages), the buffer if present, its required element
/// type and length, and whether the kernel writes it.
pub(crate) struct Role<'a> {
    name: &'a str,
    buf: Option<RawBuf>,
    dtype: DType,
    len: Len,
    written: bool,
}

impl<'a> Role<'a> {
    pub(crate) fn input(
        name: &'a str,
        buf: impl Into<Option<RawBuf>>,
        dtype: DType,
        len: Len,
    ) -> Self {
        Role { name, buf: buf.into(), dtype, len, written: false }
    }

    pub(crate) fn output(
        name: &'a str,
        buf: impl Into<Option<RawBuf>>,
        dtype: DType,
        len: Len,
    ) -> Self {
        Role { name, buf: buf.into(), dtype, len, written: true }
    }
}

/// Checks every present buffer of a call against `steps` steps of `n` neurons, in order, then
/// that no written buffer overlaps any other (outputs are made `&mut` slices, and a kernel
/// reading what another part of it wrote would race).
pub(crate) fn check_call(steps: usize, n: u64, roles: &[Role<'_>]) -> Result<Extent> {
    let (extent, tn) = Extent::new(steps, n)?;
    for r in roles {
        let Some(b) = r.buf else { continue };
        let len = match r.len {
            Len::Seq => tn,
            Len::State => n,
            Len::Exactly(len) => len,
            Len::AtLeast(len) if b.len >= len => b.len,
            Len::AtLeast(len) => {
                return Err(Error::Shape(format!(
                    "{} has {} elements, the launch needs {len}",
                    r.name, b.len
                )))
            }
        };
        b.expect(r.name, r.dtype, len)?;
    }
    for (i, a) in roles.iter().enumerate() {
        for b in &roles[i + 1..] {
            let (Some(ba), Some(bb)) = (a.buf, b.buf) else { continue };
            if (a.written || b.written) && ba.overlaps(&bb) {
                return Err(Error::InvalidArgument(format!(
                    "{} and {} overlap in memory; outputs must be separate buffers",
                    a.name, b.name
                )));
            }
        }
    }
    Ok(extent)
}

/// The element types of one call: `io` for inputs and outputs, `h` for the saved charges
/// (float32 on CUDA for every `io`), `leak` for PLIF's one-element `sigmoid(w)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Types {
    pub io: DType,
    pub h: DType,
    pub leak: DType,
}

/// The size of one call: `T` steps of `N` neurons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub steps: usize,
    pub n: usize,
}

impl Extent {
    fn new(steps: usize, n: u64) -> Result<(Extent, u64)> {
        let n = usize::try_from(n).map_err(|_| Error::Shape(format!("N = {n} is too large")))?;
        let tn = sequence_len(steps, n)?;
        Ok((Extent { steps, n }, tn as u64))
    }
}

/// The buffers of the forward: `x, spikes, h_seq` are `[T, N]`; `v0, v` are `[N]`; `leak` is
/// PLIF's `sigmoid(w)` (one element) or absent.
#[derive(Debug, Clone, Copy)]
pub struct ForwardBufs {
    pub x: RawBuf,
    pub v0: RawBuf,
    pub spikes: RawBuf,
    pub h_seq: RawBuf,
    pub v: RawBuf,
    pub leak: Option<RawBuf>,
}

impl ForwardBufs {
    /// Checks every buffer against `steps` and `v0`'s length.
    pub fn check(&self, steps: usize, t: Types) -> Result<Extent> {
        use Len::*;
        check_call(
            steps,
            self.v0.len,
            &[
                Role::input("x", self.x, t.io, Seq),
                Role::input("v0", self.v0, t.io, State),
                Role::output("spikes", self.spikes, t.io, Seq),
                Role::output("h_seq", self.h_seq, t.h, Seq),
                Role::output("v", self.v, t.io, State),
                Role::input("leak", self.leak, t.leak, Exactly(1)),
            ],
        )
    }

    /// Checks the buffers for the CPU kernels in `F` and views them as slices, with the leak.
    ///
    /// # Safety
    /// Each buffer must address `len` initialised elements of its `dtype` that stay alive and
    /// untouched by anyone else for `'a`.
    pub unsafe fn cpu<'a, F: Float>(
        &self,
        steps: usize,
    ) -> Result<(ForwardIo<'a, F>, Option<f64>)> {
        self.check(steps, cpu_types::<F>(self.leak))?;
        let io = ForwardIo {
            x: slice(self.x),
            v0: slice(self.v0),
            spikes: slice_mut(self.spikes),
            h_seq: slice_mut(self.h_seq),
            v: slice_mut(self.v),
        };
        Ok((io, self.leak.map(|b| read_leak(b))))
    }
}

/// The buffers of the BPTT backward: `grad_spikes, h_seq, grad_x` are `[T, N]`; `grad_v`
/// (absent: zero), `v0` (absent: no leak gradient) and `grad_v0` are `[N]`; `leak` as in
/// [`ForwardBufs`]; on CUDA, `partials` receives PLIF's per-block leak-gradient sums (float64,
/// at least `partials_needed` elements, only with `v0`).
#[derive(Debug, Clone, Copy)]
pub struct BackwardBufs {
    pub grad_spikes: RawBuf,
    pub grad_v: Option<RawBuf>,
    pub h_seq: RawBuf,
    pub v0: Option<RawBuf>,
    pub grad_x: RawBuf,
    pub grad_v0: RawBuf,
    pub leak: Option<RawBuf>,
    pub partials: Option<RawBuf>,
}

impl BackwardBufs {
    /// Checks every buffer against `steps` and `grad_v0`'s length; `partials_needed` is the
    /// length `partials` must have (CUDA with `v0`), or None where no partials are used.
    pub fn check(&self, steps: usize, t: Types, partials_needed: Option<u64>) -> Result<Extent> {
        use Len::*;
        let needed = partials_needed.filter(|_| self.v0.is_some());
        match (needed, self.partials) {
            (Some(needed), None) => {
                return Err(Error::Shape(format!(
                    "partials has 0 elements, the launch needs {needed}"
                )))
            }
            (None, Some(_)) => {
                return Err(Error::InvalidArgument(
                    "partials is only used by the CUDA leak gradient (with v0)".into(),
                ))
            }
            _ => {}
        }
        check_call(
            steps,
            self.grad_v0.len,
            &[
                Role::input("grad_spikes", self.grad_spikes, t.io, Seq),
                Role::input("grad_v", self.grad_v, t.io, State),
                Role::input("h_seq", self.h_seq, t.h, Seq),
                Role::input("v0", self.v0, t.io, State),
                Role::output("grad_x", self.grad_x, t.io, Seq),
                Role::output("grad_v0", self.grad_v0, t.io, State),
                Role::input("leak", self.leak, t.leak, Exactly(1)),
                Role::output("partials", self.partials, DType::F64, AtLeast(needed.unwrap_or(0))),
            ],
        )
    }

    /// As [`ForwardBufs::cpu`].
    ///
    /// # Safety
    /// As [`ForwardBufs::cpu`].
    pub unsafe fn cpu<'a, F: Float>(
        &self,
        steps: usize,
    ) -> Result<(BackwardIo<'a, F>, Option<f64>)> {
        self.check(steps, cpu_types::<F>(self.leak), None)?;
        let io = BackwardIo {
            grad_spikes: slice(self.grad_spikes),
            grad_v: self.grad_v.map(|b| slice(b)),
            h_seq: slice(self.h_seq),
            v0: self.v0.map(|b| slice(b)),
            grad_x: slice_mut(self.grad_x),
            grad_v0: slice_mut(self.grad_v0),
        };
        Ok((io, self.leak.map(|b| read_leak(b))))
    }
}

/// The buffers of the rate-mode forward: `x, spikes` are `[T, N]`; `v0, v, rate, eligibility`
/// are `[N]`; `leak` as in [`ForwardBufs`].
#[derive(Debug, Clone, Copy)]
pub struct RateBufs {
    pub x: RawBuf,
    pub v0: RawBuf,
    pub spikes: RawBuf,
    pub v: RawBuf,
    pub rate: RawBuf,
    pub eligibility: RawBuf,
    pub leak: Option<RawBuf>,
}

impl RateBufs {
    /// Checks every buffer against `steps` and `v0`'s length.
    pub fn check(&self, steps: usize, t: Types) -> Result<Extent> {
        use Len::*;
        check_call(
            steps,
            self.v0.len,
            &[
                Role::input("x", self.x, t.io, Seq),
                Role::input("v0", self.v0, t.io, State),
                Role::output("spikes", self.spikes, t.io, Seq),
                Role::output("v", self.v, t.io, State),
                Role::output("rate", self.rate, t.io, State),
                Role::output("eligibility", self.eligibility, t.io, State),
                Role::input("leak", self.leak, t.leak, Exactly(1)),
            ],
        )
    }

    /// As [`ForwardBufs::cpu`].
    ///
    /// # Safety
    /// As [`ForwardBufs::cpu`].
    pub unsafe fn cpu<'a, F: Float>(&self, steps: usize) -> Result<(RateIo<'a, F>, Option<f64>)> {
        self.check(steps, cpu_types::<F>(self.leak))?;
        let io = RateIo {
            x: slice(self.x),
            v0: slice(self.v0),
            spikes: slice_mut(self.spikes),
            v: slice_mut(self.v),
            rate: slice_mut(self.rate),
            eligibility: slice_mut(self.eligibility),
        };
        Ok((io, self.leak.map(|b| read_leak(b))))
    }
}

/// The CPU kernels keep `H` in their element type and read PLIF's leak, float32 or float64, as
/// float64.
fn cpu_types<F: Float>(leak: Option<RawBuf>) -> Types {
    let leak = match leak {
        Some(RawBuf { dtype: DType::F32, .. }) => DType::F32,
        _ => DType::F64,
    };
    Types { io: F::DTYPE, h: F::DTYPE, leak }
}

/// # Safety
/// `b` was checked, and addresses `b.len` live elements of type `F`.
pub(crate) unsafe fn slice<'a, F>(b: RawBuf) -> &'a [F] {
    if b.len == 0 {
        return &[];
    }
    std::slice::from_raw_parts(b.addr as *const F, b.len as usize)
}

/// # Safety
/// As [`slice`], and nothing else refers to the buffer for `'a` (the overlap check).
pub(crate) unsafe fn slice_mut<'a, F>(b: RawBuf) -> &'a mut [F] {
    if b.len == 0 {
        return &mut [];
    }
    std::slice::from_raw_parts_mut(b.addr as *mut F, b.len as usize)
}

/// # Safety
/// `b` was checked as one float32 or float64.
unsafe fn read_leak(b: RawBuf) -> f64 {
    match b.dtype {
        DType::F32 => f64::from(*(b.addr as *const f32)),
        _ => *(b.addr as *const f64),
    }
}

#[cfg(test)]
#[path = "boundary_tests.rs"]
mod tests;
