//! Event-driven 2-D convolution of spikes (issue 31): the forward and the weight gradient of a
//! convolution whose input `x [N, C, H, W]` holds only `+0.0` and `+1.0` (float32), computed as
//! sums of rows at the active inputs: additions only, no multiplications by zero.
//!
//! Forward: the weight is laid out once as `[groups][kh][kw][ci][co]` (`co` padded to a multiple
//! of [`LANE`] with zeros), so a weight row over a group's output channels is contiguous. Each
//! sample's active input channels are listed per input pixel (a row offset into that layout, in
//! channel order). An output pixel gathers the rows of every active `(kh, kw, ci)` of its
//! receptive field into [`BLOCK`] accumulators held in registers: one load per addition and no
//! scattered stores. A row of output pixels is written channels-last into a tile, then
//! transposed into `y [N, C_out, OH, OW]`. Parallel over chunks of output rows `(n, oh)`.
//!
//! Weight gradient ([`weight_grad`], in its own file): `grad_y` is laid out channels-last, `[N][OH * OW][groups * co]`; for each
//! input channel, each active input `(n, ih, iw)` and each `(kh, kw)`, the row of the output it
//! reached is added into `dw[kh][kw][ci]`'s accumulators. Parallel over chunks of input channels,
//! each owning its rows of the gradient: no two threads write the same element.
//!
//! Every value of `x` is checked to be a spike by its bit pattern (`-0.0`, NaN, 0.5... refuse):
//! the kernels return the index of the first that is not. The summation order differs from a
//! dense convolution's, so results agree with it to float32 rounding, not bit for bit.
//! [`ForwardBufs`] and [`WeightGradBufs`] are the raw-buffer forms ([`crate::boundary`]'s
//! conventions), checked against the geometry before any slice is made.

use crate::boundary::{check_call, slice, slice_mut, Len, RawBuf, Role};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::isa::{run_chunk, Chunk};
use crate::parallel::{map_chunks_of, SharedOut};
use std::ops::Range;

mod weight_grad;
pub use weight_grad::weight_grad;

/// The bit pattern of `+1.0f32`.
const ONE: u32 = 0x3f80_0000;
/// Output channels summed together in registers (4 AVX-512 or 8 AVX2 registers). Measured on
/// the 2-core AMD EPYC (Zen 4) at density 0.2: 16 and 32 were 1.3x to 2.6x slower (too few
/// independent additions in flight); 128 was within the run-to-run noise of 64.
pub const BLOCK: usize = 64;
/// A group's output channels are padded to a multiple of this in the row layouts.
pub const LANE: usize = 16;
/// Marks an input row or column that reaches no output for some `kh` (`kw`).
const NONE: u32 = u32::MAX;

/// The shape of one convolution: input `[batch, c_in, height, width]`, weight
/// `[c_out, c_in / groups, kernel.0, kernel.1]`, stride and zero padding per axis (`(h, w)`),
/// dilation 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub c_in: usize,
    pub height: usize,
    pub width: usize,
    pub c_out: usize,
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub groups: usize,
}

/// A checked [`Geometry`] and the sizes derived from it; every product fits its type.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub geo: Geometry,
    pub out_h: usize,
    pub out_w: usize,
    /// Input and output channels per group, and the latter padded to [`LANE`].
    pub cig: usize,
    pub cog: usize,
    pub cogp: usize,
    pub x_len: usize,
    pub w_len: usize,
    pub y_len: usize,
}

fn product(name: &str, factors: &[usize]) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or_else(|| Error::Shape(format!("{name} is too large: the product of {factors:?}")))
}

/// The output length along one axis, or an error when the kernel exceeds the padded input.
fn out_len(axis: &str, size: usize, k: usize, s: usize, p: usize) -> Result<usize> {
    let padded = p.checked_mul(2).and_then(|p2| size.checked_add(p2));
    match padded {
        Some(padded) if padded >= k => Ok((padded - k) / s + 1),
        _ => Err(Error::Shape(format!(
            "the kernel's {axis} ({k}) exceeds the padded input's ({size} + 2 x {p})"
        ))),
    }
}

