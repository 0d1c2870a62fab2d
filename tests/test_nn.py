"""Neuron modules, containers and state semantics."""

from __future__ import annotations

import pytest
import snnrs
import torch
from helpers import oracle, rel_err
from hypothesis import given
from hypothesis import strategies as st
from snnrs.backends import reference
from snnrs.nn import IF, LIF, PLIF, MultiStepBatchNorm2d, TimeDistributed
from torch import nn


def _node(kind: str, step_mode: str, **kw):
    return {"if": IF, "lif": LIF, "plif": PLIF}[kind](step_mode=step_mode, **kw)


@pytest.mark.parametrize("kind", ["if", "lif", "plif"])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_single_step_loop_equals_multi_step(kind, v_reset):
    x = torch.randn(6, 3, 5, dtype=torch.float64, requires_grad=True)
    multi, single = _node(kind, "m", v_reset=v_reset), _node(kind, "s", v_reset=v_reset)
    s_m = multi(x)
    (s_m * torch.arange(6.0, dtype=torch.float64).view(6, 1, 1)).sum().backward()
    g_m = x.grad.clone()
    x.grad = None
    s_s = torch.stack([single(xt) for xt in x])
    (s_s * torch.arange(6.0, dtype=torch.float64).view(6, 1, 1)).sum().backward()
    assert torch.equal(s_m, s_s)
    assert rel_err(x.grad, g_m) < 1e-12
    assert torch.equal(multi.v, single.v)


def test_state_carries_across_calls_until_reset():
    x = torch.rand(8, 2, 4) * 0.6
    whole = LIF(step_mode="m")(x)
    node = LIF(step_mode="m")
    halves = torch.cat([node(x[:4]), node(x[4:])])
    assert torch.equal(whole, halves)
    snnrs.nn.reset(node)
    assert node.v is None
    assert torch.equal(node(x), whole)


def test_module_matches_the_oracle_with_its_own_parameters():
    node = LIF(tau=3.0, decay_input=False, v_threshold=0.7, v_reset=None, surrogate="atan",
               alpha=3.0, detach_reset=True, step_mode="m")
    x = torch.randn(5, 4, dtype=torch.float64)
    s_ref, v_ref = oracle(x, torch.zeros(4, dtype=torch.float64), node.params, 1 / 3.0)
    assert torch.equal(node(x), s_ref) and torch.equal(node.v, v_ref)


@given(layers=st.integers(1, 3), batch=st.integers(1, 4), T=st.integers(1, 5))
def test_plif_tau_gradients_with_several_layers_and_batches(layers, batch, T):
    torch.manual_seed(layers * 100 + batch * 10 + T)
    dims = [6] * (layers + 1)
    lin = [nn.Linear(dims[i], dims[i + 1]).double() for i in range(layers)]
    plifs = [PLIF(init_tau=1.5 + i, step_mode="m") for i in range(layers)]
    x = torch.randn(T, batch, 6, dtype=torch.float64) * 2

    def run(neuron_fn):
        h = x
        for i in range(layers):
            h = neuron_fn(i, TimeDistributed(lin[i])(h))
        return h.sum()

    ours = torch.autograd.grad(run(lambda i, h: plifs[i].double()(h)),
                               [p.w for p in plifs])
    for p in plifs:
        p.reset()
    ref = torch.autograd.grad(
        run(lambda i, h: oracle(h, torch.zeros(h.shape[1:], dtype=torch.float64),
                                plifs[i].params, torch.sigmoid(plifs[i].w))[0]),
        [p.w for p in plifs])
    for a, b in zip(ours, ref, strict=True):
        assert rel_err(a, b) < 1e-10


def test_leak_factor_convenience_is_lif_without_input_decay():
    node = LIF.from_leak(0.75, v_reset=None, step_mode="m")
    assert node.params.leak == 0.25 and not node.decay_input
    x = torch.rand(6, 10, dtype=torch.float64)
    v, spikes = torch.zeros(10, dtype=torch.float64), []
    for xt in x:  # snnTorch-style: H = beta * V + X, subtract on spike
        h = 0.75 * v + xt
        s = (h >= 1.0).double()
        v = h - s
        spikes.append(s)
    torch.testing.assert_close(node(x), torch.stack(spikes), rtol=0, atol=0)
    with pytest.raises(ValueError, match="leak_factor"):
        LIF.from_leak(1.5)


def test_time_distributed_and_multi_step_batchnorm():
    x = torch.randn(4, 3, 2, 5, 5)
    conv = nn.Conv2d(2, 6, 3, padding=1)
    y = TimeDistributed(conv)(x)
    assert torch.equal(y, conv(x.flatten(0, 1)).view(4, 3, 6, 5, 5))
    bn, ref = MultiStepBatchNorm2d(6), nn.BatchNorm2d(6)
    ref.load_state_dict(bn.state_dict())
    torch.testing.assert_close(bn(y), ref(y.flatten(0, 1)).view_as(y))
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    with pytest.raises(ValueError, match=r"\[T, B"):
        TimeDistributed(nn.Identity())(torch.randn(3))


def test_extra_repr_names_the_parameters():
    text = repr(PLIF(init_tau=2.0, surrogate="triangle"))
    assert "tau=2" in text and "triangle" in text and "step_mode='s'" in text


def test_rate_forward_of_a_module_keeps_state():
    node = LIF(step_mode="m")
    x = torch.rand(4, 3, 7)
    out = node.rate_forward(x)
    assert torch.equal(out.spikes, LIF(step_mode="m")(x))
    assert torch.equal(node.v, out.v)


def test_reset_returns_the_model_and_reaches_nested_neurons():
    model = nn.Sequential(nn.Sequential(LIF()), IF())
    model(torch.rand(2, 3))
    assert snnrs.nn.reset(model) is model
    assert all(m.v is None for m in model.modules() if isinstance(m, snnrs.nn.BaseNode))


@pytest.mark.parametrize("kind", ["if", "lif", "plif"])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_float32_module_matches_the_float64_oracle(kind, v_reset):
    node = _node(kind, "m", v_reset=v_reset, surrogate="atan")
    x = torch.randn(6, 50, generator=torch.Generator().manual_seed(3)) * 2
    spikes = node(x)
    w = getattr(node, "w", None)
    leak = torch.sigmoid(w.detach().double()) if w is not None else node.params.leak
    exact, v_exact = oracle(x.double(), torch.full((50,), v_reset or 0.0, dtype=torch.float64),
                            node.params, leak)
    # Where the float64 charge comes within rounding of the threshold, float32 may fire
    # differently; nowhere else.
    h = reference.forward(x.double(), torch.full((50,), v_reset or 0.0, dtype=torch.float64),
                          w if w is None else w.detach().double(), node.params)[2]
    near = ((h - node.v_threshold).abs() < 1e-4).any(0)
    assert near.double().mean() < 0.1
    assert torch.equal(spikes[:, ~near], exact[:, ~near].float())
    assert spikes.dtype == torch.float32
    torch.testing.assert_close(node.v[~near].double(), v_exact[~near], rtol=1e-5, atol=1e-5)
