# The Rust extension module. Private: use snnrs.ops (the backends call it). Each op is one
# function, `op(ctx, params, steps, **bufs)`, on either device: `ctx` says where it runs (`Cpu`,
# or `Cuda` in a build with CUDA), and each buffer is a keyword, `name=_Buf`, a (data_ptr, numel,
# DType) of one contiguous tensor measured on that tensor. Rust checks every length, element type
# and address against the others before touching memory (ValueError / TypeError otherwise); a
# missing or unknown buffer name is a TypeError. [T, N] sequences, [N] states; N comes from the
# state buffer. tests/test_stubs.py holds this file to the compiled module (names, signatures,
# finality).

from typing import ClassVar, final, overload

__all__ = [
    "CHUNK", "CUDA_BLOCK", "Cpu", "Cuda", "DType", "Params", "__version__", "attach_openmp",
    "backward", "cubalif_backward", "cubalif_forward", "cuda_compile", "cuda_kernel_names",
    "cuda_max_blocks", "cuda_spike_kernel_names", "event_conv2d", "event_conv2d_weight",
    "forward", "pack_spikes", "rate_forward", "surrogates", "unpack_spikes", "use_openmp",
]

__version__: str
CHUNK: int

@final
class DType:
    """A buffer's element type; compares equal to its index (F16 = 0 ... F64 = 3, U8 = 4: packed
    spikes only)."""

    F16: ClassVar[DType]
    BF16: ClassVar[DType]
    F32: ClassVar[DType]
    F64: ClassVar[DType]
    U8: ClassVar[DType]
    def __int__(self) -> int: ...

_Buf = tuple[int, int, DType]  # private: a name of this file only, not of the module

@final
class Params:
    """The seven neuron scalars, validated once (ValueError naming the bad one)."""

    def __new__(cls, leak: float, decay_input: bool, v_threshold: float,
                v_reset: float | None, detach_reset: bool, surrogate: str,
                alpha: float) -> Params: ...
    @property
    def args(self) -> tuple[float, bool, float, float | None, bool, str, float]: ...

@final
class Cpu:
    """Runs an op on the CPU kernels (float32 or float64) on `threads` threads."""

    def __new__(cls, threads: int) -> Cpu: ...
    @property
    def threads(self) -> int: ...

# Buffers: forward(x, v0, spikes, h_seq, v, leak=None); backward(grad_spikes, grad_v=None, h_seq,
# v0=None, grad_x, grad_v0, leak=None, partials=None); rate_forward(x, v0, spikes, v, rate,
# eligibility, leak=None). `leak`: PLIF's sigmoid(w), one element (on the CPU float32 or
# float64, on CUDA float32 on the device). `grad_v` None: zero; `v0` None: no leak gradient.
# On the CPU, backward returns dL/dleak when `v0` is given, else None; forward and rate_forward
# return None. On CUDA, each returns (kernel index into cuda_kernel_names(), blocks), and
# backward with `v0` writes block i's part of dL/dleak to `partials[i]` (float64, at least
# cuda_max_blocks(N) elements).
@overload
def forward(ctx: Cpu, params: Params, steps: int, **bufs: _Buf | None) -> None: ...
@overload
def forward(ctx: Cuda, params: Params, steps: int, **bufs: _Buf | None) -> tuple[int, int]: ...
@overload
def backward(ctx: Cpu, params: Params, steps: int, **bufs: _Buf | None) -> float | None: ...
@overload
def backward(ctx: Cuda, params: Params, steps: int, **bufs: _Buf | None) -> tuple[int, int]: ...
@overload
def rate_forward(ctx: Cpu, params: Params, steps: int, **bufs: _Buf | None) -> None: ...
@overload
def rate_forward(ctx: Cuda, params: Params, steps: int, **bufs: _Buf | None
                 ) -> tuple[int, int]: ...
def surrogates() -> list[tuple[str, float]]: ...