impl Geometry {
    /// Checks the geometry and derives its sizes: positive channels, kernel, stride and
    /// groups; groups dividing both channel counts; a kernel within the padded input; every
    /// buffer length and internal offset within its type (row offsets are `u32`).
    pub fn dims(&self) -> Result<Dims> {
        let g = *self;
        let (kh, kw) = g.kernel;
        let (sh, sw) = g.stride;
        for (name, v) in [
            ("c_in", g.c_in),
            ("c_out", g.c_out),
            ("kernel height", kh),
            ("kernel width", kw),
            ("stride", sh),
            ("stride", sw),
            ("groups", g.groups),
        ] {
            if v == 0 {
                return Err(Error::InvalidArgument(format!("{name} must be positive, got 0")));
            }
        }
        if !g.c_in.is_multiple_of(g.groups) || !g.c_out.is_multiple_of(g.groups) {
            return Err(Error::InvalidArgument(format!(
                "groups ({}) must divide c_in ({}) and c_out ({})",
                g.groups, g.c_in, g.c_out
            )));
        }
        let out_h = out_len("height", g.height, kh, sh, g.padding.0)?;
        let out_w = out_len("width", g.width, kw, sw, g.padding.1)?;
        let (cig, cog) = (g.c_in / g.groups, g.c_out / g.groups);
        let cogp = cog.div_ceil(LANE) * LANE;
        let x_len = product("x", &[g.batch, g.c_in, g.height, g.width])?;
        let w_len = product("weight", &[g.c_out, cig, kh, kw])?;
        let y_len = product("y", &[g.batch, g.c_out, out_h, out_w])?;
        // Offsets kept as u32: rows of the weight layout, events of one sample, rows of one
        // sample's channels-last output gradient.
        let fits = |name: &str, factors: &[usize]| -> Result<()> {
            let n = product(name, factors)?;
            u32::try_from(n).map(|_| ()).map_err(|_| {
                Error::Shape(format!("{name} ({n} elements) exceeds the kernels' 32-bit offsets"))
            })
        };
        fits("the weight layout", &[g.groups, kh, kw, cig, cogp])?;
        fits("one sample's input", &[g.c_in, g.height, g.width])?;
        fits("one sample's output gradient", &[out_h, out_w, g.groups, cogp])?;
        product("the output gradient layout", &[g.batch, out_h, out_w, g.groups, cogp])?;
        product("the weight-gradient layout", &[g.c_in, kh, kw, cogp])?;
        Ok(Dims { geo: g, out_h, out_w, cig, cog, cogp, x_len, w_len, y_len })
    }
}

impl Dims {
    fn hw(&self) -> usize {
        self.geo.height * self.geo.width
    }

