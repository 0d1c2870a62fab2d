"""Torch modules for NIR nodes: :func:`build` makes one from a node, ``dt`` and a dtype.

Stateless nodes (Affine, Linear, Conv1d/2d, pooling, Flatten, Scale, Threshold) take one
step's batch ``[N, *sample]``. Neurons are :class:`Stateful`: ``forward`` takes a sequence
``[T, B, *sample]``, ``step`` one step ``[B, *sample]`` with an explicit state. A neuron node
with uniform parameters becomes an ordinary :mod:`snnrs.nn` module of the family that reads its
type (:func:`snnrs.nn.family.nir_readers`: IF, LIF, CubaLIF, LI, I), with its input scaled
first (:class:`Gained`) when its ``r`` is not one the family's charge writes; every other neuron
(CubaLI, per-neuron parameters, ``v_leak != v_reset``) runs NIR's Euler step in PyTorch
(:class:`EulerNeuron`). Spikes take snnrs's surrogate gradient, so
an imported graph trains.

Example::

    m = build("lif", nir.LIF(tau=np.full(3, 2e-3), r=np.ones(3), v_leak=np.zeros(3),
                             v_threshold=np.ones(3), v_reset=np.zeros(3)), 1e-3, torch.float32)
    m                                     # LIF(tau=2.0, ...): snnrs.nn's own, on its kernel
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import surrogate as sg
from .._contract import compute_dtype, leak_rate
from ..nn import AvgPool2d, BaseNode, nir_form
from ..nn.family import nir_readers
from ._lib import require

#: The node types :func:`build` makes modules for.
SUPPORTED = ("Affine", "Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Scale",
             "Threshold", "IF", "LIF", "LI", "I", "CubaLIF", "CubaLI")


class Stateful(nn.Module):
    """A node with state: ``forward(x_seq [T, B, *]) -> [T, B, *]`` from rest, or
    ``step(x [B, *], state) -> (y [B, *], state)`` (``state=None`` at the first step)."""

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError

    def forward(self, x_seq: Tensor) -> Tensor:
        state, out = None, []
        for x in x_seq:
            y, state = self.step(x, state)
            out.append(y)
        return torch.stack(out)

    def check(self, shape: tuple[int, ...]) -> None:
        """Raises a ValueError unless the node's parameters fit a per-sample ``shape``."""


class _Spiking:
    """The spike of a node: ``v > v_threshold`` (NIR's rule) or ``v >= v_threshold``
    (snnrs's, where the graph's metadata says so), with a surrogate gradient."""

    def _spike(self, u: Tensor) -> Tensor:
        if self.strict:
            return 1 - sg.heaviside(-u, self.surrogate, self.alpha)
        return sg.heaviside(u, self.surrogate, self.alpha)


class Gained(Stateful):
    """An snnrs neuron whose input is multiplied by ``gain`` first: a NIR neuron whose ``r``
    (or ``w_in``) is not one the family's charge writes (see :mod:`snnrs.nn.nir_form`)."""

    def __init__(self, neuron: BaseNode, gain: float) -> None:
        super().__init__()
        self.neuron, self.gain = neuron, gain

    def forward(self, x_seq: Tensor) -> Tensor:
        return self.neuron.simulate(x_seq * self.gain)[0]

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        out, state = self.neuron.simulate((x * self.gain).unsqueeze(0), state)
        return out[0], state

    def extra_repr(self) -> str:
        return f"gain={self.gain}"


