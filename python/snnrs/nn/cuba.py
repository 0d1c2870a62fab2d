"""CubaLIF: a current-based LIF, whose input first charges a leaky synaptic current.

Each step, with ``leak_syn = 1 / tau_syn`` and the LIF charge of :class:`~snnrs.nn.LIF`::

    I_t = I_{t-1} + (X_t - I_{t-1}) / tau_syn
    H_t = charge(V_{t-1}, I_t);   S_t = [H_t >= v_threshold];   V_t = reset(H_t, S_t)

The synapse low-pass filters the input, so a spike's effect lasts beyond one step. This is
NIR's ``CubaLIF`` (and Norse's, neuromorphic chips') neuron with ``w_in = 1``; see
docs/neurons.md.

On the CPU it runs a fused Rust kernel (``_core.cubalif_forward`` / ``cubalif_backward``,
rust/families/cuba.rs) registered below, which the tests hold to the reference step; float16 /
bfloat16 inputs compute in float32 there, as the reference does. Other devices run the
reference.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .. import _buffers, _contract, _core, _threads, ops
from .._contract import NeuronParams
from ..backends._native import buf, maybe_buf, record
from . import nir_form
from .family import BaseNode, params_record, register_kernel
from .neurons import LIFFamily, LIFState
from .spec import register_family

CubaParams = params_record(
    "CubaParams", NeuronParams, """The LIF parameters (the fields of
    :class:`snnrs.ops.NeuronParams`), then the synapse's leak ``1 / tau_syn``.""",
    leak_syn=float)


class CubaState(NamedTuple):
    """The synaptic current ``i`` and the membrane ``v``, each ``[B, *]``."""

    i: Tensor
    v: Tensor


@register_family("cubalif")
class CubaLIF(BaseNode):
    """Current-based leaky integrate-and-fire.

    Args:
        tau: membrane time constant in steps (finite, >= 1).
        tau_syn: synaptic time constant in steps (finite, >= 1; 1 passes the input straight
            through: LIF).

    The other parameters are those of :class:`~snnrs.nn.LIF`.

    Example:
        >>> node = CubaLIF(tau=2.0, tau_syn=2.0, step_mode="m")
        >>> node(torch.full((4, 1), 2.0)).flatten().tolist()    # I: 1, 1.5, 1.75, ...
        [0.0, 1.0, 0.0, 1.0]
    """

    Params = CubaParams
    State = CubaState
    nir_nodes = ("CubaLIF",)

    def __init__(
        self, tau: float = 2.0, tau_syn: float = 2.0, decay_input: bool = True,
        v_threshold: float = 1.0, v_reset: float | None = 0.0, surrogate: str = "sigmoid",
        alpha: float | None = None, detach_reset: bool = False, step_mode: str = "s",
    ) -> None:
        core = ops.make_params(ops.tau_to_leak(tau), decay_input, v_threshold, v_reset,
                               detach_reset, surrogate, alpha)
        leak_syn = 1.0 / _contract.time_constant("tau_syn", tau_syn)
        super().__init__(CubaParams(*core, leak_syn), step_mode)

    @staticmethod
    def step(x: Tensor, state: CubaState, p: CubaParams) -> tuple[Tensor, CubaState]:
        i = state.i + (x - state.i) * p.leak_syn
        s, membrane = LIFFamily.step(i, LIFState(state.v), p)
        return s, CubaState(i, membrane.v)

    @staticmethod
    def rest(x: Tensor, p: CubaParams) -> CubaState:
        return CubaState(torch.zeros_like(x), LIFFamily.rest(x, p).v)

    def to_nir(self, dt: float) -> tuple[str, dict[str, float]]:
        p = self.params
        v_reset = nir_form.hard_reset(p.v_reset)
        c = nir_form.to_nir("lif", p.leak, p.decay_input, v_reset, dt)
        return "CubaLIF", {"tau_syn": dt / p.leak_syn, "tau_mem": c.tau, "r": c.r,
                           "v_leak": c.v_leak, "v_threshold": p.v_threshold,
                           "v_reset": v_reset, "w_in": 1.0}

    @classmethod
    def from_nir(cls, node: str, p: dict[str, float], dt: float, **spiking
                 ) -> tuple[CubaLIF, float] | None:
        if p["v_leak"] != p["v_reset"]:
            return None  # snnrs's membrane decays to v_reset
        form = nir_form.lif_from_nir(p["tau_mem"], p["r"], dt)
        module = cls(decay_input=form.decay_input, v_threshold=p["v_threshold"],
                     v_reset=p["v_reset"], step_mode="m", **spiking)
        module.params = module.params._replace(leak=form.leak, leak_syn=dt / p["tau_syn"])
        return module, p["w_in"] * form.gain


