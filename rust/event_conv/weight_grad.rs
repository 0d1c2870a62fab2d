//! The weight gradient of the event convolution (see [`super`]): `grad_y` laid out channels last
//! a few samples at a time; for each input channel, each active input and each `(kh, kw)`, the row
//! of the output it reached added into that channel's weight-gradient rows.

use super::{add_rows, check_lens, chunk_size, first_non_spike, spike_word, Dims, NONE};
use crate::error::Result;
use crate::isa::{run_chunk, Chunk};
use crate::parallel::{map_chunks_of, SharedOut};
use std::ops::Range;

/// Samples `ns` of `grad_y [N, c_out, OH, OW]` into `out` as `[ns][OH * OW][groups * cogp]`.
/// The padding channels of `out` must be zero (they are never written).
fn grad_rows(
    gy: &[f32],
    d: &Dims,
    ns: Range<usize>,
    out: &mut [f32],
    threads: usize,
) -> Result<()> {
    let (ohw, cop) = (d.ohw(), d.cop());
    let shared = SharedOut::new(out);
    let (c_out, n0) = (d.geo.c_out, ns.start);
    map_chunks_of(ns.len(), 1, ns.len() * ohw * cop, threads, |r: Range<usize>| {
        // SAFETY: chunks are disjoint samples of `out`.
        let dst = unsafe { shared.slice(0, &(r.start * ohw * cop..r.end * ohw * cop)) };
        for (n, dst) in r.zip(dst.chunks_exact_mut(ohw * cop)) {
            let src = &gy[(n0 + n) * c_out * ohw..][..c_out * ohw];
            // Blocks of output pixels keep both sides' lines in cache.
            for o0 in (0..ohw).step_by(16) {
                let o1 = (o0 + 16).min(ohw);
                for (co, src) in src.chunks_exact(ohw).enumerate() {
                    let col = co / d.cog * d.cogp + co % d.cog;
                    for o in o0..o1 {
                        dst[o * cop + col] = src[o];
                    }
                }
            }
        }
    })?;
    Ok(())
}

/// For every `(kh, i)`: the output index `(i + pad - kh) / stride` that input `i` reaches
/// through kernel offset `kh`, or [`NONE`].
fn reach(size: usize, k: usize, stride: usize, pad: usize, out: usize) -> Vec<u32> {
    let mut t = vec![NONE; k * size];
    for kk in 0..k {
        for i in 0..size {
            if let Some(v) = (i + pad).checked_sub(kk) {
                if v.is_multiple_of(stride) && v / stride < out {
                    t[kk * size + i] = (v / stride) as u32;
                }
            }
        }
    }
    t
}

/// Input channels of the weight gradient over samples `ns`: each chunk adds into its rows
/// `[c][kh][kw][cogp]` of `acc`.
struct WeightGradChannels<'a> {
    d: Dims,
    x: &'a [u32],
    ns: Range<usize>,
    /// `grad_y` of samples `ns`, channels last ([`grad_rows`]).
    gy: &'a [f32],
    reach_h: &'a [u32],
    reach_w: &'a [u32],
    acc: SharedOut<f32>,
}

