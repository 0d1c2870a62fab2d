"""LI: the leaky integrator, a neuron that never fires and outputs its membrane.

Each step, with LIF's charge (``v_rest`` in place of ``v_reset``)::

    V_t = V_{t-1} + (X_t - (V_{t-1} - v_rest)) / tau     (decay_input=True)
    V_t = V_{t-1} - (V_{t-1} - v_rest) / tau + X_t       (decay_input=False)

It is the usual readout of a spiking network (its output is analog), and NIR's ``LI`` node;
``LI.from_leak(1.0)`` never leaks and is NIR's integrator ``I``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .. import _contract, ops, reference
from . import nir_form
from .family import BaseNode
from .spec import register_family


class LIParams(NamedTuple):
    """``leak`` (``1/tau``), ``decay_input`` and the resting potential ``v_rest``."""

    leak: float
    decay_input: bool
    v_rest: float


class LIState(NamedTuple):
    """The membrane ``v [B, *]``."""

    v: Tensor


@register_family("li")
class LI(BaseNode):
    """Leaky integrator: outputs its membrane ``V_t`` each step.

    Args:
        tau: time constant in steps (finite, >= 1). See :meth:`from_leak` for
            ``V <- leak_factor * V + X``.
        decay_input: scale the input by ``1/tau`` too.
        v_rest: where the membrane starts and decays to.

    Example:
        >>> LI(tau=2.0, step_mode="m")(torch.ones(3, 1)).flatten().tolist()
        [0.5, 0.75, 0.875]
    """

    Params = LIParams
    State = LIState
    fires = False
    nir_nodes = ("LI", "I")

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_rest: float = 0.0,
                 step_mode: str = "s") -> None:
        super().__init__(LIParams(ops.tau_to_leak(tau), bool(decay_input),
                                  _contract.finite("v_rest", v_rest)), step_mode)

    @classmethod
    def from_leak(cls, leak_factor: float, v_rest: float = 0.0, step_mode: str = "s") -> LI:
        """``V <- leak_factor * V + X`` (around ``v_rest``), ``leak_factor`` in [0, 1]; 1 is
        the integrator ``I``.

        Example:
            >>> LI.from_leak(1.0, step_mode="m")(torch.ones(3, 1)).flatten().tolist()
            [1.0, 2.0, 3.0]
        """
        node = cls(decay_input=False, v_rest=v_rest, step_mode=step_mode)
        leak = 1.0 - _contract.leak_factor("leak_factor", leak_factor)
        node.params = node.params._replace(leak=leak)
        return node

    @staticmethod
    def step(x: Tensor, state: LIState, p: LIParams) -> tuple[Tensor, LIState]:
        v = reference.charge(state.v, x, p.leak, p.decay_input, p.v_rest)
        return v, LIState(v)

    @staticmethod
    def rest(x: Tensor, p: LIParams) -> LIState:
        return LIState(torch.full_like(x, p.v_rest))

    def to_nir(self, dt: float) -> tuple[str, dict[str, float]]:
        p = self.params
        if p.leak == 0.0 and not p.decay_input:
            if p.v_rest != 0.0:
                raise ValueError(f"is an integrator starting at v_rest={p.v_rest}, which NIR's I "
                                 "(starting at 0) cannot express")
            return "I", {"r": nir_form.to_nir("if", 0.0, False, 0.0, dt).r}
        c = nir_form.to_nir("lif", p.leak, p.decay_input, p.v_rest, dt)
        return "LI", {"tau": c.tau, "r": c.r, "v_leak": c.v_leak}

    @classmethod
    def from_nir(cls, node: str, p: dict[str, float], dt: float, **spiking
                 ) -> tuple[LI, float] | None:
        if node == "I":
            return cls.from_leak(1.0, step_mode="m"), nir_form.if_from_nir(p["r"], dt).gain
        form = nir_form.lif_from_nir(p["tau"], p["r"], dt)
        module = cls(decay_input=form.decay_input, v_rest=p["v_leak"], step_mode="m")
        module.params = module.params._replace(leak=form.leak)
        return module, form.gain
