//! The event convolution against a naive float64 oracle written from the definition, over
//! strides, paddings, groups, densities and thread counts; and the checks of its inputs.

use super::*;

/// A small deterministic generator (xorshift), so the tests need no seed handling.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `x[n, c, i, j]` for in-range `(i, j)`, else 0 (zero padding).
fn at(x: &[f32], g: &Geometry, n: usize, c: usize, i: isize, j: isize) -> f64 {
    if i < 0 || j < 0 || i as usize >= g.height || j as usize >= g.width {
        return 0.0;
    }
    f64::from(x[((n * g.c_in + c) * g.height + i as usize) * g.width + j as usize])
}

/// `(y, grad_w)` of the dense convolution in float64, `grad_w` against `gy`.
fn oracle(g: &Geometry, d: &Dims, x: &[f32], w: &[f32], gy: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let (kh_n, kw_n) = g.kernel;
    let mut y = vec![0f64; d.y_len];
    let mut dw = vec![0f64; d.w_len];
    for n in 0..g.batch {
        for co in 0..g.c_out {
            let grp = co / d.cog;
            for oh in 0..d.out_h {
                for ow in 0..d.out_w {
                    let yi = ((n * g.c_out + co) * d.out_h + oh) * d.out_w + ow;
                    for ci in 0..d.cig {
                        for kh in 0..kh_n {
                            for kw in 0..kw_n {
                                let i = (oh * g.stride.0 + kh) as isize - g.padding.0 as isize;
                                let j = (ow * g.stride.1 + kw) as isize - g.padding.1 as isize;
                                let s = at(x, g, n, grp * d.cig + ci, i, j);
                                let wi = ((co * d.cig + ci) * kh_n + kh) * kw_n + kw;
                                y[yi] += f64::from(w[wi]) * s;
                                dw[wi] += f64::from(gy[yi]) * s;
                            }
                        }
                    }
                }
            }
        }
    }
    (y, dw)
}

fn close(got: &[f32], want: &[f64], terms: usize, what: &str) {
    let tol = 1e-6 * (terms as f64 + 1.0);
    for (k, (&a, &b)) in got.iter().zip(want).enumerate() {
        assert!((f64::from(a) - b).abs() <= tol * (1.0 + b.abs()), "{what}[{k}]: {a} vs {b}");
    }
}

fn case(g: Geometry, density: f64, threads: usize, rng: &mut Rng) {
    let d = g.dims().unwrap();
    let x: Vec<f32> = (0..d.x_len).map(|_| f32::from(u8::from(rng.unit() < density))).collect();
    let w: Vec<f32> = (0..d.w_len).map(|_| rng.unit() as f32 - 0.5).collect();
    let gy: Vec<f32> = (0..d.y_len).map(|_| rng.unit() as f32 - 0.5).collect();
    let bits: Vec<u32> = x.iter().map(|v| v.to_bits()).collect();
    let (y_ref, dw_ref) = oracle(&g, &d, &x, &w, &gy);
    let mut y = vec![f32::NAN; d.y_len];
    assert_eq!(forward(&d, &bits, &w, None, &mut y, threads).unwrap(), None);
    close(&y, &y_ref, d.cig * g.kernel.0 * g.kernel.1, "y");
    let mut dw = vec![f32::NAN; d.w_len];
    assert_eq!(weight_grad(&d, &bits, &gy, &mut dw, threads).unwrap(), None);
    close(&dw, &dw_ref, g.batch * d.out_h * d.out_w, "grad_w");
}

#[test]
fn matches_the_dense_convolution() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for k in 0..60 {
        let groups = [1, 2, 4][k % 3];
        let kernel = (1 + 2 * (k % 3), 1 + 2 * ((k / 3) % 2));
        let g = Geometry {
            batch: 1 + k % 3,
            c_in: groups * (1 + (rng.next() % 7) as usize),
            height: kernel.0 + (rng.next() % 9) as usize,
            width: kernel.1 + (rng.next() % 9) as usize,
            c_out: groups * (1 + (rng.next() % 40) as usize),
            kernel,
            stride: (1 + k % 3, 1 + (k / 2) % 3),
            padding: ((k / 4) % 3, (k / 5) % 3),
            groups,
        };
        let density = [0.0, 1.0, 0.1, 0.5][k % 4];
        case(g, density, 1 + k % 3, &mut rng);
    }
}

#[test]
fn refuses_non_spikes_and_bad_geometry() {
    let g = Geometry {
        batch: 2,
        c_in: 3,
        height: 4,
        width: 5,
        c_out: 2,
        kernel: (3, 3),
        stride: (1, 1),
        padding: (1, 1),
        groups: 1,
    };
    let d = g.dims().unwrap();
    for bad in [0.5f32, -0.0, f32::NAN, 2.0] {
        let mut x = vec![0u32; d.x_len];
        x[77] = bad.to_bits();
        let mut y = vec![0f32; d.y_len];
        let w = vec![0f32; d.w_len];
        assert_eq!(forward(&d, &x, &w, None, &mut y, 2).unwrap(), Some(77));
        let mut dw = vec![0f32; d.w_len];
        assert_eq!(weight_grad(&d, &x, &y, &mut dw, 2).unwrap(), Some(77));
    }
    for geo in [
        Geometry { groups: 2, ..g },
        Geometry { stride: (0, 1), ..g },
        Geometry { kernel: (7, 3), ..g },
        Geometry { c_in: 0, ..g },
        Geometry { batch: usize::MAX, ..g },
    ] {
        assert!(geo.dims().is_err(), "{geo:?}");
    }
}