# CubaLIF (snnrs.nn.CubaLIF; CPU only, a RuntimeError on a Cuda context). `params` holds its LIF
# part; `leak_syn` (1 / tau_syn) is a one-element float64 buffer. cubalif_forward(x, i0, v0,
# spikes, h_seq, i, v, leak_syn); cubalif_backward(grad_spikes, grad_i=None, grad_v=None, h_seq,
# grad_x, grad_i0, grad_v0, leak_syn). `grad_i` / `grad_v` None: zero. Both return None.
def cubalif_forward(ctx: Cpu, params: Params, steps: int, **bufs: _Buf | None) -> None: ...
def cubalif_backward(ctx: Cpu, params: Params, steps: int, **bufs: _Buf | None) -> None: ...

# Spikes at one bit per element (snnrs.ops.pack_spikes): pack_spikes(x, bits, flag=None) packs
# x (n floating elements, any of the four) into bits (ceil(n / 8) U8 bytes, element k = bit k % 8
# of byte k // 8); unpack_spikes(bits, out) is the reverse (padding bits must be 0). On the CPU,
# pack_spikes returns None when every element was exactly +0.0 or +1.0, else the index of the
# first that was not (bits then all zero), and unpack_spikes returns None. On CUDA, `flag` (one
# zeroed U8 byte, required) is set to 1 on a non-spike, both return the blocks launched, and the
# caller checks unpack's padding bits.
@overload
def pack_spikes(ctx: Cpu, **bufs: _Buf | None) -> int | None: ...
@overload
def pack_spikes(ctx: Cuda, **bufs: _Buf | None) -> int: ...
@overload
def unpack_spikes(ctx: Cpu, **bufs: _Buf | None) -> None: ...
@overload
def unpack_spikes(ctx: Cuda, **bufs: _Buf | None) -> int: ...

# The event convolution of spikes (snnrs.event_conv; CPU only, a RuntimeError on a Cuda context).
# `shape` is (batch, c_in, height, width, c_out, kernel_h, kernel_w); `stride` and `padding` are
# (h, w). event_conv2d(x, weight, y, bias=None) and event_conv2d_weight(x, grad_y, grad_weight),
# float32 buffers checked against the geometry; each returns None when every element of x was
# +0.0 or +1.0, else the index of the first that was not (the output is then unspecified).
def event_conv2d(ctx: Cpu, shape: tuple[int, int, int, int, int, int, int],
                 stride: tuple[int, int], padding: tuple[int, int], groups: int,
                 **bufs: _Buf | None) -> int | None: ...
def event_conv2d_weight(ctx: Cpu, shape: tuple[int, int, int, int, int, int, int],
                        stride: tuple[int, int], padding: tuple[int, int], groups: int,
                        **bufs: _Buf | None) -> int | None: ...

# Parallel loops on the GNU OpenMP runtime at `path` (torch's libgomp); RuntimeError when it
# cannot be loaded or lacks GOMP_parallel. use_openmp returns whether OpenMP is now in use.
def attach_openmp(path: str) -> None: ...
def use_openmp(enabled: bool) -> bool: ...

# CUDA (cargo feature `cuda`; absent otherwise). Buffers of CUDA tensors in float32, float16 or
# bfloat16 (h_seq always float32); `device` is the tensors' device index and `stream` torch's
# current stream there. Launches never synchronise; they raise RuntimeError without a CUDA
# driver, a GPU or a libnvrtc.
CUDA_BLOCK: int

@final
class Cuda:
    """Runs an op on the CUDA kernels, on device `device` and stream `stream`."""

    def __new__(cls, device: int, stream: int) -> Cuda: ...
    @property
    def device(self) -> int: ...
    @property
    def stream(self) -> int: ...

def cuda_max_blocks(n: int) -> int: ...
def cuda_kernel_names() -> list[str]: ...
def cuda_compile(arch: int) -> dict[str, str | int]: ...
def cuda_spike_kernel_names() -> list[str]: ...
