//! The crate's one element-type enum: what a buffer holds ([`crate::boundary`]), what a CPU
//! kernel computes in ([`crate::Float::DTYPE`]), what a CUDA kernel stores
//! ([`crate::cuda::plan::KERNEL_DTYPES`]), what packed spikes are stored in (uint8,
//! [`crate::spikes`]), and, with the feature `python`, `_core.DType`.

/// The element types a buffer may have. In Python, `_core.DType.F32` and its siblings compare
/// equal to their index (F16 = 0 ... F64 = 3, U8 = 4). `U8` is only the packed-spike buffer of
/// [`crate::spikes`]: every other buffer is floating.
#[cfg_attr(
    feature = "python",
    pyo3::pyclass(module = "snnrs._core", frozen, eq, eq_int, from_py_object)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F16,
    BF16,
    F32,
    F64,
    U8,
}

impl DType {
    /// The floating element types (every buffer's but packed spikes').
    pub const ALL: [DType; 4] = [DType::F16, DType::BF16, DType::F32, DType::F64];

    /// Whether it is one of [`DType::ALL`].
    pub fn is_float(self) -> bool {
        self != DType::U8
    }

    /// torch's name for it.
    pub fn name(self) -> &'static str {
        match self {
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::U8 => "uint8",
        }
    }

    /// The short name, as in kernel names: `f16`, `bf16`, `f32`, `f64`.
    pub fn tag(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::U8 => "u8",
        }
    }

    /// Bytes per element (also the alignment each buffer needs).
    pub fn size(self) -> u64 {
        match self {
            DType::U8 => 1,
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
}