impl Chunk for WeightGradChannels<'_> {
    type Out = std::result::Result<(), usize>;

    #[inline(always)]
    fn run(&self, r: Range<usize>) -> Self::Out {
        let d = &self.d;
        let g = &d.geo;
        let (kh_n, kw_n) = g.kernel;
        let (hw, ohw, cop) = (d.hw(), d.ohw(), d.cop());
        let per = kh_n * kw_n * d.cogp;
        // SAFETY: chunks are disjoint channel ranges, hence disjoint rows of `acc`.
        let acc = unsafe { self.acc.slice(0, &(r.start * per..r.end * per)) };
        let mut active: Vec<(u32, u32)> = Vec::with_capacity(hw);
        let mut rows: Vec<u32> = Vec::with_capacity(hw);
        for n in self.ns.clone() {
            let gy = &self.gy[(n - self.ns.start) * ohw * cop..][..ohw * cop];
            for c in r.clone() {
                let x = &self.x[(n * g.c_in + c) * hw..][..hw];
                active.clear();
                let mut ok = true;
                for (ih, line) in x.chunks_exact(g.width).enumerate() {
                    for (wi, src) in line.chunks(64).enumerate() {
                        let (mut w, good) = spike_word(src);
                        ok &= good;
                        while w != 0 {
                            active.push((ih as u32, (wi * 64) as u32 + w.trailing_zeros()));
                            w &= w - 1;
                        }
                    }
                }
                if !ok {
                    return Err((n * g.c_in + c) * hw + first_non_spike(x));
                }
                let col = (c / d.cig * d.cogp) as u32;
                for kh in 0..kh_n {
                    let reach_h = &self.reach_h[kh * g.height..][..g.height];
                    for kw in 0..kw_n {
                        let reach_w = &self.reach_w[kw * g.width..][..g.width];
                        rows.clear();
                        for &(ih, iw) in &active {
                            let (oh, ow) = (reach_h[ih as usize], reach_w[iw as usize]);
                            if oh != NONE && ow != NONE {
                                rows.push((oh * d.out_w as u32 + ow) * cop as u32 + col);
                            }
                        }
                        let k = ((c - r.start) * kh_n + kh) * kw_n + kw;
                        add_rows(gy, &rows, &mut acc[k * d.cogp..][..d.cogp]);
                    }
                }
            }
        }
        Ok(())
    }
}

/// `grad_w = conv2d_weight(x, grad_y)` for spikes `x` (float32 bit patterns) on up to `threads`
/// threads: `grad_w[co, ci, kh, kw] = sum_{n, oh, ow} grad_y[n, co, oh, ow] x[n, g ci', ih, iw]`.
/// None when every element of `x` was a spike; else the index of the first that is not, and
/// `grad_w` is unspecified.
pub fn weight_grad(
    d: &Dims,
    x: &[u32],
    grad_y: &[f32],
    grad_w: &mut [f32],
    threads: usize,
) -> Result<Option<usize>> {
    check_lens(d, x.len(), grad_w.len(), grad_y.len(), "grad_y")?;
    let g = &d.geo;
    let (kh_n, kw_n) = g.kernel;
    if d.x_len == 0 {
        grad_w.fill(0.0);
        return Ok(None);
    }
    let reach_h = reach(g.height, kh_n, g.stride.0, g.padding.0, d.out_h);
    let reach_w = reach(g.width, kw_n, g.stride.1, g.padding.1, d.out_w);
    let (ohw, cop, k) = (d.ohw(), d.cop(), kh_n * kw_n);
    // Samples per pass: about 4 MiB of channels-last grad_y, reused (no large allocation, whose
    // page faults cost more than the transposition on a virtual machine).
    let per_pass = ((1 << 20) / (ohw * cop)).clamp(1, g.batch);
    let mut gy = vec![0f32; per_pass * ohw * cop];
    let mut acc = vec![0f32; g.c_in * k * d.cogp];
    let shared = SharedOut::new(&mut acc);
    let size = chunk_size(g.c_in, threads);
    for n0 in (0..g.batch).step_by(per_pass) {
        let ns = n0..(n0 + per_pass).min(g.batch);
        grad_rows(grad_y, d, ns.clone(), &mut gy, threads)?;
        let kernel = WeightGradChannels {
            d: *d,
            x,
            ns: ns.clone(),
            gy: &gy,
            reach_h: &reach_h,
            reach_w: &reach_w,
            acc: shared,
        };
        let work = ns.len() * (g.c_in * d.hw() + ohw * cop);
        let parts = map_chunks_of(g.c_in, size, work, threads, |r| run_chunk(&kernel, r))?;
        if let Some(Err(i)) = parts.into_iter().find(|p| p.is_err()) {
            return Ok(Some(i));
        }
    }
    for (c, sums) in acc.chunks_exact(k * d.cogp).enumerate() {
        let (grp, ci) = (c / d.cig, c % d.cig);
        for (kk, sums) in sums.chunks_exact(d.cogp).enumerate() {
            for (cg, &v) in sums[..d.cog].iter().enumerate() {
                grad_w[((grp * d.cog + cg) * d.cig + ci) * k + kk] = v;
            }
        }
    }
    Ok(None)
}
