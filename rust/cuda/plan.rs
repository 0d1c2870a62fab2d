//! Everything about a CUDA launch that is pure arithmetic: kernel names, the vector-or-scalar
//! decision, grid sizes, the NVRTC target, and the kernel argument structs (mirrors of the
//! structs in `neuron.cu`, whose `static_assert`s pin the same sizes).

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::neuron::NeuronParams;
use crate::surrogate::{Surrogate, SurrogateKind};
use std::f64::consts::PI;

/// Threads per block of every kernel (passed to NVRTC as `-DSNNRS_BLOCK`).
pub const BLOCK: u32 = 256;

/// The vector kernels need at least this many threads per multiprocessor to fill the GPU;
/// below it one thread per neuron (the scalar kernels) keeps more memory requests in flight.
pub const MIN_VECTOR_THREADS_PER_SM: u64 = 1024;

/// The storage types with a CUDA kernel, in the order of the kernel table (arithmetic is
/// float32 in all of them).
pub const KERNEL_DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

/// `dtype`'s row in [`KERNEL_DTYPES`]; float64 has no CUDA kernel (a TypeError in Python).
pub fn kernel_dtype_row(dtype: DType) -> Result<usize> {
    KERNEL_DTYPES.iter().position(|&d| d == dtype).ok_or_else(|| {
        Error::Dtype(format!(
            "the CUDA kernels support float32, float16 and bfloat16, got {}",
            dtype.name()
        ))
    })
}

/// Neurons per thread of the vector kernels: one 16-byte access.
pub fn vector_width(dtype: DType) -> u64 {
    16 / dtype.size()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Forward,
    Backward,
    Rate,
}

impl Op {
    pub const ALL: [Op; 3] = [Op::Forward, Op::Backward, Op::Rate];

    fn tag(self) -> &'static str {
        match self {
            Op::Forward => "forward",
            Op::Backward => "backward",
            Op::Rate => "rate",
        }
    }

    /// Whether the op's kernels are specialised per surrogate.
    pub fn has_surrogate(self) -> bool {
        self != Op::Forward
    }
}

/// Vector kernels: [`vector_width`] neurons per thread through 16-byte accesses; scalar
/// kernels: one neuron per thread, any alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Vector,
    Scalar,
}

impl Path {
    fn tag(self) -> &'static str {
        match self {
            Path::Vector => "vec",
            Path::Scalar => "scalar",
        }
    }
}

/// One entry point of `neuron.cu`: only storage types with a kernel ([`KERNEL_DTYPES`]), and
/// forward kernels do not depend on the surrogate (None).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel {
    op: Op,
    /// The storage type's row in [`KERNEL_DTYPES`].
    dtype_row: usize,
    surrogate: Option<SurrogateKind>,
    path: Path,
}

impl Kernel {
    /// The kernel of `op` in `dtype`; an error for a storage type without one (float64).
    pub fn new(op: Op, dtype: DType, surrogate: SurrogateKind, path: Path) -> Result<Self> {
        Ok(Kernel::at_row(op, kernel_dtype_row(dtype)?, surrogate, path))
    }

    fn at_row(op: Op, dtype_row: usize, surrogate: SurrogateKind, path: Path) -> Self {
        Kernel { op, dtype_row, surrogate: op.has_surrogate().then_some(surrogate), path }
    }

    pub fn dtype(self) -> DType {
        KERNEL_DTYPES[self.dtype_row]
    }

    /// `snnrs_<op>_<dtype>[_<surrogate>]_<vec|scalar>`.
    pub fn name(self) -> String {
        let sg = self.surrogate.map(|k| format!("_{}", k.name())).unwrap_or_default();
        format!("snnrs_{}_{}{}_{}", self.op.tag(), self.dtype().tag(), sg, self.path.tag())
    }

    /// Its position in [`all_kernels`]: the index of a device's function table.
    pub fn index(self) -> usize {
        let variants = |op: Op| if op.has_surrogate() { SurrogateKind::ALL.len() } else { 1 };
        let before: usize =
            Op::ALL.iter().take_while(|&&op| op != self.op).map(|&op| variants(op)).sum();
        let sg = self.surrogate.map_or(0, |k| k as usize);
        let row = (before * KERNEL_DTYPES.len() + self.dtype_row * variants(self.op)) + sg;
        row * 2 + self.path as usize
    }
}

/// Every entry point of `neuron.cu`, each once, in [`Kernel::index`] order.
pub fn all_kernels() -> Vec<Kernel> {
    let mut kernels = Vec::new();
    for op in Op::ALL {
        for dtype_row in 0..KERNEL_DTYPES.len() {
            let kinds: &[SurrogateKind] =
                if op.has_surrogate() { &SurrogateKind::ALL } else { &SurrogateKind::ALL[..1] };
            for &kind in kinds {
                for path in [Path::Vector, Path::Scalar] {
                    kernels.push(Kernel::at_row(op, dtype_row, kind, path));
                }
            }
        }
    }
    kernels
}

/// The names of [`all_kernels`], in the same order.
pub fn all_kernel_names() -> Vec<String> {
    all_kernels().into_iter().map(Kernel::name).collect()
}

