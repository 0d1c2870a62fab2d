//! Spike tensors at one bit per element: [`pack`] and [`unpack`], exact both ways.
//!
//! A spike tensor holds only `+0.0` and `+1.0`. Packed, element `k` (row-major) is bit `k % 8`
//! of byte `k / 8`, least significant bit first; the padding bits of the last byte are 0. The
//! kernels never look at values, only at bit patterns, so float16 and bfloat16 (`u16`), float32
//! (`u32`) and float64 (`u64`) pack without conversion, and "is a spike" means "is exactly the
//! pattern of `+0.0` or of `+1.0`": `-0.0`, NaN, infinities and every other number refuse the
//! whole tensor.
//!
//! The test per element is branch-free: with `one` the pattern of `+1.0` and `s` its lowest set
//! bit, `b = (v >> s) & 1` is the spike bit and `v` is a spike exactly when `v == (b ? one : 0)`.
//! Loops take 64 elements into one `u64` of output, then the tail byte by byte. Both directions
//! split the output (pack) or input (unpack) bytes into [`crate::parallel`]'s fixed chunks.
//!
//! [`PackBufs`] and [`UnpackBufs`] are the raw-buffer forms ([`crate::boundary`]'s conventions)
//! the Python binding and the CUDA launcher check before touching memory.

use crate::boundary::{check_call, slice, slice_mut, Len, RawBuf, Role};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::isa::{run_chunk, Chunk};
use crate::parallel::{map_chunks, SharedOut};
use std::ops::{BitAnd, BitOr, BitXor, Range, Shr};

/// The bit pattern of a floating element: `u16` (float16, bfloat16), `u32` (float32), `u64`
/// (float64).
pub trait Bits:
    Copy
    + Send
    + Sync
    + PartialEq
    + std::fmt::Debug
    + BitAnd<Output = Self>
    + BitOr<Output = Self>
    + BitXor<Output = Self>
    + Shr<u32, Output = Self>
    + 'static
{
    const ZERO: Self;
    /// The integer 1 (not the pattern of 1.0).
    const LSB: Self;
    fn wrapping_neg(self) -> Self;
    fn trailing_zeros(self) -> u32;
    /// The lowest bit, as 0 or 1.
    fn low_bit(self) -> u64;
    /// `b` (0 or 1) in this type.
    fn from_bit(b: u8) -> Self;
    /// The low bits of a pattern given as `u64`.
    fn from_u64(v: u64) -> Self;
}

macro_rules! impl_bits {
    ($t:ty) => {
        impl Bits for $t {
            const ZERO: Self = 0;
            const LSB: Self = 1;
            #[inline(always)]
            fn wrapping_neg(self) -> Self {
                <$t>::wrapping_neg(self)
            }
            #[inline(always)]
            fn trailing_zeros(self) -> u32 {
                <$t>::trailing_zeros(self)
            }
            #[inline(always)]
            fn low_bit(self) -> u64 {
                (self & 1) as u64
            }
            #[inline(always)]
            fn from_bit(b: u8) -> Self {
                b as $t
            }
            #[inline(always)]
            fn from_u64(v: u64) -> Self {
                v as $t
            }
        }
    };
}

impl_bits!(u16);
impl_bits!(u32);
impl_bits!(u64);

/// The bit pattern of `+1.0` in `dtype` (float16 `0x3c00`, bfloat16 `0x3f80`, float32
/// `0x3f80_0000`, float64 `0x3ff0_0000_0000_0000`); a Dtype error for uint8.
pub fn one_bits(dtype: DType) -> Result<u64> {
    match dtype {
        DType::F16 => Ok(0x3c00),
        DType::BF16 => Ok(0x3f80),
        DType::F32 => Ok(0x3f80_0000),
        DType::F64 => Ok(0x3ff0_0000_0000_0000),
        DType::U8 => Err(Error::Dtype("spikes are floating tensors, got uint8".into())),
    }
}

/// Bytes that `n` packed elements take: `ceil(n / 8)`.
pub fn packed_len(n: usize) -> usize {
    n.div_ceil(8)
}

/// What the loops need of `one`, the pattern of `+1.0`.
#[derive(Clone, Copy)]
struct Spike<T> {
    one: T,
    shift: u32,
}

impl<T: Bits> Spike<T> {
    fn new(one: T) -> Result<Self> {
        if one == T::ZERO {
            return Err(Error::InvalidArgument("the pattern of 1.0 cannot be 0".into()));
        }
        Ok(Spike { one, shift: one.trailing_zeros() })
    }

    /// `(spike bit, v ^ expected)`: the second is zero exactly when `v` is a spike.
    #[inline(always)]
    fn split(self, v: T) -> (u64, T) {
        let b = (v >> self.shift) & T::LSB;
        (b.low_bit(), v ^ (b.wrapping_neg() & self.one))
    }

    #[inline(always)]
    fn value(self, bit: u8) -> T {
        T::from_bit(bit).wrapping_neg() & self.one
    }
}

