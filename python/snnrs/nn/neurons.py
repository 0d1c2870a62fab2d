"""The IF / LIF / PLIF family, with SpikingJelly's argument names and semantics.

Each layer charges, fires and resets per docs/neurons.md::

    H_t = charge(V_{t-1}, X_t);   S_t = [H_t >= v_threshold];   V_t = reset(H_t, S_t)

``step_mode="m"`` takes a whole sequence ``[T, B, *]``; ``step_mode="s"`` (SpikingJelly's
default) takes one step ``[B, *]``. Both keep the membrane ``v`` between calls until
:meth:`reset` (or :func:`snnrs.nn.reset` on a model). The family is the first *native* one
(:mod:`snnrs.nn.family`): its reference step is written here, its fused kernels are the ops of
:mod:`snnrs.ops`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .. import _contract, ops, reference
from .. import surrogate as sg
from .._contract import NeuronParams
from . import nir_form
from .family import BaseNode, register_kernel


class LIFState(NamedTuple):
    """The state of the IF / LIF / PLIF family: the membrane ``v [B, *]``."""

    v: Tensor


class LIFFamily(BaseNode):
    """The IF / LIF / PLIF family: one membrane, charge, fire and reset; not used directly.

    Its step is :mod:`snnrs.reference`'s equations; it runs on the fused kernels of
    :mod:`snnrs.ops` (Rust on the CPU, CUDA on a GPU, the pure-PyTorch twins elsewhere), which
    the tests hold to that step.
    """

    Params = NeuronParams
    State = LIFState
    nir_nodes = ("IF", "LIF")

    def __init__(
        self, leak: float, decay_input: bool, v_threshold: float, v_reset: float | None,
        surrogate: str, alpha: float | None, detach_reset: bool, step_mode: str,
    ) -> None:
        super().__init__(ops.make_params(leak, decay_input, v_threshold, v_reset, detach_reset,
                                         surrogate, alpha), step_mode)

    # Read-only views of the parameters under their SpikingJelly names.
    v_threshold = property(lambda self: self.params.v_threshold)
    v_reset = property(lambda self: self.params.v_reset)
    detach_reset = property(lambda self: self.params.detach_reset)
    decay_input = property(lambda self: self.params.decay_input)
    surrogate = property(lambda self: self.params.surrogate)
    alpha = property(lambda self: self.params.alpha)

    @property
    def v(self) -> Tensor | None:
        """The kept membrane ``[B, *]`` (None at rest, before the first call)."""
        return None if self.state is None else self.state.v

    @v.setter
    def v(self, value: Tensor | None) -> None:
        self.state = None if value is None else LIFState(value)

    @staticmethod
    def step(x: Tensor, state: LIFState, p: NeuronParams) -> tuple[Tensor, LIFState]:
        v_rest = 0.0 if p.v_reset is None else p.v_reset
        h = reference.charge(state.v, x, p.leak, p.decay_input, v_rest)
        s = sg.heaviside(h - p.v_threshold, p.surrogate, p.alpha)
        v = reference.reset(h, s.detach() if p.detach_reset else s, p.v_threshold, p.v_reset)
        return s, LIFState(v)

    @staticmethod
    def rest(x: Tensor, p: NeuronParams) -> LIFState:
        return LIFState(torch.full_like(x, 0.0 if p.v_reset is None else p.v_reset))

    def _w(self) -> Tensor | None:
        return None

    def to_nir(self, dt: float) -> tuple[str, dict[str, float]]:
        p = self.step_params()
        fire = {"v_threshold": p.v_threshold, "v_reset": nir_form.hard_reset(p.v_reset)}
        leak = float(p.leak.detach()) if isinstance(p.leak, Tensor) else p.leak
        if leak == 0.0 and not p.decay_input:
            return "IF", {"r": nir_form.to_nir("if", 0.0, False, p.v_reset, dt).r, **fire}
        c = nir_form.to_nir("lif", leak, p.decay_input, p.v_reset, dt)
        return "LIF", {"tau": c.tau, "r": c.r, "v_leak": c.v_leak, **fire}

    @classmethod
    def from_nir(cls, node: str, p: dict[str, float], dt: float, **spiking
                 ) -> tuple[LIFFamily, float] | None:
        fire = dict(v_threshold=p["v_threshold"], v_reset=p["v_reset"], step_mode="m",
                    **spiking)
        if node == "IF":
            return IF(**fire), nir_form.if_from_nir(p["r"], dt).gain
        if p["v_leak"] != p["v_reset"]:
            return None  # snnrs's LIF decays to v_reset
        form = nir_form.lif_from_nir(p["tau"], p["r"], dt)
        module = LIF(decay_input=form.decay_input, **fire)
        module.params = module.params._replace(leak=form.leak)
        return module, form.gain

    def rate_forward(self, x_seq: Tensor) -> ops.RateOutput:
        """The no-grad spike pass of rate-based backprop over ``[T, B, *]``; keeps the state."""
        out = ops.rate(x_seq, self.v, self.params, self._w())
        self.state = LIFState(out.v)
        return out

    def rate(self, x_seq: Tensor) -> ops.RateOutput:
        """The same pass from rest, leaving the kept state alone."""
        return ops.rate(x_seq, None, self.params, self._w())

    def extra_repr(self) -> str:
        p = self.params
        return (f"v_threshold={p.v_threshold}, v_reset={p.v_reset}, "
                f"detach_reset={p.detach_reset}, surrogate={p.surrogate!r}, alpha={p.alpha}, "
                f"step_mode={self.step_mode!r}")


@register_kernel(LIFFamily, "*")
def _fused(node: LIFFamily, x_seq: Tensor, state: LIFState | None) -> tuple[Tensor, LIFState]:
    spikes, v = ops.multistep(x_seq, None if state is None else state.v, node.params, node._w())
    return spikes, LIFState(v)


class IF(LIFFamily):
    """Integrate-and-fire: ``H = V + X``.

    Args:
        v_threshold: firing threshold.
        v_reset: hard-reset value, or ``None`` for soft reset (subtract the threshold).
        surrogate: backward surrogate, a name from :mod:`snnrs.surrogate`.
        alpha: the surrogate's sharpness (``None`` picks its default).
        detach_reset: treat the reset's spike as a constant in backward.
        step_mode: ``"s"`` (one step ``[B, ...]``) or ``"m"`` (a sequence ``[T, B, ...]``).

    Example:
        >>> node = IF(step_mode="m")
        >>> spikes = node(torch.rand(4, 2, 10))          # (T, B, N)
    """

    def __init__(
        self, v_threshold: float = 1.0, v_reset: float | None = 0.0,
        surrogate: str = "sigmoid", alpha: float | None = None, detach_reset: bool = False,
        step_mode: str = "s",
    ) -> None:
        super().__init__(0.0, False, v_threshold, v_reset, surrogate, alpha, detach_reset,
                         step_mode)


class LIF(LIFFamily):
    """Leaky integrate-and-fire.

    ``H = V + (X - (V - v_reset)) / tau`` with ``decay_input=True``, else
    ``H = V - (V - v_reset) / tau + X`` (``v_reset`` reads 0 for soft reset).

    Args:
        tau: membrane time constant in steps, finite and >= 1 (1 forgets the state every
            step). See :meth:`from_leak` for snnTorch-style ``beta``.
        decay_input: scale the input by ``1/tau`` too.

    The other parameters are those of :class:`IF`.

    Example:
        >>> node = LIF(tau=2.0, step_mode="m")
        >>> spikes = node(torch.rand(4, 2, 10))          # (T, B, N)
    """

    def __init__(
        self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
        v_reset: float | None = 0.0, surrogate: str = "sigmoid", alpha: float | None = None,
        detach_reset: bool = False, step_mode: str = "s",
    ) -> None:
        super().__init__(ops.tau_to_leak(tau), decay_input, v_threshold, v_reset, surrogate,
                         alpha, detach_reset, step_mode)

    @property
    def tau(self) -> float:
        """``1 / leak``, in steps; ``inf`` for ``from_leak(1.0)``, which never leaks."""
        return 1.0 / self.params.leak if self.params.leak else math.inf

    @classmethod
    def from_leak(cls, leak_factor: float, **kwargs) -> LIF:
        """LIF with ``V <- leak_factor * V + X`` charging (snnTorch's ``beta``, a "decay").

        That is ``decay_input=False`` and ``tau = 1 / (1 - leak_factor)``, with ``leak_factor``
        in [0, 1] (0 forgets the state every step, 1 never leaks: IF); ``v_reset`` defaults to
        0 (pass ``None`` for soft reset).

        Example:
            >>> LIF.from_leak(0.9, v_reset=None).tau
            10.000000000000002
        """
        node = cls(decay_input=False, **kwargs)
        node._use_leak_factor("leak_factor", leak_factor)
        return node

    def _use_leak_factor(self, name: str, leak_factor: float) -> None:
        """Charges as ``V <- leak_factor * V + X`` (built with ``decay_input=False``) after
        checking ``leak_factor``, called ``name`` in the message, is in [0, 1]."""
        leak = 1.0 - _contract.leak_factor(name, leak_factor)
        self.params = self.params._replace(leak=leak)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, decay_input={self.decay_input}, " + super().extra_repr()


class PLIF(LIFFamily):
    """Parametric LIF: LIF whose ``1/tau = sigmoid(w)`` is learnt, one ``w`` per layer.

    Args:
        init_tau: initial time constant in steps, finite and > 1 (``w = -ln(init_tau - 1)``).

    The other parameters are those of :class:`LIF`.

    Example:
        >>> node = PLIF(init_tau=2.0, step_mode="m")
        >>> node(torch.rand(4, 2, 10)).sum().backward()
        >>> node.w.grad is not None
        True
    """

    def __init__(
        self, init_tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
        v_reset: float | None = 0.0, surrogate: str = "sigmoid", alpha: float | None = None,
        detach_reset: bool = False, step_mode: str = "s",
    ) -> None:
        init_tau = _contract.initial_time_constant("init_tau", init_tau)
        super().__init__(0.0, decay_input, v_threshold, v_reset, surrogate, alpha,
                         detach_reset, step_mode)
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    @property
    def tau(self) -> float:
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def _w(self) -> Tensor:
        return self.w

    def step_params(self) -> NeuronParams:
        return self.params._replace(leak=torch.sigmoid(self.w))

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, decay_input={self.decay_input}, " + super().extra_repr()


def reset(model: nn.Module) -> nn.Module:
    """Resets the membrane state of every snnrs neuron inside ``model``; returns ``model``.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 4), LIF())
        >>> _ = net(torch.rand(2, 4)); _ = reset(net)
    """
    for m in model.modules():
        if isinstance(m, BaseNode):
            m.reset()
    return model