    fn ohw(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Elements of a group-padded row over all output channels.
    fn cop(&self) -> usize {
        self.geo.groups * self.cogp
    }

    /// Elements of one `(g, kh, kw)` plane of the weight layout.
    fn plane(&self) -> usize {
        self.cig * self.cogp
    }
}

// ---------------------------------------------------------------------------------------------
// Row sums: the inner loops.

/// `B` accumulators, starting from `init`, plus the rows `src[r + col..][..B]` for every `r`.
#[inline(always)]
fn block<const B: usize>(src: &[f32], rows: &[u32], col: usize, acc: &mut [f32]) {
    let mut a: [f32; B] = acc[..B].try_into().expect("a block of B");
    for &r in rows {
        let o = r as usize + col;
        for (a, &v) in a.iter_mut().zip(&src[o..o + B]) {
            *a += v;
        }
    }
    acc[..B].copy_from_slice(&a);
}

/// `acc[j] += sum_r src[r + col + j]` for `acc.len()` one of 16, 32, 48, [`BLOCK`].
#[inline(always)]
fn add_block(src: &[f32], rows: &[u32], col: usize, acc: &mut [f32]) {
    match acc.len() {
        BLOCK => block::<BLOCK>(src, rows, col, acc),
        48 => block::<48>(src, rows, col, acc),
        32 => block::<32>(src, rows, col, acc),
        16 => block::<16>(src, rows, col, acc),
        other => unreachable!("a block of {other} channels"),
    }
}

/// `acc[j] += sum_r src[r + j]` for `j < acc.len()` (a multiple of [`LANE`]).
#[inline(always)]
fn add_rows(src: &[f32], rows: &[u32], acc: &mut [f32]) {
    let mut col = 0;
    while col + BLOCK <= acc.len() {
        block::<BLOCK>(src, rows, col, &mut acc[col..]);
        col += BLOCK;
    }
    match acc.len() - col {
        16 => block::<16>(src, rows, col, &mut acc[col..]),
        32 => block::<32>(src, rows, col, &mut acc[col..]),
        48 => block::<48>(src, rows, col, &mut acc[col..]),
        _ => {}
    }
}

/// The spike bits of up to 64 patterns (bit `i` for `src[i]`), and whether all were spikes.
#[inline(always)]
fn spike_word(src: &[u32]) -> (u64, bool) {
    let (mut word, mut bad) = (0u64, 0u32);
    for (i, &v) in src.iter().enumerate() {
        let b = u32::from(v == ONE);
        bad |= v ^ (b.wrapping_neg() & ONE);
        word |= u64::from(b) << i;
    }
    (word, bad == 0)
}

fn first_non_spike(x: &[u32]) -> usize {
    x.iter().position(|&v| v != 0 && v != ONE).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Forward.

/// One sample's active inputs: for input pixel `p` of group `g`, the weight-row offsets
/// `ci * cogp` of its active channels are `rows[start[g * HW + p]..start[g * HW + p + 1]]`.
struct Events {
    start: Vec<u32>,
    rows: Vec<u32>,
}

/// Lists sample `x [C, H * W]`'s events; Err(index in `x`) of the first non-spike.
fn sample_events(x: &[u32], d: &Dims) -> std::result::Result<Events, usize> {
    let (hw, cig) = (d.hw(), d.cig);
    let words = hw.div_ceil(64);
    let mut start = vec![0u32; d.geo.groups * hw + 1];
    let mut bits = vec![0u64; d.geo.c_in * words];
    let mut ok = true;
    for (c, (row, bits)) in x.chunks_exact(hw).zip(bits.chunks_exact_mut(words)).enumerate() {
        let counts = &mut start[c / cig * hw..][..hw];
        for ((src, cnt), word) in row.chunks(64).zip(counts.chunks_mut(64)).zip(bits.iter_mut()) {
            let (w, good) = spike_word(src);
            ok &= good;
            *word = w;
            for (i, k) in cnt.iter_mut().enumerate() {
                *k += ((w >> i) & 1) as u32;
            }
        }
    }
    if !ok {
        return Err(first_non_spike(x));
    }
    let mut total = 0u32;
    for k in start.iter_mut() {
        let c = *k;
        *k = total;
        total += c;
    }
    let mut rows = vec![0u32; total as usize];
    let mut next = start[..d.geo.groups * hw].to_vec();
    for (c, bits) in bits.chunks_exact(words).enumerate() {
        let next = &mut next[c / cig * hw..][..hw];
        let value = ((c % cig) * d.cogp) as u32;
        for (wi, &w) in bits.iter().enumerate() {
            let mut w = w;
            while w != 0 {
                let slot = &mut next[wi * 64 + w.trailing_zeros() as usize];
                rows[*slot as usize] = value;
                *slot += 1;
                w &= w - 1;
            }
        }
    }
    Ok(Events { start, rows })
}

/// The weight `[c_out, cig, kh, kw]` as `[groups][kh][kw][cig][cogp]`, padding zero.
fn weight_rows(w: &[f32], d: &Dims, threads: usize) -> Result<Vec<f32>> {
    let (kh, kw) = d.geo.kernel;
    let n_rows = d.geo.groups * kh * kw * d.cig;
    let mut wt = vec![0f32; n_rows * d.cogp];
    let out = SharedOut::new(&mut wt);
    map_chunks_of(n_rows, 256, n_rows * d.cogp, threads, |r: Range<usize>| {
        // SAFETY: chunks are disjoint row ranges of `wt`.
        let dst = unsafe { out.slice(0, &(r.start * d.cogp..r.end * d.cogp)) };
        for (row, dst) in r.zip(dst.chunks_exact_mut(d.cogp)) {
            let ci = row % d.cig;
            let k = row / d.cig % (kh * kw);
            let g = row / (d.cig * kh * kw);
            for (cg, o) in dst[..d.cog].iter_mut().enumerate() {
                *o = w[((g * d.cog + cg) * d.cig + ci) * kh * kw + k];
            }
        }
    })?;
    Ok(wt)
}

/// Output rows `(n, oh)` of the forward (compiled per instruction set by [`run_chunk`]).
///
/// A chunk first lists, for each of its output pixels and groups, the weight rows of its
/// receptive field's active inputs (split into passes of a few kernel taps); then, one block of
/// output channels and one pass at a time, adds them for every pixel into a channels-last tile.
/// This order keeps the rows one pass reads (`taps x cig x BLOCK` floats, [`TAP_BYTES`]) in the
/// core's cache across the chunk's pixels. Pixel-outer order swept the whole weight per pixel,
/// from L3 once it exceeds L2: 1.5x to 1.85x slower at density 0.2 (one run).
struct ForwardRows<'a> {
    d: Dims,
    wt: &'a [f32],
    bias: Option<&'a [f32]>,
    events: &'a [Events],
    y: SharedOut<f32>,
    /// Kernel taps `(kh, kw)` summed per pass over the chunk's pixels.
    taps_per_pass: usize,
}

impl Chunk for ForwardRows<'_> {
    type Out = ();

