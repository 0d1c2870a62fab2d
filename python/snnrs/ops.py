"""Multi-step neuron ops: ``torch.library`` custom ops over the Rust kernels.

Every op has a fake (meta) implementation and registered autograd, so it runs in eager mode,
under ``torch.compile(fullgraph=True)``, in CUDA graphs and in ``torch.library.opcheck``. CPU
tensors run the Rust kernels of ``snnrs._core`` (float16 / bfloat16 compute in float32). CUDA
tensors in float32, float16 or bfloat16 run the CUDA kernels (:mod:`snnrs.cuda`; they read and
write the tensor's own dtype and compute in float32) on the tensor's device and torch's current
stream; float64 CUDA tensors, and other devices, run the pure-PyTorch kernel twins of
:mod:`snnrs.reference`.

Autograd keeps only the charge sequence ``H`` (plus ``v0`` and ``w`` for PLIF) between forward
and backward; spikes are recomputed from ``H``. Large CPU outputs are recycled once nothing uses
them any more (see :func:`set_cache_limit`, :func:`empty_cache`), sparing the page faults of a
fresh allocation every step. The CPU kernels run on torch's own OpenMP threads where torch uses
GNU OpenMP, so the two never compete for cores (see :func:`use_torch_threads`).

Example:
    >>> x = torch.randn(8, 32, 100)                  # [T, B, features]
    >>> spikes, v = lif(x, tau=2.0)                  # spikes [8, 32, 100], v [32, 100]
"""

import math
from typing import NamedTuple

import torch
from torch import Tensor

from . import _buffers, _core, reference
from . import surrogate as sg
from ._buffers import empty_cache, set_cache_limit
from ._threads import use_torch_threads
from .cuda import _kernels as _cuda

__all__ = [
    "NeuronParams",
    "RateOutput",
    "empty_cache",
    "if_",
    "lif",
    "make_params",
    "multistep",
    "neuron_backward",
    "neuron_forward",
    "neuron_rate_forward",
    "plif",
    "rate",
    "set_cache_limit",
    "tau_to_leak",
    "use_torch_threads",
]

try:
    use_torch_threads()
except RuntimeError:  # a runtime without GOMP_parallel: rayon's pool serves
    pass

_KERNEL_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def _compute_dtype(t: Tensor) -> torch.dtype:
    """float16 / bfloat16 compute (and keep ``H``) in float32; float32 / float64 as they are."""
    return t.dtype if t.dtype in _KERNEL_DTYPES else torch.float32


