"""ALIF: LIF with an adaptive threshold, a second state variable that grows with each spike.

Each step (Bellec et al. 2018, "Long short-term memory and learning-to-learn in networks of
spiking neurons"), with LIF's charge and ``leak_adapt = 1 / tau_adapt``::

    H_t = charge(V_{t-1}, X_t);        theta_t = v_threshold + beta * A_{t-1}
    S_t = [H_t >= theta_t];            V_t = reset(H_t, S_t)   (soft reset subtracts theta_t)
    A_t = A_{t-1} + (S_t - A_{t-1}) / tau_adapt

``A`` is a running firing rate, so a neuron that fires often needs more input to fire again:
the memory over ``tau_adapt`` steps that speech and sequence tasks use. The surrogate gradient
flows through ``A`` as through ``V``. NIR has no adaptive neuron; export refuses it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .. import _contract, ops, reference
from .. import surrogate as sg
from .._contract import NeuronParams
from .family import BaseNode, params_record
from .spec import register_family

ALIFParams = params_record(
    "ALIFParams", NeuronParams, """The LIF parameters (the fields
    of :class:`snnrs.ops.NeuronParams`), then the adaptation's leak and its weight ``beta``.""",
    leak_adapt=float, beta=float)


class ALIFState(NamedTuple):
    """The membrane ``v`` and the adaptation ``a`` (a running firing rate), each ``[B, *]``."""

    v: Tensor
    a: Tensor


@register_family("alif")
class ALIF(BaseNode):
    """Adaptive-threshold leaky integrate-and-fire.

    Args:
        tau: membrane time constant in steps (finite, >= 1).
        tau_adapt: time constant of the adaptation in steps (finite, >= 1).
        beta: how much the adaptation raises the threshold (finite, >= 0; 0 is LIF).

    The other parameters are those of :class:`~snnrs.nn.LIF`.

    Example:
        >>> node = ALIF(tau=1.0, tau_adapt=2.0, beta=1.0, step_mode="m")
        >>> node(torch.full((4, 1), 1.2)).flatten().tolist()   # theta: 1, 1.5, 1.25, 1.125
        [1.0, 0.0, 0.0, 1.0]
    """

    Params = ALIFParams
    State = ALIFState

    def __init__(
        self, tau: float = 2.0, tau_adapt: float = 20.0, beta: float = 1.8,
        decay_input: bool = True, v_threshold: float = 1.0, v_reset: float | None = 0.0,
        surrogate: str = "sigmoid", alpha: float | None = None, detach_reset: bool = False,
        step_mode: str = "s",
    ) -> None:
        core = ops.make_params(ops.tau_to_leak(tau), decay_input, v_threshold, v_reset,
                               detach_reset, surrogate, alpha)
        leak_adapt = 1.0 / _contract.time_constant("tau_adapt", tau_adapt)
        beta = _contract.finite("beta", beta)
        if beta < 0:
            raise ValueError(f"beta must be >= 0 (how much each spike raises the threshold); "
                             f"got {beta}")
        super().__init__(ALIFParams(*core, leak_adapt, beta), step_mode)

    @staticmethod
    def step(x: Tensor, state: ALIFState, p: ALIFParams) -> tuple[Tensor, ALIFState]:
        v_rest = 0.0 if p.v_reset is None else p.v_reset
        h = reference.charge(state.v, x, p.leak, p.decay_input, v_rest)
        theta = p.v_threshold + p.beta * state.a
        s = sg.heaviside(h - theta, p.surrogate, p.alpha)
        k = s.detach() if p.detach_reset else s
        v = h - theta * k if p.v_reset is None else h * (1 - k) + p.v_reset * k
        return s, ALIFState(v, state.a + (s - state.a) * p.leak_adapt)

    @staticmethod
    def rest(x: Tensor, p: ALIFParams) -> ALIFState:
        v_rest = 0.0 if p.v_reset is None else p.v_reset
        return ALIFState(torch.full_like(x, v_rest), torch.zeros_like(x))