/// The names in `names` that `ptx` does not define as kernel entry points (`.entry name(`).
pub fn missing_entries(ptx: &str, names: &[String]) -> Vec<String> {
    let defined: std::collections::HashSet<&str> = ptx
        .lines()
        .filter_map(|line| line.split_once(".entry ")?.1.split('(').next())
        .map(str::trim)
        .collect();
    names.iter().filter(|n| !defined.contains(n.as_str())).cloned().collect()
}

/// What a spike kernel does ([`crate::spikes`]'s layout): pack floating spikes into bits (and
/// flag any element that is not one), or unpack bits into floating spikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeOp {
    Pack,
    Unpack,
}

/// Bytes per element of the spike kernels: they move bit patterns, so one kernel per width
/// serves every storage type of that width (float64 included; `one` says which pattern is 1.0).
pub const SPIKE_WIDTHS: [u64; 3] = [2, 4, 8];

/// One spike entry point of `neuron.cu`, `snnrs_<pack|unpack>_u<bits>`. These are not in
/// [`all_kernels`] (the neuron kernels the self-test runs); a device's function table holds
/// them after those, in [`all_spike_kernels`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpikeKernel {
    pub op: SpikeOp,
    width_row: usize,
}

impl SpikeKernel {
    /// The kernel of `op` for elements of `dtype` (floating).
    pub fn new(op: SpikeOp, dtype: DType) -> Result<Self> {
        let width_row = SPIKE_WIDTHS
            .iter()
            .position(|&w| w == dtype.size() && dtype.is_float())
            .ok_or_else(|| Error::Dtype(format!("spikes are floating, got {}", dtype.name())))?;
        Ok(SpikeKernel { op, width_row })
    }

    /// `snnrs_pack_u32` and its siblings.
    pub fn name(self) -> String {
        let op = match self.op {
            SpikeOp::Pack => "pack",
            SpikeOp::Unpack => "unpack",
        };
        format!("snnrs_{op}_u{}", SPIKE_WIDTHS[self.width_row] * 8)
    }

    /// Its position in [`all_spike_kernels`].
    pub fn index(self) -> usize {
        self.op as usize * SPIKE_WIDTHS.len() + self.width_row
    }
}

/// Every spike entry point, each once, in [`SpikeKernel::index`] order.
pub fn all_spike_kernels() -> Vec<SpikeKernel> {
    [SpikeOp::Pack, SpikeOp::Unpack]
        .into_iter()
        .flat_map(|op| (0..SPIKE_WIDTHS.len()).map(move |width_row| SpikeKernel { op, width_row }))
        .collect()
}

/// The names of [`all_spike_kernels`], in the same order.
pub fn spike_kernel_names() -> Vec<String> {
    all_spike_kernels().into_iter().map(SpikeKernel::name).collect()
}

/// Blocks of a spike launch over `n` elements: one thread per output byte (pack) or per element
/// (unpack).
pub fn spike_grid(op: SpikeOp, n: u64) -> Result<u32> {
    let threads = match op {
        SpikeOp::Pack => n.div_ceil(8),
        SpikeOp::Unpack => n,
    };
    u32::try_from(threads.div_ceil(u64::from(BLOCK)))
        .ok()
        .filter(|&g| g <= i32::MAX as u32)
        .ok_or_else(|| Error::Shape(format!("{n} spikes exceed one CUDA launch")))
}

/// The vector kernels are correct only when every row of every buffer starts 16-byte aligned:
/// each base pointer (0 = absent, ignored) aligned and `n` a multiple of the vector width.
pub fn vector_aligned(ptrs: &[u64], n: u64, dtype: DType) -> bool {
    n.is_multiple_of(vector_width(dtype)) && ptrs.iter().all(|&p| p.is_multiple_of(16))
}

/// Vector when aligned and there are enough vector threads to fill the GPU, else scalar.
pub fn choose_path(aligned: bool, n: u64, dtype: DType, sm_count: u32) -> Path {
    let threads = n / vector_width(dtype);
    if aligned && threads >= u64::from(sm_count) * MIN_VECTOR_THREADS_PER_SM {
        Path::Vector
    } else {
        Path::Scalar
    }
}

/// Blocks needed to cover `n` neurons on `path`.
pub fn grid(n: u64, dtype: DType, path: Path) -> Result<u32> {
    let per_thread = if path == Path::Vector { vector_width(dtype) } else { 1 };
    let per_block = u64::from(BLOCK) * per_thread;
    u32::try_from(n.div_ceil(per_block))
        .ok()
        .filter(|&g| g <= i32::MAX as u32)
        .ok_or_else(|| Error::Shape(format!("N = {n} neurons exceed one CUDA launch")))
}

/// The most blocks any path can need: what the PLIF backward's per-block partial sums need.
pub fn max_grid(n: u64) -> Result<u32> {
    grid(n, DType::F32, Path::Scalar)
}

