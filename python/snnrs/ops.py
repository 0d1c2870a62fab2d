"""Multi-step neuron ops: ``torch.library`` custom ops, their contract and their backends.

Every op has a fake (meta) implementation and registered autograd, so it runs in eager mode,
under ``torch.compile(fullgraph=True)``, in CUDA graphs and in ``torch.library.opcheck``. Every
call, eager or traced, is first checked against the contract of :mod:`snnrs._contract`: a
mis-shaped, mistyped or misplaced argument raises a ValueError or TypeError naming it. The op
then runs on the backend registered for the tensors' device (:func:`register_backend`): the
Rust kernels on the CPU (float16 / bfloat16 compute in float32), the CUDA kernels for float32,
float16 and bfloat16 CUDA tensors (they read and write the tensor's own dtype and compute in
float32), and the pure-PyTorch twins of :mod:`snnrs.backends.reference` for float64 CUDA tensors
and other devices.

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
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from . import _contract
from ._buffers import empty_cache, set_cache_limit
from ._contract import NeuronParams, compute_dtype, finite, make_params
from ._threads import use_torch_threads
from .backends import Backend
from .backends import cpu as _cpu
from .backends import cuda as _cuda
from .backends import reference as _reference

__all__ = [
    "NeuronParams",
    "RateOutput",
    "backend_for",
    "empty_cache",
    "finite",
    "if_",
    "lif",
    "make_params",
    "multistep",
    "neuron_backward",
    "neuron_forward",
    "neuron_rate_forward",
    "pack_spikes",
    "plif",
    "rate",
    "register_backend",
    "set_cache_limit",
    "tau_to_leak",
    "unpack_spikes",
    "use_torch_threads",
]

# ---------------------------------------------------------------------------------------------
# The device-to-backend table.

_BACKENDS: dict[str, Backend] = {"cpu": _cpu, "cuda": _cuda}
_CHOICES: dict[tuple[str, torch.dtype], tuple[Backend, torch.dtype]] = {}  # backend_for's


def register_backend(device_type: str, backend: Backend | None) -> Backend | None:
    """Runs the ops on ``device_type`` tensors with ``backend`` (None: the pure-PyTorch twins);
    returns the backend it replaces.

    A backend is a module (or any object) with ``DTYPES`` and the three functions described in
    :mod:`snnrs.backends`; dtypes it lacks fall back to the pure-PyTorch twins.

    Example:
        >>> from snnrs.backends import reference
        >>> previous = register_backend("cpu", reference)    # the Rust kernels step aside
        >>> _ = register_backend("cpu", previous)            # and come back
    """
    if not isinstance(device_type, str) or not device_type:
        raise TypeError(f"device_type must be a device type name such as 'cuda', got "
                        f"{device_type!r}")
    if backend is not None:
        missing = [a for a in ("DTYPES", "forward", "backward", "rate_forward")
                   if not hasattr(backend, a)]
        if missing:
            raise TypeError(f"a backend needs {', '.join(missing)}; see snnrs.backends")
    previous = _BACKENDS.pop(device_type, None)
    if backend is not None:
        _BACKENDS[device_type] = backend
    _CHOICES.clear()
    return previous


def backend_for(device: torch.device, dtype: torch.dtype) -> tuple[Backend, torch.dtype]:
    """The backend the ops use for tensors of ``dtype`` on ``device``, and the dtype it runs in
    (the tensors' own, or float32 for half types it lacks).

    Example:
        >>> backend_for(torch.device("cpu"), torch.bfloat16)[1]
        torch.float32
    """
    key = (device.type, dtype)
    choice = _CHOICES.get(key)
    if choice is None:
        backend = _BACKENDS.get(device.type, _reference)
        fits = [d for d in (dtype, compute_dtype(dtype)) if d in backend.DTYPES]
        choice = _CHOICES[key] = (backend, fits[0]) if fits else (_reference, compute_dtype(dtype))
    return choice


# ---------------------------------------------------------------------------------------------
# The custom ops. `w` is PLIF's parameter (leak = sigmoid(w)); when None, `leak` is used. Each
# op checks its arguments, casts and lays out its inputs once, then runs its device's backend.


def _prep(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(dtype).contiguous()


def _plif(w: Tensor | None) -> Tensor | None:
    return w if w is None or w.dim() == 0 else w.reshape(())


@torch.library.custom_op("snnrs::neuron_forward", mutates_args=())
def neuron_forward(
    x: Tensor, v0: Tensor, w: Tensor | None, leak: float, decay_input: bool,
    v_threshold: float, v_reset: float | None, detach_reset: bool, surrogate: str,
    alpha: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(spikes [T, *], v_T [*], h_seq [T, *])``; ``h_seq`` (float32 for half inputs) is what
    backward needs."""
    p = _contract.check_forward(x, v0, w, leak, decay_input, v_threshold, v_reset,
                                detach_reset, surrogate, alpha)
    if x.numel() == 0:  # no steps or no neurons
        return x.new_empty(x.shape), v0.clone(), x.new_empty(x.shape, dtype=compute_dtype(x.dtype))
    backend, run_in = backend_for(x.device, x.dtype)
    spikes, v, h_seq = backend.forward(_prep(x, run_in), _prep(v0, run_in), _plif(w), p)
    return spikes.to(x.dtype), v.to(x.dtype), h_seq


@torch.library.custom_op("snnrs::neuron_backward", mutates_args=())
def neuron_backward(
    grad_spikes: Tensor, grad_v: Tensor | None, h_seq: Tensor, v0: Tensor | None,
    w: Tensor | None, leak: float, decay_input: bool, v_threshold: float,
    v_reset: float | None, detach_reset: bool, surrogate: str, alpha: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(dL/dx [T, *], dL/dv0 [*], dL/dleak [])``; the last only when ``v0`` is given."""
    p = _contract.check_backward(grad_spikes, grad_v, h_seq, v0, w, leak, decay_input,
                                 v_threshold, v_reset, detach_reset, surrogate, alpha)
    out = grad_spikes.dtype
    if h_seq.numel() == 0:
        grad_v0 = h_seq.new_zeros(h_seq.shape[1:], dtype=out) if grad_v is None else grad_v.clone()
        return h_seq.new_zeros(h_seq.shape, dtype=out), grad_v0, h_seq.new_zeros(())
    backend, run_in = backend_for(h_seq.device, out)
    grad_x, grad_v0, grad_leak = backend.backward(
        _prep(grad_spikes, run_in), _prep(grad_v, run_in), h_seq.contiguous(),
        _prep(v0, run_in), _plif(w), p)
    return grad_x.to(out), grad_v0.to(out), grad_leak


@torch.library.custom_op("snnrs::neuron_rate_forward", mutates_args=())
def neuron_rate_forward(
    x: Tensor, v0: Tensor, w: Tensor | None, leak: float, decay_input: bool,
    v_threshold: float, v_reset: float | None, detach_reset: bool, surrogate: str,
    alpha: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(spikes [T, *], v_T, rate, eligibility)``; no gradient (rate backprop's spike pass)."""
    p = _contract.check_forward(x, v0, w, leak, decay_input, v_threshold, v_reset,
                                detach_reset, surrogate, alpha)
    if x.numel() == 0:  # no steps or no neurons
        return x.new_empty(x.shape), v0.clone(), v0.new_zeros(v0.shape), v0.new_zeros(v0.shape)
    backend, run_in = backend_for(x.device, x.dtype)
    out = backend.rate_forward(_prep(x, run_in), _prep(v0, run_in), _plif(w), p)
    return tuple(t.to(x.dtype) for t in out)


# ---------------------------------------------------------------------------------------------
# Fake implementations (the same checks, then shapes and dtypes only) and autograd.


@neuron_forward.register_fake
def _forward_fake(x, v0, w, *params):
    _contract.check_forward(x, v0, w, *params)
    h_seq = x.new_empty(x.shape, dtype=compute_dtype(x.dtype))
    return x.new_empty(x.shape), v0.new_empty(v0.shape), h_seq


@neuron_backward.register_fake
def _backward_fake(grad_spikes, grad_v, h_seq, v0, w, *params):
    _contract.check_backward(grad_spikes, grad_v, h_seq, v0, w, *params)
    out = grad_spikes.dtype
    return (h_seq.new_empty(h_seq.shape, dtype=out), h_seq.new_empty(h_seq.shape[1:], dtype=out),
            h_seq.new_empty(()))


@neuron_rate_forward.register_fake
def _rate_forward_fake(x, v0, w, *params):
    _contract.check_forward(x, v0, w, *params)
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
# Typed wrappers: convert the conveniences (a number or None for v0, any w shape), then call
# the op, which checks the rest.


def tau_to_leak(tau: float) -> float:
    """The ops' ``leak``, ``1 / tau``, after checking ``tau`` is a time constant (finite, >= 1;
    see :func:`snnrs._contract.time_constant`).

    Example:
        >>> tau_to_leak(4.0)
        0.25
    """
    return 1.0 / _contract.time_constant("tau", tau)


def check_input(x_seq: Tensor, v0: "Tensor | float | None", v_rest: float) -> tuple[Tensor, Tensor]:
    """Validates ``x_seq [T, *]`` and returns it with an initial state ``[*]`` of its dtype.

    ``v0=None`` starts at ``v_rest``; a number fills the state with it; a tensor of another
    floating dtype is cast.
    """
    x_seq = _contract.sequence("x_seq", x_seq)
    rest = x_seq.shape[1:]
    if v0 is None or isinstance(v0, (int, float)):
        fill = v_rest if v0 is None else finite("v0", v0)
        return x_seq, torch.full(rest, fill, dtype=x_seq.dtype, device=x_seq.device)
    if not isinstance(v0, Tensor):
        raise TypeError(f"v0 must be a tensor, a number or None, got {type(v0).__name__}")
    v0 = _contract.dense_float("v0", v0, x_seq.device, "x_seq")
    if v0.shape != rest:
        raise ValueError(
            f"v0 has shape {tuple(v0.shape)} but x_seq {tuple(x_seq.shape)} needs {tuple(rest)}"
            " (a state from another batch shape? reset the neuron first)")
    return x_seq, v0.to(x_seq.dtype)


def _check_w(w: Tensor, x_seq: Tensor) -> Tensor:
    w = _contract.plif_w(w, x_seq.device, "x_seq")
    # On the CPU only: on a GPU the check would synchronise (and break CUDA graph capture).
    checkable = w.device.type == "cpu" and not torch.compiler.is_compiling()
    if checkable and not torch.isfinite(w).all():
        raise ValueError("PLIF parameter w is not finite")
    return w


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
    ``eligibility`` (each ``[*]``); see docs/neurons.md, rate-based mode."""
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
        x_seq: input current ``[T, *]``.
        v0: initial membrane ``[*]`` (default ``v_reset``, or 0 for soft reset).

    The other parameters are those of :class:`snnrs.nn.LIF`.

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


# ---------------------------------------------------------------------------------------------
# Spikes at one bit per element, for saved-tensor hooks: a layer whose input is spikes keeps the
# bits instead of the float tensor. Exact both ways; anything but +0.0 / +1.0 is refused.

_SPIKE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _spike_backend(device: torch.device):
    """The backend with spike packing for ``device``, else the pure-PyTorch twins."""
    backend = _BACKENDS.get(device.type, _reference)
    if backend is _cuda and not _cuda.built():
        return _reference
    if hasattr(backend, "pack_spikes") and hasattr(backend, "unpack_spikes"):
        return backend
    return _reference


def _spike_dtype(name: str, dtype: object) -> torch.dtype:
    if dtype not in _SPIKE_DTYPES:
        raise TypeError(f"{name} must be float16, bfloat16, float32 or float64, got {dtype}")
    return dtype


def pack_spikes(x: Tensor) -> Tensor | None:
    """Packs a spike tensor at one bit per element, or returns None if it is not one.

    Args:
        x: float16, bfloat16, float32 or float64, any shape, contiguous or not, on any device.
    Returns:
        ``ceil(numel / 8)`` uint8 ``[ceil(numel / 8)]`` on ``x``'s device: element ``k`` of
        ``x.reshape(-1)`` is bit ``k % 8`` (least significant first) of byte ``k // 8``, and
        the padding bits of the last byte are 0. None when some element's bit pattern is not
        exactly +0.0's or +1.0's (-0.0, NaN, 0.5, 2.0, inf...): nothing is packed then. An
        empty ``x`` gives an empty tensor. On CUDA, one synchronisation (the verdict is read
        back). TypeError for anything but a tensor of those dtypes.

    Example:
        >>> pack_spikes(torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0])).tolist()
        [13, 1]
        >>> pack_spikes(torch.tensor([1.0, 0.5])) is None
        True
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    _spike_dtype("x", x.dtype)
    if x.layout != torch.strided:
        raise TypeError(f"x must be a dense (strided) tensor, got layout {x.layout}")
    x = x.detach()
    if x.numel() == 0:
        return torch.empty(0, dtype=torch.uint8, device=x.device)
    return _spike_backend(x.device).pack_spikes(x.contiguous())


