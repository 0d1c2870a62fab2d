"""Spiking neuron layers: IF, LIF and PLIF with SpikingJelly's argument names and semantics.

Each layer charges, fires and resets per docs/neurons.md::

    H_t = charge(V_{t-1}, X_t);   S_t = [H_t >= v_threshold];   V_t = reset(H_t, S_t)

``step_mode="m"`` takes a whole sequence ``[T, B, *]``; ``step_mode="s"`` (SpikingJelly's
default) takes one step ``[B, *]``. Both keep the membrane ``v`` between calls until
:meth:`reset` (or :func:`snnrs.nn.reset` on a model); an input whose shape differs from the kept
state raises a RuntimeError telling you to reset, rather than silently starting afresh.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import _contract, ops

STEP_MODES = ("s", "m")


class BaseNode(nn.Module):
    """Shared state handling of the spiking neurons; not used directly.

    Shape:
        ``step_mode="m"``: input ``(T, B, *)`` -> spikes ``(T, B, *)``.
        ``step_mode="s"``: input ``(B, *)`` -> spikes ``(B, *)``.
    """

    v: Tensor | None

    def __init__(
        self, leak: float, decay_input: bool, v_threshold: float, v_reset: float | None,
        surrogate: str, alpha: float | None, detach_reset: bool, step_mode: str,
    ) -> None:
        super().__init__()
        self.step_mode = step_mode
        self.params = ops.make_params(leak, decay_input, v_threshold, v_reset, detach_reset,
                                      surrogate, alpha)
        self.v = None

    # Read-only views of the parameters under their SpikingJelly names.
    v_threshold = property(lambda self: self.params.v_threshold)
    v_reset = property(lambda self: self.params.v_reset)
    detach_reset = property(lambda self: self.params.detach_reset)
    decay_input = property(lambda self: self.params.decay_input)
    surrogate = property(lambda self: self.params.surrogate)
    alpha = property(lambda self: self.params.alpha)

    @property
    def step_mode(self) -> str:
        """``"m"`` (a sequence ``[T, B, *]`` per call) or ``"s"`` (one step ``[B, *]``)."""
        return "m" if self.multi_step else "s"

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        if mode not in STEP_MODES:
            raise ValueError(f"unknown step_mode {mode!r}; expected 's' or 'm'")
        self.multi_step = mode == "m"  # decided here, not in every forward

    def reset(self) -> None:
        """Forgets the membrane state; the next call starts from ``v_reset`` (or 0)."""
        self.v = None

    def _w(self) -> Tensor | None:
        return None

    def forward(self, x: Tensor) -> Tensor:
        x_seq = x if self.multi_step else x.unsqueeze(0)
        if self.v is not None and self.v.shape != x_seq.shape[1:]:
            raise RuntimeError(
                f"{type(self).__name__} holds a membrane state of shape {tuple(self.v.shape)} "
                f"but got input for {tuple(x_seq.shape[1:])}; call snnrs.nn.reset(model) (or "
                ".reset()) before feeding a batch of another shape")
        spikes, self.v = ops.multistep(x_seq, self.v, self.params, self._w())
        return spikes if self.multi_step else spikes[0]

    def simulate(self, x_seq: Tensor, v0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Runs ``x_seq [T, B, *]`` from ``v0`` (``None``: the resting state), leaving the kept
        state alone: ``(spikes [T, B, *], v_T [B, *])``.

        Example:
            >>> spikes, v = LIF(tau=2.0).simulate(torch.full((3, 2, 4), 1.5))
            >>> spikes[:, 0, 0].tolist()
            [0.0, 1.0, 0.0]
        """
        return ops.multistep(x_seq, v0, self.params, self._w())

    def multi_step_forward(self, x_seq: Tensor) -> Tensor:
        """Runs ``x_seq [T, B, *]`` whatever ``step_mode`` is."""
        multi, self.multi_step = self.multi_step, True
        try:
            return self.forward(x_seq)
        finally:
            self.multi_step = multi

    def rate_forward(self, x_seq: Tensor) -> ops.RateOutput:
        """The no-grad spike pass of rate-based backprop over ``[T, B, *]``; keeps the state."""
        out = ops.rate(x_seq, self.v, self.params, self._w())
        self.v = out.v
        return out

    def extra_repr(self) -> str:
        p = self.params
        return (f"v_threshold={p.v_threshold}, v_reset={p.v_reset}, "
                f"detach_reset={p.detach_reset}, surrogate={p.surrogate!r}, alpha={p.alpha}, "
                f"step_mode={self.step_mode!r}")


class IF(BaseNode):
    """Integrate-and-fire: ``H = V + X``.

    Args:
        v_threshold: firing threshold. v_reset: hard-reset value, or ``None`` for soft reset
        (subtract the threshold). surrogate / alpha: backward surrogate (see
        :mod:`snnrs.surrogate`; ``alpha=None`` picks its default). detach_reset: treat the
        reset's spike as a constant in backward. step_mode: ``"s"`` or ``"m"``.

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


class LIF(BaseNode):
    """Leaky integrate-and-fire.

    ``H = V + (X - (V - v_reset)) / tau`` with ``decay_input=True``, else
    ``H = V - (V - v_reset) / tau + X`` (``v_reset`` reads 0 for soft reset).

    Args:
        tau: membrane time constant in steps, finite and >= 1 (1 forgets the state every
        step). decay_input: scale the input by ``1/tau`` too. Others as :class:`IF`. See
        :meth:`from_leak` for snnTorch-style ``beta``.

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


class PLIF(BaseNode):
    """Parametric LIF: LIF whose ``1/tau = sigmoid(w)`` is learnt, one ``w`` per layer.

    Args:
        init_tau: initial time constant in steps, finite and > 1 (``w = -ln(init_tau - 1)``).
        Others as :class:`LIF`.

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
