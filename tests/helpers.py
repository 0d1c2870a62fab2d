"""Shared test helpers: random neuron configurations and the oracle call."""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from snnrs import ops, reference
from snnrs.surrogate import NAMES


@st.composite
def neuron_params(draw, kinds=("if", "lif", "plif")) -> tuple[str, ops.NeuronParams, float]:
    """(kind, params, w) with every option drawn; ``w`` is PLIF's parameter (else unused)."""
    kind = draw(st.sampled_from(kinds))
    tau = draw(st.floats(1.2, 8.0))
    decay_input = kind != "if" and draw(st.booleans())
    v_reset = draw(st.one_of(st.none(), st.floats(-0.5, 0.3)))
    p = ops.make_params(
        0.0 if kind != "lif" else 1.0 / tau, decay_input, draw(st.floats(0.4, 1.5)), v_reset,
        draw(st.booleans()), draw(st.sampled_from(NAMES)), draw(st.floats(0.5, 5.0)))
    return kind, p, draw(st.floats(-2.0, 2.0))


shapes = st.lists(st.integers(1, 9), min_size=0, max_size=3).map(tuple)


def leak_of(kind: str, p: ops.NeuronParams, w: torch.Tensor | None):
    return torch.sigmoid(w) if kind == "plif" else p.leak


def oracle(x: torch.Tensor, v0: torch.Tensor, p: ops.NeuronParams, leak):
    return reference.multistep(
        x, v0, leak, decay_input=p.decay_input, v_threshold=p.v_threshold, v_reset=p.v_reset,
        detach_reset=p.detach_reset, surrogate=p.surrogate, alpha=p.alpha)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().max().clamp_min(1e-30)
    return float((a - b).abs().max() / scale) if a.numel() else 0.0


def assert_compiled_matches_eager(net: torch.nn.Module, x: torch.Tensor) -> None:
    """``torch.compile(net, fullgraph=True)`` gives eager's spikes exactly and its gradients."""
    from snnrs.nn import reset

    def run(fn):
        reset(net)
        net.zero_grad()
        out = fn(x)
        out.sum().backward()
        return out.detach(), [p.grad.clone() for p in net.parameters()]

    eager = run(net)
    compiled = run(torch.compile(net, fullgraph=True))
    assert torch.equal(eager[0], compiled[0])
    for a, b in zip(eager[1], compiled[1], strict=True):
        torch.testing.assert_close(a, b)