/// Packs up to 8 elements into one byte; `bad` collects the non-spike bits.
#[inline(always)]
fn pack_byte<T: Bits>(x: &[T], s: Spike<T>, bad: &mut T) -> u8 {
    let mut byte = 0u64;
    for (i, &v) in x.iter().enumerate() {
        let (b, wrong) = s.split(v);
        byte |= b << i;
        *bad = *bad | wrong;
    }
    byte as u8
}

/// One thread's part: `x` into `out` (`packed_len(x.len())` bytes); true when all were spikes.
#[inline(always)]
fn pack_serial<T: Bits>(x: &[T], s: Spike<T>, out: &mut [u8]) -> bool {
    let mut bad = T::ZERO;
    let words = x.len() / 64;
    let (x_words, x_tail) = x.split_at(words * 64);
    let (out_words, out_tail) = out.split_at_mut(words * 8);
    for (src, dst) in x_words.chunks_exact(64).zip(out_words.chunks_exact_mut(8)) {
        let mut word = 0u64;
        let mut wrong = T::ZERO;
        for (i, &v) in src.iter().enumerate() {
            let (b, w) = s.split(v);
            word |= b << i;
            wrong = wrong | w;
        }
        bad = bad | wrong;
        dst.copy_from_slice(&word.to_le_bytes());
    }
    for (src, dst) in x_tail.chunks(8).zip(out_tail.iter_mut()) {
        *dst = pack_byte(src, s, &mut bad);
    }
    bad == T::ZERO
}

/// One thread's part: `bits` into `out`, which holds at most `8 * bits.len()` elements.
#[inline(always)]
fn unpack_serial<T: Bits>(bits: &[u8], s: Spike<T>, out: &mut [T]) {
    let full = out.len() / 8;
    let (out_full, out_tail) = out.split_at_mut(full * 8);
    for (dst, &byte) in out_full.chunks_exact_mut(8).zip(bits) {
        for (i, o) in dst.iter_mut().enumerate() {
            *o = s.value((byte >> i) & 1);
        }
    }
    if let Some(&byte) = bits.get(full) {
        for (i, o) in out_tail.iter_mut().enumerate() {
            *o = s.value((byte >> i) & 1);
        }
    }
}

/// Elements `8 * bytes` of `n`.
fn elements(bytes: &Range<usize>, n: usize) -> Range<usize> {
    (bytes.start * 8).min(n)..(bytes.end * 8).min(n)
}

/// One chunk of output bytes of a pack (compiled per instruction set by [`run_chunk`]).
struct PackChunk<'a, T> {
    x: &'a [T],
    s: Spike<T>,
    out: SharedOut<u8>,
}

impl<T: Bits> Chunk for PackChunk<'_, T> {
    type Out = bool;

    #[inline(always)]
    fn run(&self, r: Range<usize>) -> bool {
        // SAFETY: chunks are disjoint byte ranges of the output.
        let dst = unsafe { self.out.slice(0, &r) };
        pack_serial(&self.x[elements(&r, self.x.len())], self.s, dst)
    }
}

/// One chunk of input bytes of an unpack.
struct UnpackChunk<'a, T> {
    bits: &'a [u8],
    s: Spike<T>,
    out: SharedOut<T>,
    n: usize,
}

impl<T: Bits> Chunk for UnpackChunk<'_, T> {
    type Out = ();

    #[inline(always)]
    fn run(&self, r: Range<usize>) {
        // SAFETY: chunks are disjoint byte ranges, hence disjoint element ranges of the output.
        let dst = unsafe { self.out.slice(0, &elements(&r, self.n)) };
        unpack_serial(&self.bits[r], self.s, dst)
    }
}

/// Packs the bit patterns `x` (`one`: the pattern of `+1.0`) into `bits`, `ceil(n / 8)` bytes,
/// on up to `threads` threads. Returns None when every element was a spike; else the index of
/// the first element that is not, and `bits` is left all zero (never a partial result).
pub fn pack<T: Bits>(x: &[T], one: T, bits: &mut [u8], threads: usize) -> Result<Option<usize>> {
    let s = Spike::new(one)?;
    let n = x.len();
    if bits.len() != packed_len(n) {
        return Err(Error::Shape(format!(
            "bits has {} bytes, {n} elements need {}",
            bits.len(),
            packed_len(n)
        )));
    }
    let kernel = PackChunk { x, s, out: SharedOut::new(bits) };
    let all = map_chunks(bits.len(), n, threads, |r| run_chunk(&kernel, r))?;
    if all.iter().all(|&ok| ok) {
        return Ok(None);
    }
    bits.fill(0);
    Ok(x.iter().position(|&v| s.split(v).1 != T::ZERO))
}

/// Unpacks `bits` (`ceil(n / 8)` bytes, padding bits 0) into `out`, `n` elements of `0` or
/// `one` (the pattern of `+1.0`), on up to `threads` threads. An error, before anything is
/// written, for a wrong length or a padding bit set.
pub fn unpack<T: Bits>(bits: &[u8], one: T, out: &mut [T], threads: usize) -> Result<()> {
    let s = Spike::new(one)?;
    let n = out.len();
    check_packed(bits, n)?;
    let kernel = UnpackChunk { bits, s, out: SharedOut::new(out), n };
    map_chunks(bits.len(), n, threads, |r| run_chunk(&kernel, r))?;
    Ok(())
}