# ---------------------------------------------------------------------------------------------
# The fused CPU kernel.


def _leak_syn(p: CubaParams) -> Tensor:
    """``1 / tau_syn`` as the kernels take it: one float64 element."""
    return torch.tensor([p.leak_syn], dtype=torch.float64)


def _record(p: CubaParams) -> _core.Params:
    """The LIF part of ``p`` as the kernels' parameter record."""
    return record(_contract.NeuronParams(*p[:-1]))


def _context() -> _core.Cpu:
    return _core.Cpu(torch.get_num_threads())


class _CubaFunction(torch.autograd.Function):
    """``(x [T, N...], i0, v0 [N...]) -> (spikes [T, N...], i_T, v_T)``, float32 or float64,
    with the BPTT backward of the Rust kernels; the charges ``H`` are all the backward keeps."""

    @staticmethod
    def forward(ctx, x: Tensor, i0: Tensor, v0: Tensor, p: CubaParams
                ) -> tuple[Tensor, Tensor, Tensor]:
        _threads.choose_on_first_use()
        spikes, h_seq = _buffers.empty(x.shape, x.dtype), _buffers.empty(x.shape, x.dtype)
        i, v, leak_syn = torch.empty_like(i0), torch.empty_like(v0), _leak_syn(p)
        _core.cubalif_forward(
            _context(), _record(p), x.shape[0], x=buf(x), i0=buf(i0), v0=buf(v0),
            spikes=buf(spikes), h_seq=buf(h_seq), i=buf(i), v=buf(v), leak_syn=buf(leak_syn))
        ctx.save_for_backward(h_seq)
        ctx.p = p
        return spikes, i, v

    @staticmethod
    def backward(ctx, grad_spikes: Tensor, grad_i: Tensor | None, grad_v: Tensor | None
                 ) -> tuple[Tensor, Tensor, Tensor, None]:
        (h_seq,) = ctx.saved_tensors
        p = ctx.p
        grad_x = _buffers.empty(h_seq.shape, h_seq.dtype)
        grad_i0, grad_v0 = (torch.empty(h_seq.shape[1:], dtype=h_seq.dtype) for _ in range(2))
        # Locals: each buffer must outlive the call that reads its address.
        grad_spikes, leak_syn = grad_spikes.contiguous(), _leak_syn(p)
        grad_i = None if grad_i is None else grad_i.contiguous()
        grad_v = None if grad_v is None else grad_v.contiguous()
        _core.cubalif_backward(
            _context(), _record(p), h_seq.shape[0], grad_spikes=buf(grad_spikes),
            grad_i=maybe_buf(grad_i), grad_v=maybe_buf(grad_v), h_seq=buf(h_seq),
            grad_x=buf(grad_x), grad_i0=buf(grad_i0), grad_v0=buf(grad_v0),
            leak_syn=buf(leak_syn))
        return grad_x, grad_i0, grad_v0, None


@register_kernel(CubaLIF, "cpu")
def _fused(node: CubaLIF, x_seq: Tensor, state: CubaState | None) -> tuple[Tensor, CubaState]:
    """CubaLIF on the Rust kernel: float32 / float64 as they are, half types in float32."""
    p = node.step_params()
    run_in = _contract.compute_dtype(x_seq.dtype)
    xs = x_seq.to(run_in).contiguous()
    if state is None:
        rest = node.rest(xs.new_zeros(xs.shape[1:]), p)
        i0, v0 = rest.i, rest.v
    else:
        i0, v0 = (s.to(run_in).contiguous() for s in state)
    spikes, i, v = _CubaFunction.apply(xs, i0, v0, p)
    back = x_seq.dtype
    return spikes.to(back), CubaState(i.to(back), v.to(back))