    #[inline(always)]
    fn run(&self, r: Range<usize>) {
        let d = &self.d;
        let g = &d.geo;
        let (kh_n, kw_n) = g.kernel;
        let (oh_n, ow_n, cop, hw) = (d.out_h, d.out_w, d.cop(), d.hw());
        let pixels = r.len() * ow_n;
        let (taps, per) = (kh_n * kw_n, self.taps_per_pass);
        let passes = taps.div_ceil(per);
        // `rows[bounds[i]..bounds[i + 1]]`: the rows of taps `t * per..(t + 1) * per` of pixel
        // `px` in group `grp`, `i = (grp * passes + t) * pixels + px`.
        let mut bounds: Vec<usize> = Vec::with_capacity(g.groups * passes * pixels + 1);
        let mut rows: Vec<u32> = Vec::new();
        bounds.push(0);
        for grp in 0..g.groups {
            for t in 0..passes {
                for unit in r.clone() {
                    let (n, oh) = (unit / oh_n, unit % oh_n);
                    let ev = &self.events[n];
                    for ow in 0..ow_n {
                        for tap in t * per..((t + 1) * per).min(taps) {
                            let (kh, kw) = (tap / kw_n, tap % kw_n);
                            let ih = (oh * g.stride.0 + kh).checked_sub(g.padding.0);
                            let iw = (ow * g.stride.1 + kw).checked_sub(g.padding.1);
                            let (Some(ih), Some(iw)) = (ih, iw) else { continue };
                            if ih >= g.height || iw >= g.width {
                                continue;
                            }
                            let p = grp * hw + ih * g.width + iw;
                            let list = &ev.rows[ev.start[p] as usize..ev.start[p + 1] as usize];
                            let base = ((grp * taps + tap) * d.plane()) as u32;
                            rows.extend(list.iter().map(|&e| base + e));
                        }
                        bounds.push(rows.len());
                    }
                }
            }
        }
        // tile[px][grp * cogp + co]: the chunk's outputs, channels last.
        let mut tile = vec![0f32; pixels * cop];
        for grp in 0..g.groups {
            let mut col = 0;
            while col < d.cogp {
                let width = (d.cogp - col).min(BLOCK);
                for t in 0..passes {
                    let first = (grp * passes + t) * pixels;
                    for (px, span) in bounds[first..=first + pixels].windows(2).enumerate() {
                        let acc = &mut tile[px * cop + grp * d.cogp + col..][..width];
                        add_block(self.wt, &rows[span[0]..span[1]], col, acc);
                    }
                }
                col += width;
            }
        }
        for (i, unit) in r.enumerate() {
            let (n, oh) = (unit / oh_n, unit % oh_n);
            let tile = &tile[i * ow_n * cop..][..ow_n * cop];
            for co in 0..g.c_out {
                let src = co / d.cog * d.cogp + co % d.cog;
                let b = self.bias.map_or(0.0, |b| b[co]);
                let dst = ((n * g.c_out + co) * oh_n + oh) * ow_n;
                for ow in 0..ow_n {
                    // SAFETY: `dst + ow < y_len`, and output row `(n, oh)` belongs to this
                    // chunk alone.
                    unsafe { self.y.write(dst + ow, tile[ow * cop + src] + b) };
                }
            }
        }
    }
}