/// `bits` is a packing of `n` elements: `ceil(n / 8)` bytes, padding bits 0.
pub fn check_packed(bits: &[u8], n: usize) -> Result<()> {
    if bits.len() != packed_len(n) {
        return Err(Error::Shape(format!(
            "bits has {} bytes, {n} elements need {}",
            bits.len(),
            packed_len(n)
        )));
    }
    if let (Some(&last), used @ 1..) = (bits.last(), n % 8) {
        if last >> used != 0 {
            return Err(Error::InvalidArgument(format!(
                "bits has padding bits set: the last byte is {last:#04x}, but only its low {used} \
                 bit(s) hold elements"
            )));
        }
    }
    Ok(())
}

/// The buffers of a pack: `x`, `n` floating elements; `bits`, `ceil(n / 8)` uint8; on CUDA,
/// `flag`, one uint8 the kernel sets to 1 when an element is not a spike (zeroed by the caller).
#[derive(Debug, Clone, Copy)]
pub struct PackBufs {
    pub x: RawBuf,
    pub bits: RawBuf,
    pub flag: Option<RawBuf>,
}

fn floating(name: &str, b: RawBuf) -> Result<DType> {
    if b.dtype.is_float() {
        Ok(b.dtype)
    } else {
        Err(Error::Dtype(format!(
            "{name} is {}, expected float16, bfloat16, float32 or float64",
            b.dtype.name()
        )))
    }
}

fn elements_of(b: RawBuf) -> Result<usize> {
    usize::try_from(b.len).map_err(|_| Error::Shape(format!("{} elements are too many", b.len)))
}

impl PackBufs {
    /// Checks every buffer (types, lengths, addresses, no overlap); `flag` is required exactly
    /// when `with_flag`. Returns `x`'s element type and count.
    pub fn check(&self, with_flag: bool) -> Result<(DType, usize)> {
        let dtype = floating("x", self.x)?;
        let n = elements_of(self.x)?;
        match (with_flag, self.flag.is_some()) {
            (true, false) => return Err(Error::Shape("flag has 0 elements, expected 1".into())),
            (false, true) => {
                return Err(Error::InvalidArgument("flag is only used on CUDA".into()))
            }
            _ => {}
        }
        use Len::*;
        check_call(
            1,
            self.x.len,
            &[
                Role::input("x", self.x, dtype, State),
                Role::output("bits", self.bits, DType::U8, Exactly(packed_len(n) as u64)),
                Role::output("flag", self.flag, DType::U8, Exactly(1)),
            ],
        )?;
        Ok((dtype, n))
    }

    /// Checks the buffers, then packs on the CPU: as [`pack`].
    ///
    /// # Safety
    /// Each buffer must address `len` initialised elements of its `dtype` that stay alive and
    /// untouched by anyone else during the call.
    pub unsafe fn pack_cpu(&self, threads: usize) -> Result<Option<usize>> {
        let (dtype, _) = self.check(false)?;
        let one = one_bits(dtype)?;
        let bits = slice_mut::<u8>(self.bits);
        match dtype.size() {
            2 => pack(slice::<u16>(self.x), one as u16, bits, threads),
            4 => pack(slice::<u32>(self.x), one as u32, bits, threads),
            _ => pack(slice::<u64>(self.x), one, bits, threads),
        }
    }
}

/// The buffers of an unpack: `bits`, `ceil(n / 8)` uint8; `out`, `n` floating elements.
#[derive(Debug, Clone, Copy)]
pub struct UnpackBufs {
    pub bits: RawBuf,
    pub out: RawBuf,
}

impl UnpackBufs {
    /// Checks every buffer; returns `out`'s element type and count. The padding bits are
    /// checked where the bytes are read ([`unpack`] on the CPU; the caller on CUDA).
    pub fn check(&self) -> Result<(DType, usize)> {
        let dtype = floating("out", self.out)?;
        let n = elements_of(self.out)?;
        use Len::*;
        check_call(
            1,
            self.out.len,
            &[
                Role::input("bits", self.bits, DType::U8, Exactly(packed_len(n) as u64)),
                Role::output("out", self.out, dtype, State),
            ],
        )?;
        Ok((dtype, n))
    }

    /// Checks the buffers, then unpacks on the CPU: as [`unpack`].
    ///
    /// # Safety
    /// As [`PackBufs::pack_cpu`].
    pub unsafe fn unpack_cpu(&self, threads: usize) -> Result<()> {
        let (dtype, _) = self.check()?;
        let one = one_bits(dtype)?;
        let bits = slice::<u8>(self.bits);
        match dtype.size() {
            2 => unpack(bits, one as u16, slice_mut::<u16>(self.out), threads),
            4 => unpack(bits, one as u32, slice_mut::<u32>(self.out), threads),
            _ => unpack(bits, one, slice_mut::<u64>(self.out), threads),
        }
    }
}

#[cfg(test)]
#[path = "spikes_tests.rs"]
mod tests;
