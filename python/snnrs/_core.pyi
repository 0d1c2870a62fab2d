# The Rust extension module. Private: use snnrs.ops. Buffers are (data_ptr) of contiguous
# tensors of dtype `dtype_name` ("float32" or "float64"): [T, N] sequences and [N] states.

__version__: str
CHUNK: int

def forward(dtype_name: str, steps: int, n: int, x: int, v0: int, spikes: int, h_seq: int,
            v: int, leak: float, decay_input: bool, v_threshold: float, v_reset: float | None,
            threads: int) -> None: ...
def backward(dtype_name: str, steps: int, n: int, grad_spikes: int, grad_v: int, h_seq: int,
             v0: int, grad_x: int, grad_v0: int, leak: float, decay_input: bool,
             v_threshold: float, v_reset: float | None, detach_reset: bool, surrogate: str,
             alpha: float, threads: int) -> float | None: ...
def rate_forward(dtype_name: str, steps: int, n: int, x: int, v0: int, spikes: int, v: int,
                 rate: int, eligibility: int, leak: float, decay_input: bool,
                 v_threshold: float, v_reset: float | None, detach_reset: bool,
                 surrogate: str, alpha: float, threads: int) -> None: ...
def surrogates() -> list[tuple[str, float]]: ...

# Parallel loops on the GNU OpenMP runtime at `path` (torch's libgomp); RuntimeError when it
# cannot be loaded or lacks GOMP_parallel. use_openmp returns whether OpenMP is now in use.
def attach_openmp(path: str) -> None: ...
def use_openmp(enabled: bool) -> bool: ...

# CUDA (cargo feature `cuda`; absent otherwise). Buffers are data_ptr()s of contiguous CUDA
# tensors in dtype `dtype_name` ("float32", "float16" or "bfloat16"; h_seq always float32), 0 for
# an absent optional one; `device` is the tensors' device index and `cuda_stream` torch's current
# stream there. Each launch returns (kernel name, blocks) and never synchronises. Raises
# RuntimeError without a CUDA driver, a GPU or a libnvrtc.
CUDA_BLOCK: int

def cuda_forward(dtype_name: str, device: int, cuda_stream: int, steps: int, n: int, x: int,
                 v0: int, spikes: int, h_seq: int, v: int, leak_ptr: int, leak: float,
                 decay_input: bool, v_threshold: float, v_reset: float | None
                 ) -> tuple[str, int]: ...
def cuda_backward(dtype_name: str, device: int, cuda_stream: int, steps: int, n: int,
                  grad_spikes: int, grad_v: int, h_seq: int, v0: int, grad_x: int,
                  grad_v0: int, partials: int, partials_len: int, leak_ptr: int, leak: float,
                  decay_input: bool, v_threshold: float, v_reset: float | None,
                  detach_reset: bool, surrogate: str, alpha: float) -> tuple[str, int]: ...
def cuda_rate_forward(dtype_name: str, device: int, cuda_stream: int, steps: int, n: int,
                      x: int, v0: int, spikes: int, v: int, rate: int, eligibility: int,
                      leak_ptr: int, leak: float, decay_input: bool, v_threshold: float,
                      v_reset: float | None, detach_reset: bool, surrogate: str, alpha: float
                      ) -> tuple[str, int]: ...
def cuda_max_blocks(n: int) -> int: ...
def cuda_kernel_names() -> list[str]: ...
def cuda_compile(arch: int) -> dict[str, str | int]: ...