def _spike_shape(shape: Sequence[int]) -> tuple[int, ...]:
    if isinstance(shape, (int, Tensor)) or not isinstance(shape, Sequence):
        raise TypeError(f"shape must be a sequence of ints, got {type(shape).__name__}")
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise TypeError(f"shape must be a sequence of ints, got {tuple(shape)!r}")
    if any(d < 0 for d in shape):
        raise ValueError(f"shape must have no negative dimension, got {tuple(shape)}")
    return tuple(shape)


def unpack_spikes(bits: Tensor, shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    """The spike tensor that :func:`pack_spikes` packed into ``bits``, exactly.

    Args:
        bits: uint8 ``[ceil(prod(shape) / 8)]``, padding bits 0.
        shape: the tensor's shape.
        dtype: float16, bfloat16, float32 or float64.
    Returns:
        a contiguous tensor ``shape`` of ``dtype`` on ``bits``' device: set bit -> 1.0, clear
        bit -> 0.0. TypeError when ``bits`` is not a uint8 tensor, ``shape`` not ints or
        ``dtype`` not one of those; ValueError when ``bits`` is not 1-D, has the wrong number
        of bytes, or a padding bit set (on CUDA, checking it reads back one byte).

    Example:
        >>> unpack_spikes(torch.tensor([13, 1], dtype=torch.uint8), (3, 3), torch.float32)
        tensor([[1., 0., 1.],
                [1., 0., 0.],
                [0., 0., 1.]])
    """
    if not isinstance(bits, Tensor):
        raise TypeError(f"bits must be a tensor, got {type(bits).__name__}")
    if bits.dtype != torch.uint8:
        raise TypeError(f"bits must be uint8 (packed spikes), got {bits.dtype}")
    shape = _spike_shape(shape)
    dtype = _spike_dtype("dtype", dtype)
    if bits.dim() != 1:
        raise ValueError(f"bits must be 1-D, got shape {tuple(bits.shape)}")
    n = math.prod(shape)
    need = (n + 7) // 8
    if bits.numel() != need:
        raise ValueError(f"bits has {bits.numel()} bytes, but shape {shape} ({n} elements) "
                         f"needs {need}")
    bits = bits.detach()
    if n % 8 and int(bits[-1]) >> (n % 8):
        raise ValueError(f"bits has padding bits set: its last byte is {int(bits[-1]):#04x}, "
                         f"but only its low {n % 8} bit(s) hold elements")
    if n == 0:
        return torch.empty(shape, dtype=dtype, device=bits.device)
    return _spike_backend(bits.device).unpack_spikes(bits.contiguous(), n, dtype).view(shape)