class EulerNeuron(_Spiking, Stateful):
    """NIR's LIF, IF, LI, I, CubaLIF and CubaLI, one forward-Euler step of ``dt`` at a time::

        synapse (Cuba*):  i <- i + (dt / tau_syn) * (-i + w_in * x);  x <- i
        membrane:         v <- v + (dt / tau) * ((v_leak - v) + r * x)    (LIF, LI, Cuba*)
                          v <- v + (dt * r) * x                           (IF, I)
        firing (*IF):     s = [v > v_threshold];  v <- v * (1 - s) + v_reset * s;  output s
                          (LI, I, CubaLI output v)

    The state starts at ``i = 0`` and ``v = v_leak`` (``v_reset`` for IF, 0 for I).
    Parameters are per neuron (any shape that broadcasts to one sample's); each ``dt / tau``
    is computed once, in float64, and kept as the buffer ``leak`` (``leak_mem``, ``leak_syn``).
    """

    def __init__(self, kind: str, params: dict[str, np.ndarray], dt: float, dtype: torch.dtype,
                 strict: bool, surrogate: str, alpha: float, detach_reset: bool) -> None:
        super().__init__()
        self.kind, self.dt = kind, dt
        self.synapse = kind.startswith("Cuba")
        self.leaky = kind not in ("IF", "I")
        self.fires = kind.endswith("IF")
        self.strict, self.surrogate, self.alpha = strict, surrogate, alpha
        self.detach_reset = detach_reset
        self.shapes = {k: v.shape for k, v in params.items()}
        for name, value in params.items():
            if name.startswith("tau"):
                name, value = "leak" + name[3:], dt / value
            self.register_buffer(name, torch.as_tensor(value, dtype=dtype))

    def check(self, shape: tuple[int, ...]) -> None:
        for name, s in self.shapes.items():
            if s not in ((), shape):
                raise ValueError(f"its {name} has shape {s}, its input {shape}")

    def _rest(self, x: Tensor) -> Tensor:
        if self.leaky:
            return torch.zeros_like(x) + self.v_leak
        if self.fires:
            return torch.zeros_like(x) + self.v_reset
        return torch.zeros_like(x)

    def step(self, x: Tensor, state: tuple[Tensor | None, Tensor] | None
             ) -> tuple[Tensor, tuple[Tensor | None, Tensor]]:
        i, v = state if state is not None else (
            torch.zeros_like(x) if self.synapse else None, self._rest(x))
        if self.synapse:
            i = i + self.leak_syn * (-i + self.w_in * x)
            x = i
        if self.leaky:
            leak = self.leak_mem if self.synapse else self.leak
            v = v + leak * ((self.v_leak - v) + self.r * x)
        else:
            v = v + (self.dt * self.r) * x
        if not self.fires:
            return v, (i, v)
        s = self._spike(v - self.v_threshold)
        k = s.detach() if self.detach_reset else s
        return s, (i, v * (1 - k) + self.v_reset * k)

    def extra_repr(self) -> str:
        rule = nir_form.FIRES_ABOVE if self.strict else nir_form.FIRES_AT
        return f"{self.kind}, dt={self.dt}, fires at {rule}" if self.fires else \
            f"{self.kind}, dt={self.dt}"


class SumPool2d(nn.Module):
    """NIR's SumPool2d: the sum over each window (zero padding)."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int]) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel, self.stride, self.padding, divisor_override=1)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding={self.padding}"


class Flatten(nn.Module):
    """NIR's Flatten: ``start_dim`` .. ``end_dim`` of one sample's shape (batch excluded)."""

    def __init__(self, start_dim: int, end_dim: int) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        def torch_dim(d: int) -> int:
            return d + 1 if d >= 0 else d
        return x.flatten(torch_dim(self.start_dim), torch_dim(self.end_dim))

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Scale(nn.Module):
    """NIR's Scale: ``x * scale``, elementwise."""

    def __init__(self, scale: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class Threshold(_Spiking, nn.Module):
    """NIR's Threshold: ``[x > threshold]`` (stateless), with a surrogate gradient."""

    def __init__(self, threshold: Tensor, strict: bool, surrogate: str, alpha: float) -> None:
        super().__init__()
        self.register_buffer("threshold", threshold)
        self.strict, self.surrogate, self.alpha = strict, surrogate, alpha

    def forward(self, x: Tensor) -> Tensor:
        return self._spike(x - self.threshold)


def build(name: str, node: Any, dt: float, dtype: torch.dtype) -> nn.Module:
    """The module for NIR ``node`` (called ``name``); a ValueError names a type or parameter
    snnrs cannot run."""
    kind = type(node).__name__
    nir = require()
    if kind not in SUPPORTED or not isinstance(node, getattr(nir, kind)):
        raise ValueError(f"node {name!r} is a {kind}, which snnrs.nir.load cannot run; it runs "
                         f"{', '.join(SUPPORTED)} (and nested graphs)")
    try:
        return _BUILDERS[kind](node, dt, dtype)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"node {name!r} ({kind}): {e}") from None


