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
