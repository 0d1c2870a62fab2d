//! Native kernels of the neuron families other than IF / LIF / PLIF ([`crate::neuron`]): one
//! module per family, pure functions over slices, with the buffer set its op checks.

pub mod cuba;
