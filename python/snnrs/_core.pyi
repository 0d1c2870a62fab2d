# The Rust extension module. Private: use snnrs.ops (the backends call it). Each buffer is a
# `_Buf`, (data_ptr, numel, DType) of one contiguous tensor, measured on that tensor: Rust checks
# every length, element type and address against the others before touching memory (ValueError
# / TypeError otherwise). [T, N] sequences, [N] states; N comes from the state buffer.
# tests/test_stubs.py holds this file to the compiled module (names, signatures, finality).

from typing import ClassVar, final

__all__ = [
    "CHUNK", "CUDA_BLOCK", "DType", "Params", "__version__", "attach_openmp", "backward",
    "cuda_backward", "cuda_compile", "cuda_forward", "cuda_kernel_names", "cuda_max_blocks",
    "cuda_rate_forward", "forward", "rate_forward", "surrogates", "use_openmp",
]

__version__: str
CHUNK: int

@final
class DType:
    """A buffer's element type; compares equal to its index (F16 = 0 ... F64 = 3)."""

    F16: ClassVar[DType]
    BF16: ClassVar[DType]
    F32: ClassVar[DType]
    F64: ClassVar[DType]
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

# CPU kernels in float32 or float64. `leak`: PLIF's sigmoid(w), one float32 or float64, or None.
def forward(params: Params, steps: int, x: _Buf, v0: _Buf, spikes: _Buf, h_seq: _Buf, v: _Buf,
            leak: _Buf | None, threads: int) -> None: ...
def backward(params: Params, steps: int, grad_spikes: _Buf, grad_v: _Buf | None, h_seq: _Buf,
             v0: _Buf | None, grad_x: _Buf, grad_v0: _Buf, leak: _Buf | None,
             threads: int) -> float | None: ...
def rate_forward(params: Params, steps: int, x: _Buf, v0: _Buf, spikes: _Buf, v: _Buf,
                 rate: _Buf, eligibility: _Buf, leak: _Buf | None, threads: int) -> None: ...
def surrogates() -> list[tuple[str, float]]: ...

# Parallel loops on the GNU OpenMP runtime at `path` (torch's libgomp); RuntimeError when it
# cannot be loaded or lacks GOMP_parallel. use_openmp returns whether OpenMP is now in use.
def attach_openmp(path: str) -> None: ...
def use_openmp(enabled: bool) -> bool: ...

# CUDA (cargo feature `cuda`; absent otherwise). Buffers of CUDA tensors in float32, float16 or
# bfloat16 (h_seq always float32; `leak` a float32 on the device); `device` is the tensors'
# device index and `cuda_stream` torch's current stream there. Each launch returns (kernel index
# into cuda_kernel_names(), blocks) and never synchronises. Raises RuntimeError without a CUDA
# driver, a GPU or a libnvrtc.
CUDA_BLOCK: int

def cuda_forward(params: Params, device: int, cuda_stream: int, steps: int, x: _Buf, v0: _Buf,
                 spikes: _Buf, h_seq: _Buf, v: _Buf, leak: _Buf | None) -> tuple[int, int]: ...
def cuda_backward(params: Params, device: int, cuda_stream: int, steps: int, grad_spikes: _Buf,
                  grad_v: _Buf | None, h_seq: _Buf, v0: _Buf | None, grad_x: _Buf, grad_v0: _Buf,
                  leak: _Buf | None, partials: _Buf | None) -> tuple[int, int]: ...
def cuda_rate_forward(params: Params, device: int, cuda_stream: int, steps: int, x: _Buf,
                      v0: _Buf, spikes: _Buf, v: _Buf, rate: _Buf, eligibility: _Buf,
                      leak: _Buf | None) -> tuple[int, int]: ...
def cuda_max_blocks(n: int) -> int: ...
def cuda_kernel_names() -> list[str]: ...
def cuda_compile(arch: int) -> dict[str, str | int]: ...