def _array(name: str, value: Any, dtype: torch.dtype) -> np.ndarray:
    """A node's field ``name`` as float64, after checking every value is finite in ``dtype``
    (the one rule for every number a node gives snnrs)."""
    a = np.array(value, dtype=np.float64)
    if a.size and not (np.isfinite(a).all() and np.abs(a).max() <= torch.finfo(dtype).max):
        raise ValueError(f"its {name} is not finite everywhere in {dtype} (nan, inf, or past "
                         f"{torch.finfo(dtype).max:.4g})")
    return a


def _tensor(name: str, value: Any, dtype: torch.dtype) -> Tensor:
    return torch.as_tensor(_array(name, value, dtype), dtype=dtype)


def _param(name: str, value: Any, dtype: torch.dtype) -> nn.Parameter:
    return nn.Parameter(_tensor(name, value, dtype))


def _ints(value: Any, n: int, what: str) -> tuple[int, ...]:
    a = np.atleast_1d(np.asarray(value))
    if a.size == 1:
        a = np.repeat(a, n)
    if a.shape != (n,) or not np.all(a == np.round(a)):
        raise ValueError(f"its {what} must be {n} integers, got {value!r}")
    return tuple(int(v) for v in a)


def _affine(node: Any, dt: float, dtype: torch.dtype) -> nn.Module:
    weight = np.asarray(node.weight)
    if weight.ndim != 2:
        raise ValueError(f"its weight must be a matrix [out, in], got shape {weight.shape}")
    bias = getattr(node, "bias", None)
    m = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=dtype)
    m.weight = _param("weight", weight, dtype)
    if bias is not None:
        if np.shape(bias) != (weight.shape[0],):
            raise ValueError(f"its bias has shape {np.shape(bias)}, its weight {weight.shape}")
        m.bias = _param("bias", bias, dtype)
    return m


def _conv(node: Any, dt: float, dtype: torch.dtype) -> nn.Module:
    weight = np.asarray(node.weight)
    dims = 2 if type(node).__name__ == "Conv2d" else 1
    if weight.ndim != dims + 2:
        raise ValueError(f"its weight must have {dims + 2} dimensions, got shape {weight.shape}")
    groups = int(node.groups)
    padding = node.padding if isinstance(node.padding, str) else _ints(node.padding, dims,
                                                                       "padding")
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    m = conv(weight.shape[1] * groups, weight.shape[0], weight.shape[2:],
             stride=_ints(node.stride, dims, "stride"), padding=padding,
             dilation=_ints(node.dilation, dims, "dilation"), groups=groups, dtype=dtype)
    m.weight = _param("weight", weight, dtype)
    bias = np.zeros(weight.shape[0]) if node.bias is None else np.asarray(node.bias)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"its bias has shape {bias.shape}, its weight {weight.shape}")
    m.bias = _param("bias", bias, dtype)
    return m


def _pool(node: Any, dt: float, dtype: torch.dtype) -> nn.Module:
    kernel = _ints(node.kernel_size, 2, "kernel_size")
    stride = _ints(node.stride, 2, "stride")
    padding = _ints(node.padding, 2, "padding")
    if type(node).__name__ == "SumPool2d":
        return SumPool2d(kernel, stride, padding)
    return AvgPool2d(kernel, stride, padding)


def _flatten(node: Any, dt: float, dtype: torch.dtype) -> nn.Module:
    return Flatten(int(node.start_dim), int(node.end_dim))


def _scale(node: Any, dt: float, dtype: torch.dtype) -> nn.Module:
    return Scale(_tensor("scale", node.scale, dtype))


def _rule(node: Any) -> tuple[bool, str, float, bool]:
    """``(strict, surrogate, alpha, detach_reset)`` of a spiking node: NIR's strict rule and
    snnrs's default surrogate, unless the node's metadata (written by snnrs) says otherwise."""
    meta = getattr(node, "metadata", None) or {}
    strict = _text(meta.get(nir_form.SPIKE_KEY, nir_form.FIRES_ABOVE)) != nir_form.FIRES_AT
    surrogate, alpha = sg.resolve(_text(meta.get(nir_form.SURROGATE_KEY, "sigmoid")),
                                  meta.get(nir_form.ALPHA_KEY))
    return strict, surrogate, alpha, bool(meta.get(nir_form.DETACH_KEY, False))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _threshold(node: Any, dt: float, dtype: torch.dtype) -> nn.Module:
    strict, surrogate, alpha, _ = _rule(node)
    return Threshold(_tensor("threshold", node.threshold, dtype), strict, surrogate, alpha)


