//! Criterion benches of the CPU kernels (docs/benchmarks.md, `kernels.rs`): LIF float32 forward,
//! BPTT backward and rate-mode forward over the T x N grid, with throughput in neuron-steps per
//! second. Bench ids read `<kernel>/f32/T<T>/N<N>`; run one cell with e.g.
//! `cargo bench -- lif_forward/f32/T8/N1048576`. Spike packing (`spikes_pack`, `spikes_unpack`:
//! 2^24 float32 spikes to and from bits, reused buffers) reads as a T = 1 cell.

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use snnrs::{
    backward, forward, rate_forward, BackwardIo, ForwardIo, GradParams, NeuronParams, RateIo,
    Surrogate, SurrogateKind,
};
use std::hint::black_box;
use std::time::Duration;

const STEPS: [usize; 4] = [4, 8, 32, 128];
const NEURONS: [usize; 3] = [1 << 16, 1 << 20, 1 << 22];

/// Cells with more neuron-steps than this are skipped. The full grid runs: its largest cell,
/// T=128 at N=2^22, holds three 2 GiB buffers (about 8 GiB at peak while setting up backward).
const MAX_WORK: usize = 1 << 29;

/// Cells from this many neuron-steps up take tens of milliseconds per call: sample them flat.
const LARGE_WORK: usize = 1 << 22;

/// SpikingJelly's `LIFNode` defaults: tau = 2, decay_input, threshold 1, hard reset to 0.
const LIF: NeuronParams =
    NeuronParams { leak: 0.5, decay_input: true, v_threshold: 1.0, v_reset: Some(0.0) };
const GRAD: GradParams = GradParams {
    detach_reset: false,
    surrogate: Surrogate { kind: SurrogateKind::Sigmoid, alpha: 4.0 },
};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Standard-normal samples from a fixed seed (splitmix64 + Box-Muller, both outputs used).
fn normals(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut uniform = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(len + 1);
    while out.len() < len {
        let r = (-2.0 * (1.0 - uniform()).ln()).sqrt();
        let (sin, cos) = (2.0 * std::f64::consts::PI * uniform()).sin_cos();
        out.extend([(r * cos) as f32, (r * sin) as f32]);
    }
    out.truncate(len);
    out
}

/// Benches one kernel over the grid. `setup(T, N)` builds its buffers, only for cells that pass
/// the command-line filter; `run(T, buffers)` is the timed call.
fn grid<S>(
    c: &mut Criterion,
    kernel: &str,
    setup: impl Fn(usize, usize) -> S,
    run: impl Fn(usize, &mut S),
) {
    let mut group = c.benchmark_group(kernel);
    for steps in STEPS {
        for n in NEURONS {
            let work = steps * n;
            if work > MAX_WORK {
                continue;
            }
            group.throughput(Throughput::Elements(work as u64));
            if work >= LARGE_WORK {
                group.sampling_mode(SamplingMode::Flat).sample_size(10);
                group.warm_up_time(Duration::from_millis(500));
            } else {
                group.sampling_mode(SamplingMode::Auto).sample_size(20);
                group.warm_up_time(Duration::from_secs(1));
            }
            group.measurement_time(Duration::from_secs(2));
            let mut buffers = None;
            group.bench_function(BenchmarkId::new("f32", format!("T{steps}/N{n}")), |b| {
                let s = buffers.get_or_insert_with(|| setup(steps, n));
                b.iter(|| run(steps, s));
            });
        }
    }
    group.finish();
}

/// `x`, `v0`, and the outputs `spikes`, `h_seq`, `v`.
type FwdBufs = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

fn forward_bufs(steps: usize, n: usize) -> FwdBufs {
    let zeros = |len| vec![0.0f32; len];
    // v0 is the default initial state, v_reset = 0; the input is never zeros.
    (normals(steps * n, 1), zeros(n), zeros(steps * n), zeros(steps * n), zeros(n))
}

fn run_forward(steps: usize, (x, v0, spikes, h_seq, v): &mut FwdBufs) {
    let io = ForwardIo { x: black_box(x), v0: black_box(v0), spikes, h_seq, v };
    forward(&LIF, steps, io, threads()).unwrap();
    black_box((spikes, h_seq, v));
}

fn bench_forward(c: &mut Criterion) {
    grid(c, "lif_forward", forward_bufs, run_forward);
}

fn bench_backward(c: &mut Criterion) {
    // `grad_spikes`, the saved `h_seq` of a forward pass, and the outputs `grad_x`, `grad_v0`.
    let setup = |steps: usize, n: usize| {
        let mut f = forward_bufs(steps, n);
        run_forward(steps, &mut f);
        (normals(steps * n, 2), f.3, vec![0.0f32; steps * n], vec![0.0f32; n])
    };
    grid(c, "lif_backward", setup, |steps, (grad_spikes, h_seq, grad_x, grad_v0)| {
        let (grad_spikes, h_seq) = (black_box(&grad_spikes[..]), black_box(&h_seq[..]));
        let io = BackwardIo { grad_spikes, grad_v: None, h_seq, v0: None, grad_x, grad_v0 };
        black_box(backward(&LIF, &GRAD, steps, io, threads()).unwrap());
        black_box((grad_x, grad_v0));
    });
}

fn bench_rate_forward(c: &mut Criterion) {
    // `x`, `v0`, and the outputs `spikes`, `v`, `rate`, `eligibility`.
    let setup = |steps: usize, n: usize| {
        let zeros = |len| vec![0.0f32; len];
        (normals(steps * n, 1), zeros(n), zeros(steps * n), zeros(n), zeros(n), zeros(n))
    };
    grid(c, "lif_rate_forward", setup, |steps, (x, v0, spikes, v, rate, eligibility)| {
        let io = RateIo { x: black_box(x), v0: black_box(v0), spikes, v, rate, eligibility };
        rate_forward(&LIF, &GRAD, steps, io, threads()).unwrap();
        black_box((spikes, v, rate, eligibility));
    });
}

fn bench_spikes(c: &mut Criterion) {
    const N: usize = 1 << 24;
    let one = 1.0f32.to_bits();
    let x: Vec<u32> = normals(N, 3).iter().map(|&v| if v > 0.5 { one } else { 0 }).collect();
    let mut bits = vec![0u8; snnrs::spikes::packed_len(N)];
    let mut out = vec![0u32; N];
    for (kernel, pack) in [("spikes_pack", true), ("spikes_unpack", false)] {
        let mut group = c.benchmark_group(kernel);
        group.throughput(Throughput::Elements(N as u64));
        group.sampling_mode(SamplingMode::Flat).sample_size(20);
        group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
        group.bench_function(BenchmarkId::new("f32", format!("T1/N{N}")), |b| {
            b.iter(|| {
                if pack {
                    let all = snnrs::spikes::pack(black_box(&x), one, &mut bits, threads());
                    assert_eq!(all.unwrap(), None);
                } else {
                    snnrs::spikes::unpack(black_box(&bits), one, &mut out, threads()).unwrap();
                }
                black_box((&bits, &out));
            });
        });
        group.finish();
    }
}

criterion_group!(benches, bench_forward, bench_backward, bench_rate_forward, bench_spikes);
criterion_main!(benches);