/// Output rows per forward chunk: about [`PIXELS`] output pixels, and at least 4 chunks per
/// thread where the layer has that many rows.
fn forward_chunk(d: &Dims, threads: usize) -> usize {
    let units = d.geo.batch * d.out_h;
    (PIXELS / d.out_w).clamp(1, (units / (4 * threads.max(1))).max(1))
}

/// Bytes of the weight one pass of the forward reads (`taps x cig x BLOCK` floats): passes over a
/// chunk's pixels take as many kernel taps as fit, at least one. At density 0.2 on one thread of
/// the AMD EPYC, every tap in one pass was 1.3x to 1.4x slower than this on the 512-channel layer
/// and about as fast on the others (measured while another process loaded the second core).
const TAP_BYTES: usize = 128 << 10;

/// Output pixels a forward chunk sums one channel block over before moving to the next.
const PIXELS: usize = 256;

/// Chunks of about `per_thread`-th of `n` items, at least 1: several per thread, so that
/// threads freed early take more.
fn chunk_size(n: usize, threads: usize) -> usize {
    (n / (threads.max(1) * 8)).max(1)
}

/// `y = conv2d(x, w, bias)` for spikes `x` (float32 bit patterns) on up to `threads` threads.
/// None when every element of `x` was a spike; else the index of the first that is not, and
/// `y` is unspecified.
pub fn forward(
    d: &Dims,
    x: &[u32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    threads: usize,
) -> Result<Option<usize>> {
    check_lens(d, x.len(), w.len(), y.len(), "y")?;
    if bias.is_some_and(|b| b.len() != d.geo.c_out) {
        return Err(Error::Shape(format!("bias must have {} elements", d.geo.c_out)));
    }
    if d.x_len == 0 {
        // No input (an empty batch, or zero-sized images under padding): y is the bias.
        for (k, o) in y.iter_mut().enumerate() {
            *o = bias.map_or(0.0, |b| b[k / d.ohw() % d.geo.c_out]);
        }
        return Ok(None);
    }
    let sample = d.geo.c_in * d.hw();
    let listed = map_chunks_of(d.geo.batch, 1, d.x_len, threads, |r: Range<usize>| {
        let n = r.start;
        sample_events(&x[n * sample..][..sample], d).map_err(|i| n * sample + i)
    })?;
    let events = match listed.into_iter().collect::<std::result::Result<Vec<_>, usize>>() {
        Ok(events) => events,
        Err(i) => return Ok(Some(i)),
    };
    let wt = weight_rows(w, d, threads)?;
    let taps_per_pass = (TAP_BYTES / (d.cig * BLOCK * 4)).clamp(1, d.geo.kernel.0 * d.geo.kernel.1);
    let kernel =
        ForwardRows { d: *d, wt: &wt, bias, events: &events, y: SharedOut::new(y), taps_per_pass };
    let units = d.geo.batch * d.out_h;
    map_chunks_of(units, forward_chunk(d, threads), d.y_len.max(d.x_len), threads, |r| {
        run_chunk(&kernel, r)
    })?;
    Ok(None)
}

fn check_lens(d: &Dims, x: usize, w: usize, y: usize, y_name: &str) -> Result<()> {
    for (name, got, want) in [("x", x, d.x_len), ("weight", w, d.w_len), (y_name, y, d.y_len)] {
        if got != want {
            return Err(Error::Shape(format!("{name} has {got} elements, expected {want}")));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Raw buffers.

/// The buffers of an event convolution, all float32 and contiguous: `x [N, c_in, H, W]`
/// (spikes); the forward's `weight [c_out, c_in / groups, kh, kw]`, `bias [c_out]` (optional)
/// and `y [N, c_out, OH, OW]`; or the weight gradient's `grad_y [N, c_out, OH, OW]` and
/// `grad_weight [c_out, c_in / groups, kh, kw]`.
#[derive(Debug, Clone, Copy)]
pub struct ForwardBufs {
    pub x: RawBuf,
    pub weight: RawBuf,
    pub y: RawBuf,
    pub bias: Option<RawBuf>,
}

/// See [`ForwardBufs`].
#[derive(Debug, Clone, Copy)]
pub struct WeightGradBufs {
    pub x: RawBuf,
    pub grad_y: RawBuf,
    pub grad_weight: RawBuf,
}

impl ForwardBufs {
    /// Checks the geometry, then every buffer against it (types, lengths, addresses, no
    /// overlap with the output).
    pub fn check(&self, geo: &Geometry) -> Result<Dims> {
        let d = geo.dims()?;
        use Len::Exactly;
        let f = DType::F32;
        check_call(
            1,
            self.x.len,
            &[
                Role::input("x", self.x, f, Exactly(d.x_len as u64)),
                Role::input("weight", self.weight, f, Exactly(d.w_len as u64)),
                Role::input("bias", self.bias, f, Exactly(geo.c_out as u64)),
                Role::output("y", self.y, f, Exactly(d.y_len as u64)),
            ],
        )?;
        Ok(d)
    }

    /// Checks the buffers, then runs [`forward`].
    ///
    /// # Safety
    /// Each buffer must address `len` initialised elements of its `dtype` that stay alive and
    /// untouched by anyone else during the call.
    pub unsafe fn forward_cpu(&self, geo: &Geometry, threads: usize) -> Result<Option<usize>> {
        let d = self.check(geo)?;
        let bias = self.bias.map(|b| slice::<f32>(b));
        forward(&d, slice(self.x), slice(self.weight), bias, slice_mut(self.y), threads)
    }
}

impl WeightGradBufs {
    /// As [`ForwardBufs::check`].
    pub fn check(&self, geo: &Geometry) -> Result<Dims> {
        let d = geo.dims()?;
        use Len::Exactly;
        let f = DType::F32;
        check_call(
            1,
            self.x.len,
            &[
                Role::input("x", self.x, f, Exactly(d.x_len as u64)),
                Role::input("grad_y", self.grad_y, f, Exactly(d.y_len as u64)),
                Role::output("grad_weight", self.grad_weight, f, Exactly(d.w_len as u64)),
            ],
        )?;
        Ok(d)
    }

    /// Checks the buffers, then runs [`weight_grad`].
    ///
    /// # Safety
    /// As [`ForwardBufs::forward_cpu`].
    pub unsafe fn weight_grad_cpu(&self, geo: &Geometry, threads: usize) -> Result<Option<usize>> {
        let d = self.check(geo)?;
        weight_grad(&d, slice(self.x), slice(self.grad_y), slice_mut(self.grad_weight), threads)
    }
}

#[cfg(test)]
#[path = "event_conv_tests.rs"]
mod tests;