_FIELDS = {
    "IF": ("r", "v_threshold", "v_reset"),
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "LI": ("tau", "r", "v_leak"),
    "I": ("r",),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
}


def _neuron(node: Any, dt: float, dtype: torch.dtype) -> nn.Module:
    kind = type(node).__name__
    params = {name: _array(name, getattr(node, name), dtype) for name in _FIELDS[kind]}
    for name in params:
        if name.startswith("tau"):
            _check_time_constant(name, params[name], dt)
    shapes = {v.shape for v in params.values()} - {()}
    if len(shapes) > 1:
        raise ValueError(f"its parameters have different shapes {sorted(shapes)}")
    strict, surrogate, alpha, detach = _rule(node)
    uniform = {k: float(v.flat[0]) for k, v in params.items()
               if v.size and np.all(v == v.flat[0])}
    family = nir_readers().get(kind)
    if family is not None and len(uniform) == len(params):
        spiking = {}
        if family.fires:
            spiking = dict(surrogate=surrogate, alpha=alpha, detach_reset=detach)
            if strict:  # v > thr is v >= the next number above thr in the compute dtype
                uniform["v_threshold"] = _above(uniform["v_threshold"], dtype)
        made = family.from_nir(kind, uniform, dt, **spiking)
        if made is not None:
            module, gain = made
            return module if gain == 1.0 else Gained(module, gain)
    return EulerNeuron(kind, params, dt, dtype, strict, surrogate, alpha, detach)


def _above(threshold: float, dtype: torch.dtype) -> float:
    """The next number above ``threshold`` in ``dtype``'s compute dtype."""
    cd = compute_dtype(dtype)
    return float(torch.nextafter(torch.tensor(threshold, dtype=cd),
                                 torch.tensor(math.inf, dtype=cd)))


def check_neuron_shape(node: Any, shape: tuple[int, ...]) -> None:
    """Raises a ValueError unless the parameters of neuron ``node`` (which an snnrs module
    holds as single values) fit a per-sample ``shape``."""
    for name in _FIELDS[type(node).__name__]:
        s = np.shape(getattr(node, name))
        if s not in ((), shape):
            raise ValueError(f"its parameters have shape {s}, its input {shape}")


def _check_time_constant(name: str, tau: np.ndarray, dt: float) -> None:
    """Checks the time constant ``tau`` (seconds, per neuron) is > 0 and gives a leak
    ``dt / tau`` in [0, 1] (snnrs's rule for every leak, :func:`snnrs._contract.leak_rate`):
    ``tau >= dt``, else the Euler step overshoots ``v_leak`` and grows without bound.

    Example:
        >>> _check_time_constant("tau", np.array([2e-3, 5e-4]), 1e-3)
        Traceback (most recent call last):
        ...
        ValueError: dt / tau (dt = 0.001 s, tau = 0.0005 s at neuron (1,)) must be in [0, 1] ...
    """
    if not (tau > 0).all():
        raise ValueError(f"its {name} must be > 0 everywhere (a time constant)")
    if tau.size:
        with np.errstate(over="ignore"):
            leak = dt / tau
        worst = np.unravel_index(np.argmax(leak), leak.shape)
        at = f" at neuron {tuple(int(i) for i in worst)}" if tau.ndim else ""
        leak_rate(f"dt / {name} (dt = {dt:g} s, {name} = {tau[worst]:g} s{at})",
                  float(leak[worst]))


_BUILDERS = {
    "Affine": _affine, "Linear": _affine, "Conv1d": _conv, "Conv2d": _conv,
    "AvgPool2d": _pool, "SumPool2d": _pool, "Flatten": _flatten, "Scale": _scale,
    "Threshold": _threshold, **dict.fromkeys(_FIELDS, _neuron),
}
