//! snnrs: spiking-neuron kernels over slices, and (feature `python`) their PyO3 module
//! `snnrs._core`.
//!
//! The kernels know nothing of Python or PyTorch: they take `[T, N]` time-first buffers and
//! write their outputs. See `docs/neurons.md` for the math. [`cuda`] holds the CUDA
//! kernels and (feature `cuda`) their launcher.

pub mod boundary;
pub mod cuda;
pub mod dtype;
pub mod error;
pub mod event_conv;
pub mod families;
pub mod float;
pub mod isa;
pub mod neuron;
pub mod openmp;
pub mod parallel;
pub mod spikes;
pub mod surrogate;

#[cfg(feature = "python")]
mod python;

pub use boundary::{BackwardBufs, ForwardBufs, RateBufs, RawBuf};
pub use dtype::DType;
pub use error::{Error, Result};
pub use float::Float;
pub use neuron::{
    backward, forward, rate_forward, BackwardIo, ForwardIo, GradParams, NeuronParams, RateIo,
};
pub use surrogate::{Surrogate, SurrogateKind};
