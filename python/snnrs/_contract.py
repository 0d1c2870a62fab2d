"""The contract of the neuron ops: what every argument must be, checked in one place.

The custom ops of :mod:`snnrs.ops` are public (``torch.ops.snnrs.*``), so anyone's code may call
them. Their eager implementation (which every backend runs behind) and their fake (meta)
implementation call the checks here before anything is allocated or computed, so a mis-shaped,
mistyped or misplaced argument is a ``ValueError`` or ``TypeError`` naming it, what was
expected and what was given.
Conditions on symbolic sizes (under ``torch.compile``) go through ``torch._check_with``, so they
trace as guards or runtime asserts instead of breaking the graph; torch reports a failed check
during compilation inside its own ``TorchRuntimeError``, with this message.

The contract, with ``T`` steps of ``N...`` neurons (``x [T, N...]``):

=============== ======================================================================
``x``           float16, bfloat16, float32 or float64; at least one (time) dimension
``v0``          ``x``'s dtype, shape ``N...`` (one step of ``x``)
``w``           None (LIF, IF) or PLIF's parameter: any floating dtype, one element
``grad_spikes`` a float dtype whose compute dtype is ``h_seq``'s; ``h_seq``'s shape
``h_seq``       float32 or float64 (float32 for half inputs), at least one dimension
``grad_v``      None or ``grad_spikes``' dtype, shape ``N...``
``v0`` (bwd)    None or ``grad_spikes``' dtype, shape ``N...``
scalars         ``leak`` (``1/tau``) in [0, 1] (see :func:`leak_rate`); ``v_threshold``,
                ``v_reset`` (or None) and ``alpha > 0`` finite; ``surrogate`` one of
                :data:`snnrs.surrogate.NAMES`
=============== ======================================================================

Every tensor is dense (strided) and on ``x``'s (``h_seq``'s) device; any strides are accepted.

Example:
    >>> x, v0 = torch.zeros(4, 3), torch.zeros(2)
    >>> check_forward(x, v0, None, 0.5, True, 1.0, 0.0, False, "sigmoid", 4.0)
    Traceback (most recent call last):
    ...
    ValueError: v0 has shape (2,), expected (3,): one step of x, whose shape is (4, 3)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from . import surrogate as sg

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
"""The dtypes the ops accept; half types compute (and keep ``h_seq``) in float32."""

MAX_ELEMENTS = 1 << 60
"""The most elements one tensor may have: every byte count of it fits a signed 64-bit size."""


class NeuronParams(NamedTuple):
    """Validated neuron parameters, in the order the ops take them (after ``w``)."""

    leak: float
    decay_input: bool
    v_threshold: float
    v_reset: float | None
    detach_reset: bool
    surrogate: str
    alpha: float


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16 / bfloat16 compute (and keep ``h_seq``) in float32; float32 / float64 as they are.

    Example:
        >>> compute_dtype(torch.bfloat16)
        torch.float32
    """
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def number(name: str, value: object) -> float:
    """``value`` as a float, after checking it is a Python number (not a bool or tensor)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a Python number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:  # an int past float's range
        raise ValueError(f"{name} is too large for a float (an integer of "
                         f"{value.bit_length()} bits)") from None


def finite(name: str, value: object) -> float:
    """``value`` as a float, after checking it is a finite Python number (not a bool or tensor)."""
    value = number(name, value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


# The physical parameters of a neuron, each checked for meaning by one rule that every entry
# point (ops, modules, specs, NIR import) calls. The charge (docs/neurons.md) keeps the share
# ``1 - leak`` of ``v - v_rest`` each step, so ``leak = 1/tau`` in [0, 1] describes a neuron:
# 1 forgets the state every step, 0 never leaks; anything else grows or flips the state.


def leak_rate(name: str, value: object) -> float:
    """The ops' ``leak`` (``1/tau``, the share of ``v - v_rest`` lost per step), in [0, 1].

    Example:
        >>> leak_rate("leak", 1.5)
        Traceback (most recent call last):
        ...
        ValueError: leak must be in [0, 1] (1/tau: the share of v - v_rest lost per step, ...
    """
    value = number(name, value)
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise ValueError(f"{name} must be in [0, 1] (1/tau: the share of v - v_rest lost per "
                         f"step, with tau >= 1); got {value}")
    return value


def time_constant(name: str, value: object) -> float:
    """A membrane time constant in steps: finite and >= 1 (so ``1/tau`` is a :func:`leak_rate`;
    1 forgets the state every step).

    Example:
        >>> 1 / time_constant("tau", 4)
        0.25
    """
    value = number(name, value)
    if not (math.isfinite(value) and value >= 1.0):
        raise ValueError(f"{name} must be a finite number >= 1 (a time constant in steps: a "
                         f"decay of at most one step); got {value}")
    return value


def leak_factor(name: str, value: object) -> float:
    """snnTorch's ``beta`` in ``V <- beta * V + X`` (no input decay), in [0, 1]; its
    :func:`leak_rate` is ``1 - beta``.

    Example:
        >>> 1 - leak_factor("beta", 0.75)
        0.25
    """
    value = number(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (the share of v - v_rest kept per step, "
                         f"V <- {name} * V + X: 0 forgets, 1 never leaks); got {value}")
    return value


def initial_time_constant(name: str, value: object) -> float:
    """PLIF's initial time constant: finite and > 1, so that its ``w = -ln(tau - 1)`` is finite.

    Example:
        >>> initial_time_constant("init_tau", 2.0)
        2.0
    """
    value = number(name, value)
    if not (math.isfinite(value) and value > 1.0):
        raise ValueError(f"{name} must be a finite number > 1 (PLIF starts at "
                         f"w = -ln({name} - 1), which must be finite); got {value}")
    return value


def make_params(
    leak: float, decay_input: bool = True, v_threshold: float = 1.0,
    v_reset: float | None = 0.0, detach_reset: bool = False, surrogate: str = "sigmoid",
    alpha: float | None = None,
) -> NeuronParams:
    """Checks every parameter's type and range (ValueError / TypeError naming it).

    Example:
        >>> make_params(0.5, surrogate="atan").alpha
        2.0
    """
    leak = leak_rate("leak", leak)
    name, alpha = sg.resolve(surrogate, None if alpha is None else finite("alpha", alpha))
    return NeuronParams(leak, bool(decay_input), finite("v_threshold", v_threshold),
                        None if v_reset is None else finite("v_reset", v_reset),
                        bool(detach_reset), name, alpha)


@functools.lru_cache(maxsize=1024)
def _params(*params: object) -> NeuronParams:
    return make_params(*params)  # type: ignore[arg-type]


def dense_float(name: str, t: object, device: torch.device | None = None, device_of: str = ""
                ) -> Tensor:
    """Checks ``t`` is a dense floating-point tensor (on ``device``, ``device_of``'s, if given)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.layout != torch.strided:
        raise TypeError(f"{name} must be a dense tensor, got layout {t.layout}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating-point tensor (float16, bfloat16, float32 or "
                        f"float64), got {t.dtype}")
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device} but {device_of} is on {device}: all tensors "
                         "must be on one device")
    return t