def _prep(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(dtype).contiguous()


def _is_empty(x: Tensor) -> bool:
    return x.shape[0] == 0 or x[0].numel() == 0


# ---------------------------------------------------------------------------------------------
# The custom ops. `w` is PLIF's parameter (leak = sigmoid(w)); when None, `leak` is used.
# Each op casts and lays out its inputs once, then runs a kernel: the pure-PyTorch twin from
# snnrs.reference by default (any device), the Rust kernel on the CPU.


# `native`: the kernel reads and writes the tensors' own dtype (the CUDA kernels); otherwise
# half inputs are cast to float32 for it and its outputs cast back.


def _forward(kernel, x, v0, w, leak, decay_input, v_threshold, v_reset, native=False):
    dt = _compute_dtype(x)
    if _is_empty(x):
        return x.new_empty(x.shape), v0.clone(), x.new_empty(x.shape, dtype=dt)
    io = x.dtype if native else dt
    spikes, v, h_seq = kernel(_prep(x, io), _prep(v0, io), w, leak, decay_input, v_threshold,
                              v_reset)
    return spikes.to(x.dtype), v.to(x.dtype), h_seq


def _backward(kernel, grad_spikes, grad_v, h_seq, v0, w, *params, native=False):
    out = grad_spikes.dtype
    if _is_empty(h_seq):
        grad_v0 = h_seq.new_zeros(h_seq.shape[1:], dtype=out) if grad_v is None else grad_v.clone()
        return h_seq.new_zeros(h_seq.shape, dtype=out), grad_v0, h_seq.new_zeros(())
    io = out if native else h_seq.dtype
    grad_x, grad_v0, grad_leak = kernel(_prep(grad_spikes, io), _prep(grad_v, io),
                                        h_seq.contiguous(), _prep(v0, io), w, *params)
    return grad_x.to(out), grad_v0.to(out), grad_leak


def _rate_forward(kernel, x, v0, w, *params, native=False):
    if _is_empty(x):
        return x.new_empty(x.shape), v0.clone(), v0.new_zeros(v0.shape), v0.new_zeros(v0.shape)
    io = x.dtype if native else _compute_dtype(x)
    return tuple(t.to(x.dtype) for t in kernel(_prep(x, io), _prep(v0, io), w, *params))


def _leak_of(w: Tensor | None, leak: float) -> "float | Tensor":
    return leak if w is None else torch.sigmoid(w)


def _reference_forward(x, v0, w, leak, *params):
    return reference.forward(x, v0, _leak_of(w, leak), *params)


def _reference_backward(grad_spikes, grad_v, h_seq, v0, w, leak, *params):
    return reference.backward(grad_spikes, grad_v, h_seq, v0, _leak_of(w, leak), *params)


def _reference_rate_forward(x, v0, w, leak, *params):
    return reference.rate_forward(x, v0, _leak_of(w, leak), *params)


@torch.library.custom_op("snnrs::neuron_forward", mutates_args=())
def neuron_forward(
    x: Tensor, v0: Tensor, w: Tensor | None, leak: float, decay_input: bool,
    v_threshold: float, v_reset: float | None, detach_reset: bool, surrogate: str,
    alpha: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(spikes [T, *], v_T [*], h_seq [T, *])``; ``h_seq`` (float32 for half inputs) is what
    backward needs."""
    return _forward(_reference_forward, x, v0, w, leak, decay_input, v_threshold, v_reset)


@torch.library.custom_op("snnrs::neuron_backward", mutates_args=())
def neuron_backward(
    grad_spikes: Tensor, grad_v: Tensor | None, h_seq: Tensor, v0: Tensor | None,
    w: Tensor | None, leak: float, decay_input: bool, v_threshold: float,
    v_reset: float | None, detach_reset: bool, surrogate: str, alpha: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(dL/dx [T, *], dL/dv0 [*], dL/dleak [])``; the last only when ``v0`` is given."""
    return _backward(_reference_backward, grad_spikes, grad_v, h_seq, v0, w, leak, decay_input,
                     v_threshold, v_reset, detach_reset, surrogate, alpha)


@torch.library.custom_op("snnrs::neuron_rate_forward", mutates_args=())
def neuron_rate_forward(
    x: Tensor, v0: Tensor, w: Tensor | None, leak: float, decay_input: bool,
    v_threshold: float, v_reset: float | None, detach_reset: bool, surrogate: str,
    alpha: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(spikes [T, *], v_T, rate, eligibility)``; no gradient (rate backprop's spike pass)."""
    return _rate_forward(_reference_rate_forward, x, v0, w, leak, decay_input, v_threshold,
                         v_reset, detach_reset, surrogate, alpha)


# ---------------------------------------------------------------------------------------------
# CPU kernels: Rust writes into outputs that torch allocated (inputs are contiguous already).


def _cpu_args(t: Tensor, w: Tensor | None, leak: float) -> tuple:
    leak = leak if w is None else float(torch.sigmoid(w))
    return _KERNEL_DTYPES[t.dtype], t.shape[0], t[0].numel(), leak


def _rust_forward(x, v0, w, leak, decay_input, v_threshold, v_reset):
    spikes, h_seq = _buffers.empty(x.shape, x.dtype), _buffers.empty(x.shape, x.dtype)
    v = torch.empty_like(v0)
    name, steps, n, leak = _cpu_args(x, w, leak)
    _core.forward(name, steps, n, x.data_ptr(), v0.data_ptr(), spikes.data_ptr(),
                  h_seq.data_ptr(), v.data_ptr(), leak, decay_input, v_threshold, v_reset,
                  torch.get_num_threads())
    return spikes, v, h_seq


def _rust_backward(grad_spikes, grad_v, h_seq, v0, w, leak, decay_input, v_threshold, v_reset,
                   detach_reset, surrogate, alpha):
    grad_x, grad_v0 = _buffers.empty(h_seq.shape, h_seq.dtype), torch.empty_like(h_seq[0])
    name, steps, n, leak = _cpu_args(h_seq, w, leak)
    grad_leak = _core.backward(
        name, steps, n, grad_spikes.data_ptr(), 0 if grad_v is None else grad_v.data_ptr(),
        h_seq.data_ptr(), 0 if v0 is None else v0.data_ptr(), grad_x.data_ptr(),
        grad_v0.data_ptr(), leak, decay_input, v_threshold, v_reset, detach_reset, surrogate,
        alpha, torch.get_num_threads())
    return grad_x, grad_v0, torch.tensor(grad_leak or 0.0, dtype=h_seq.dtype)


def _rust_rate_forward(x, v0, w, leak, decay_input, v_threshold, v_reset, detach_reset,
                       surrogate, alpha):
    spikes = _buffers.empty(x.shape, x.dtype)
    v, rate, elig = (torch.empty_like(v0) for _ in range(3))
    name, steps, n, leak = _cpu_args(x, w, leak)
    _core.rate_forward(name, steps, n, x.data_ptr(), v0.data_ptr(), spikes.data_ptr(),
                       v.data_ptr(), rate.data_ptr(), elig.data_ptr(), leak, decay_input,
                       v_threshold, v_reset, detach_reset, surrogate, alpha,
                       torch.get_num_threads())
    return spikes, v, rate, elig


@neuron_forward.register_kernel("cpu")
def _forward_cpu(x, v0, w, leak, decay_input, v_threshold, v_reset, *_):
    return _forward(_rust_forward, x, v0, w, leak, decay_input, v_threshold, v_reset)


@neuron_backward.register_kernel("cpu")
def _backward_cpu(*args):
    return _backward(_rust_backward, *args)


@neuron_rate_forward.register_kernel("cpu")
def _rate_forward_cpu(*args):
    return _rate_forward(_rust_rate_forward, *args)


# ---------------------------------------------------------------------------------------------
# CUDA kernels for float32 / float16 / bfloat16; float64 keeps the PyTorch twins.


@neuron_forward.register_kernel("cuda")
def _forward_cuda(x, v0, w, leak, decay_input, v_threshold, v_reset, *_):
    if x.dtype not in _cuda.DTYPES:
        return _forward(_reference_forward, x, v0, w, leak, decay_input, v_threshold, v_reset)
    return _forward(_cuda.forward, x, v0, w, leak, decay_input, v_threshold, v_reset,
                    native=True)


@neuron_backward.register_kernel("cuda")
def _backward_cuda(*args):
    if args[0].dtype not in _cuda.DTYPES:
        return _backward(_reference_backward, *args)
    return _backward(_cuda.backward, *args, native=True)


@neuron_rate_forward.register_kernel("cuda")
def _rate_forward_cuda(*args):
    if args[0].dtype not in _cuda.DTYPES:
        return _rate_forward(_reference_rate_forward, *args)
    return _rate_forward(_cuda.rate_forward, *args, native=True)


# ---------------------------------------------------------------------------------------------
# Fake implementations (shapes and dtypes only) and autograd.


@neuron_forward.register_fake
def _forward_fake(x, v0, w, *args):
    h_seq = x.new_empty(x.shape, dtype=_compute_dtype(x))
    return x.new_empty(x.shape), v0.new_empty(v0.shape), h_seq


@neuron_backward.register_fake
def _backward_fake(grad_spikes, grad_v, h_seq, *args):
    out = grad_spikes.dtype
    return (h_seq.new_empty(h_seq.shape, dtype=out), h_seq.new_empty(h_seq.shape[1:], dtype=out),
            h_seq.new_empty(()))


@neuron_rate_forward.register_fake
def _rate_forward_fake(x, v0, w, *args):
    return x.new_empty(x.shape), *(v0.new_empty(v0.shape) for _ in range(3))


def _setup_context(ctx, inputs, output) -> None:
    _, v0, w, *params = inputs
    ctx.mark_non_differentiable(output[2])
    ctx.set_materialize_grads(False)  # unused outputs get no T x N zero gradients
    ctx.save_for_backward(output[2], None if w is None else v0, w)
    ctx.params, ctx.dtype = params, output[0].dtype


def _autograd_backward(ctx, grad_spikes, grad_v, _grad_h):
    h_seq, v0, w = ctx.saved_tensors
    if grad_spikes is None:
        grad_spikes = torch.zeros_like(h_seq, dtype=ctx.dtype)
    grad_x, grad_v0, grad_leak = neuron_backward(grad_spikes, grad_v, h_seq, v0, w, *ctx.params)
    grad_w = None
    if w is not None:
        s = torch.sigmoid(w)
        grad_w = (grad_leak * s * (1 - s)).to(w.dtype)
    return grad_x, grad_v0, grad_w, None, None, None, None, None, None, None


neuron_forward.register_autograd(_autograd_backward, setup_context=_setup_context)


# ---------------------------------------------------------------------------------------------
# Typed wrappers: validate once, then call the op.


class NeuronParams(NamedTuple):
    """Validated neuron parameters, in the order the ops take them (after ``w``)."""

    leak: float
    decay_input: bool
    v_threshold: float
    v_reset: float | None
    detach_reset: bool
    surrogate: str
    alpha: float


def _finite(name: str, value) -> float:
    if isinstance(value, Tensor) or not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a Python number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def tau_to_leak(tau: float) -> float:
    """``1 / tau`` after checking ``tau`` is a finite number > 0."""
    tau = _finite("tau", tau)
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    return 1.0 / tau


def make_params(
    leak: float, decay_input: bool = True, v_threshold: float = 1.0,
    v_reset: float | None = 0.0, detach_reset: bool = False, surrogate: str = "sigmoid",
    alpha: float | None = None,
) -> NeuronParams:
    """Checks every parameter's type and range (ValueError / TypeError naming it)."""
    leak = _finite("leak", leak)
    if leak < 0:
        raise ValueError(f"leak (1/tau) must be >= 0, got {leak}")
    name, alpha = sg.resolve(surrogate, alpha)
    return NeuronParams(leak, bool(decay_input), _finite("v_threshold", v_threshold),
                        None if v_reset is None else _finite("v_reset", v_reset),
                        bool(detach_reset), name, alpha)


def check_input(x_seq: Tensor, v0: "Tensor | float | None", v_rest: float) -> tuple[Tensor, Tensor]:
    """Validates ``x_seq [T, *]`` and returns it with an initial state ``[*]`` of its dtype.

    ``v0=None`` starts at ``v_rest``; a number fills the state with it.
    """
    if not isinstance(x_seq, Tensor):
        raise TypeError(f"x_seq must be a torch.Tensor, got {type(x_seq).__name__}")
    if not x_seq.is_floating_point():
        raise TypeError(f"x_seq must be a floating-point tensor, got dtype {x_seq.dtype}")
    if x_seq.dim() == 0:
        raise ValueError("x_seq must have a leading time dimension [T, ...]; got a scalar")
    rest = x_seq.shape[1:]
    if v0 is None or isinstance(v0, (int, float)):
        fill = v_rest if v0 is None else _finite("v0", v0)
        return x_seq, torch.full(rest, fill, dtype=x_seq.dtype, device=x_seq.device)
    if not isinstance(v0, Tensor):
        raise TypeError(f"v0 must be a tensor, a number or None, got {type(v0).__name__}")
    if v0.device != x_seq.device:
        raise ValueError(f"v0 is on {v0.device} but x_seq is on {x_seq.device}")
    if not v0.is_floating_point():
        raise TypeError(f"v0 must be a floating-point tensor, got dtype {v0.dtype}")
    if v0.shape != rest:
        raise ValueError(
            f"v0 has shape {tuple(v0.shape)} but x_seq {tuple(x_seq.shape)} needs {tuple(rest)}"
            " (a state from another batch shape? reset the neuron first)")
    return x_seq, v0.to(x_seq.dtype)


def _check_w(w: Tensor, x_seq: Tensor) -> Tensor:
    if not isinstance(w, Tensor) or not w.is_floating_point() or w.numel() != 1:
        raise TypeError("w must be a floating-point tensor with one element")
    if w.device != x_seq.device:
        raise ValueError(f"w is on {w.device} but x_seq is on {x_seq.device}")
    # On the CPU only: on a GPU the check would synchronise (and break CUDA graph capture).
    checkable = w.device.type == "cpu" and not torch.compiler.is_compiling()
    if checkable and not torch.isfinite(w).all():
        raise ValueError("PLIF parameter w is not finite")
    return w.reshape(())


def multistep(x_seq: Tensor, v0: "Tensor | float | None", p: NeuronParams,
              w: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Runs validated parameters ``p`` over ``x_seq [T, *]``: ``(spikes [T, *], v_T [*])``."""
    x_seq, v0 = check_input(x_seq, v0, 0.0 if p.v_reset is None else p.v_reset)
    if w is not None:
        w = _check_w(w, x_seq)
    spikes, v, _ = neuron_forward(x_seq, v0, w, *p)
    return spikes, v


class RateOutput(NamedTuple):
    spikes: Tensor
    v: Tensor
    rate: Tensor
    eligibility: Tensor


def rate(x_seq: Tensor, v0: "Tensor | float | None", p: NeuronParams,
         w: Tensor | None = None) -> RateOutput:
    """Rate-mode spike pass (no gradient): spikes ``[T, *]``, then ``v_T``, ``rate`` and
    ``eligibility`` (each ``[*]``); see NEURONS.md, rate-based mode."""
    x_seq, v0 = check_input(x_seq, v0, 0.0 if p.v_reset is None else p.v_reset)
    if w is not None:
        w = _check_w(w, x_seq)
    with torch.no_grad():
        return RateOutput(*neuron_rate_forward(x_seq, v0, w, *p))


def lif(
    x_seq: Tensor, v0: "Tensor | float | None" = None, tau: float = 2.0,
    v_threshold: float = 1.0, v_reset: float | None = 0.0, decay_input: bool = True,
    detach_reset: bool = False, surrogate: str = "sigmoid", alpha: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Multi-step leaky integrate-and-fire.

    Args:
        x_seq: input current ``[T, *]``. v0: initial membrane ``[*]`` (default ``v_reset``, or
        0 for soft reset). Others as :class:`snnrs.nn.LIF`.
    Returns:
        spikes ``[T, *]`` in ``x_seq``'s dtype and the final membrane ``[*]``.

    Example:
        >>> spikes, v = lif(torch.randn(4, 2, 3), tau=2.0, surrogate="atan")
    """
    p = make_params(tau_to_leak(tau), decay_input, v_threshold, v_reset, detach_reset,
                    surrogate, alpha)
    return multistep(x_seq, v0, p)


def if_(
    x_seq: Tensor, v0: "Tensor | float | None" = None, v_threshold: float = 1.0,
    v_reset: float | None = 0.0, detach_reset: bool = False, surrogate: str = "sigmoid",
    alpha: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Multi-step integrate-and-fire (``H = V + x``); shapes as :func:`lif`."""
    p = make_params(0.0, False, v_threshold, v_reset, detach_reset, surrogate, alpha)
    return multistep(x_seq, v0, p)


def plif(
    x_seq: Tensor, w: Tensor, v0: "Tensor | float | None" = None, v_threshold: float = 1.0,
    v_reset: float | None = 0.0, decay_input: bool = True, detach_reset: bool = False,
    surrogate: str = "sigmoid", alpha: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Multi-step parametric LIF with ``1/tau = sigmoid(w)``; ``w`` (one element) gets a gradient.

    Example:
        >>> w = torch.tensor(0.0, requires_grad=True)       # tau = 2
        >>> spikes, v = plif(torch.randn(4, 5), w)
    """
    p = make_params(0.0, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha)
    return multistep(x_seq, v0, p, w)
