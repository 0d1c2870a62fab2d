//! The CUDA backend: kernels in `neuron.cu` (textual twins of `neuron.rs`), compiled by NVRTC on
//! first use per device and launched through cudarc's driver API on torch's stream and memory.
//!
//! [`plan`] (names, alignment, grids, NVRTC target, argument structs) is pure and always built;
//! the rest needs the `cuda` feature. cudarc loads libcuda and libnvrtc at run time, so the crate
//! builds and imports without CUDA; calls then fail with a clear [`Error::Runtime`].
//!
//! [`Error::Runtime`]: crate::Error::Runtime

pub mod plan;

/// The CUDA C source of every kernel.
pub const SOURCE: &str = include_str!("neuron.cu");

#[cfg(feature = "cuda")]
pub mod driver;
#[cfg(feature = "cuda")]
mod launch;
#[cfg(feature = "cuda")]
pub mod nvrtc;

#[cfg(feature = "cuda")]
pub use launch::{backward, forward, pack_spikes, rate_forward, unpack_spikes, Launched, Stream};