/// What NVRTC compiles for a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Machine code for `sm_<cc>` (loads with no JIT on any driver of the same major version).
    Cubin(u32),
    /// PTX for `compute_<cc>`, for a GPU newer than this NVRTC knows: the driver compiles it.
    Ptx(u32),
}

impl Target {
    pub fn arch_option(self) -> String {
        match self {
            Target::Cubin(cc) => format!("--gpu-architecture=sm_{cc}"),
            Target::Ptx(cc) => format!("--gpu-architecture=compute_{cc}"),
        }
    }
}

/// Machine code for the GPU's own compute capability when NVRTC supports it, else PTX for the
/// newest one it supports below it.
pub fn choose_target(cc: u32, supported: &[u32]) -> Result<Target> {
    if supported.contains(&cc) {
        return Ok(Target::Cubin(cc));
    }
    supported.iter().copied().filter(|&s| s <= cc).max().map(Target::Ptx).ok_or_else(|| {
        Error::Runtime(format!(
            "this NVRTC cannot compile for sm_{cc} (it supports {supported:?}); install the \
             NVRTC that matches your GPU"
        ))
    })
}

/// NVRTC options shared by every compile; `--fmad=false` keeps float32 rounding equal to the
/// CPU kernels'.
pub fn compile_options(target: Target) -> Vec<String> {
    vec![
        target.arch_option(),
        "--std=c++17".into(),
        "--fmad=false".into(),
        format!("-DSNNRS_BLOCK={BLOCK}"),
    ]
}

/// `neuron.cu`'s `Consts`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Consts {
    pub leak: f32,
    pub decay: f32,
    pub input_gain: f32,
    pub threshold: f32,
    pub v_rest: f32,
    pub reset_grad: f32,
    pub sg_a: f32,
    pub sg_b: f32,
    pub decay_input: u32,
    pub hard: u32,
}

impl Consts {
    /// Rounded from float64 once, as `Consts::new` in `neuron.rs` does for float32.
    pub fn new(p: &NeuronParams, detach_reset: bool, surrogate: Surrogate) -> Self {
        let [sg_a, sg_b] = surrogate_consts(surrogate);
        Consts {
            leak: p.leak as f32,
            decay: (1.0 - p.leak) as f32,
            input_gain: if p.decay_input { p.leak as f32 } else { 1.0 },
            threshold: p.v_threshold as f32,
            v_rest: p.v_reset.unwrap_or(0.0) as f32,
            reset_grad: if detach_reset { 0.0 } else { 1.0 },
            sg_a,
            sg_b,
            decay_input: u32::from(p.decay_input),
            hard: u32::from(p.v_reset.is_some()),
        }
    }
}

/// The two constants each surrogate functor in `neuron.cu` reads, as `surrogate.rs` makes them.
pub fn surrogate_consts(s: Surrogate) -> [f32; 2] {
    let a = s.alpha;
    let [x, y] = match s.kind {
        SurrogateKind::Sigmoid | SurrogateKind::FastSigmoid => [a, 0.0],
        SurrogateKind::Atan => [a / 2.0, PI / 2.0 * a],
        SurrogateKind::Triangle => [a, 1.0 / (a * a)],
        SurrogateKind::Rectangle => [a / 2.0, 1.0 / a],
    };
    [x as f32, y as f32]
}

/// `neuron.cu`'s `ForwardArgs`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ForwardArgs {
    pub x: u64,
    pub v0: u64,
    pub spikes: u64,
    pub h_seq: u64,
    pub v: u64,
    pub leak_ptr: u64,
    pub steps: u64,
    pub n: u64,
    pub c: Consts,
}

/// `neuron.cu`'s `BackwardArgs`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BackwardArgs {
    pub grad_spikes: u64,
    pub grad_v: u64,
    pub h_seq: u64,
    pub v0: u64,
    pub grad_x: u64,
    pub grad_v0: u64,
    pub partials: u64,
    pub leak_ptr: u64,
    pub steps: u64,
    pub n: u64,
    pub c: Consts,
}

/// `neuron.cu`'s `RateArgs`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RateArgs {
    pub x: u64,
    pub v0: u64,
    pub spikes: u64,
    pub v: u64,
    pub rate: u64,
    pub eligibility: u64,
    pub leak_ptr: u64,
    pub steps: u64,
    pub n: u64,
    pub c: Consts,
}

/// `neuron.cu`'s `SpikeArgs`: `src` elements (pack) or bytes (unpack) into `dst`; `flag`, one
/// byte the pack sets to 1 when an element is not a spike; `one`, the pattern of 1.0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpikeArgs {
    pub src: u64,
    pub dst: u64,
    pub flag: u64,
    pub n: u64,
    pub one: u64,
}

// The sizes neuron.cu's static_asserts pin.
const _: () = assert!(std::mem::size_of::<Consts>() == 40);
const _: () = assert!(std::mem::size_of::<ForwardArgs>() == 104);
const _: () = assert!(std::mem::size_of::<BackwardArgs>() == 120);
const _: () = assert!(std::mem::size_of::<RateArgs>() == 112);
const _: () = assert!(std::mem::size_of::<SpikeArgs>() == 40);

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