def _size(shape: Sequence) -> tuple[int, ...]:
    """Sizes for a message (symbolic ones as their values: only formatted when a check fails)."""
    return tuple(int(d) for d in shape)


def sequence(name: str, t: object) -> Tensor:
    """Checks ``t`` is a dense float tensor ``[T, N...]``."""
    t = dense_float(name, t)
    if t.dim() == 0:
        raise ValueError(f"{name} must have a leading time dimension [T, ...], got a scalar")
    return t


def _require(cond: bool | torch.SymBool, message: Callable[[], str]) -> None:
    """Raises ``ValueError(message())`` unless ``cond``. A plain bool (eager sizes) is decided
    here; a symbolic one (sizes under ``torch.compile``) goes through ``torch._check_with``,
    which records it as a guard or runtime assert instead of specialising on its value."""
    if cond is True:
        return
    if cond is False:
        raise ValueError(message())
    torch._check_with(ValueError, cond, message)


def _require_shape(t: Tensor, shape: Sequence, of: Tensor, message: Callable[[], str]) -> None:
    """Raises ``ValueError(message())`` unless ``t`` has ``shape`` (derived from ``of``)."""
    if not (t._has_symbolic_sizes_strides or of._has_symbolic_sizes_strides):
        if t.shape != shape:  # eager: plain integers, one comparison
            raise ValueError(message())
        return
    _require(t.dim() == len(shape), message)
    for got, want in zip(t.shape, shape, strict=True):
        _require(got == want, message)


def _not_too_large(name: str, t: Tensor) -> None:
    _require(t.numel() <= MAX_ELEMENTS,
             lambda: f"{name} has {t.numel()} elements, more than {MAX_ELEMENTS}")


def state(name: str, t: object, seq_name: str, seq: Tensor, like_name: str, like: Tensor
          ) -> Tensor:
    """Checks ``t`` is one step ``[N...]`` of ``seq``, on its device, in ``like``'s dtype."""
    t = dense_float(name, t, seq.device, seq_name)
    if t.dtype != like.dtype:
        raise TypeError(f"{name} is {t.dtype}, expected {like.dtype} like {like_name}")
    expected = seq.shape[1:]

    def message() -> str:
        return (f"{name} has shape {_size(t.shape)}, expected {_size(expected)}: one step of "
                f"{seq_name}, whose shape is {_size(seq.shape)}")

    _require_shape(t, expected, seq, message)
    return t


def plif_w(w: object, device: torch.device, device_of: str) -> Tensor | None:
    """Checks PLIF's parameter: None, or a one-element float tensor on ``device_of``'s device."""
    if w is None:
        return None
    w = dense_float("w", w, device, device_of)
    if w.numel() != 1:
        raise ValueError(f"w (PLIF's parameter) must have one element, got shape {_size(w.shape)}")
    return w


def check_forward(x: Tensor, v0: Tensor, w: Tensor | None, *params: object) -> NeuronParams:
    """The contract of ``neuron_forward`` and ``neuron_rate_forward``; returns the parameters."""
    x = sequence("x", x)
    _not_too_large("x", x)
    state("v0", v0, "x", x, "x", x)
    plif_w(w, x.device, "x")
    return _params(*params)


def check_backward(grad_spikes: Tensor, grad_v: Tensor | None, h_seq: Tensor, v0: Tensor | None,
                   w: Tensor | None, *params: object) -> NeuronParams:
    """The contract of ``neuron_backward``; returns the parameters."""
    h_seq = sequence("h_seq", h_seq)
    _not_too_large("h_seq", h_seq)
    if h_seq.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"h_seq must be float32 or float64 (what the forward saves), got "
                        f"{h_seq.dtype}")
    grad_spikes = dense_float("grad_spikes", grad_spikes, h_seq.device, "h_seq")
    if compute_dtype(grad_spikes.dtype) != h_seq.dtype:
        raise TypeError(f"grad_spikes is {grad_spikes.dtype} but h_seq is {h_seq.dtype}; the "
                        f"forward of a {grad_spikes.dtype} input saves "
                        f"{compute_dtype(grad_spikes.dtype)}")

    def message() -> str:
        return (f"grad_spikes has shape {_size(grad_spikes.shape)}, expected "
                f"{_size(h_seq.shape)} (the shape of h_seq)")

    _require_shape(grad_spikes, h_seq.shape, h_seq, message)
    for name, t in (("grad_v", grad_v), ("v0", v0)):
        if t is not None:
            state(name, t, "h_seq", h_seq, "grad_spikes", grad_spikes)
    plif_w(w, h_seq.device, "h_seq")
    p = _params(*params)
    if v0 is not None and w is None and p.decay_input and p.leak == 0:
        raise ValueError("the leak gradient (v0 given) with decay_input divides by leak, which "
                         "must then be > 0; got leak 0.0")
    return p
