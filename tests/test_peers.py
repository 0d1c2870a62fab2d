"""snnrs neurons against SpikingJelly and snnTorch, and replace_neurons (skipped if absent)."""

from __future__ import annotations

import pytest
import snnrs
import torch
from snnrs.nn import Unsupported, replace_neurons
from snnrs.nn.replace import spikingjelly_surrogate
from torch import nn

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, neuron, surrogate  # noqa: E402

SJ_CASES = [
    lambda m: neuron.IFNode(step_mode=m),
    lambda m: neuron.IFNode(v_reset=None, surrogate_function=surrogate.ATan(), step_mode=m),
    lambda m: neuron.LIFNode(tau=2.0, step_mode=m),
    lambda m: neuron.LIFNode(tau=3.0, decay_input=False, v_reset=None, detach_reset=True,
                             surrogate_function=surrogate.PiecewiseQuadratic(alpha=2.0),
                             step_mode=m),
    lambda m: neuron.LIFNode(tau=1.5, v_threshold=0.5, v_reset=-0.1,
                             surrogate_function=surrogate.Rect(alpha=0.5), step_mode=m),
    lambda m: neuron.ParametricLIFNode(init_tau=3.0, step_mode=m),
    lambda m: neuron.ParametricLIFNode(init_tau=2.0, decay_input=False, v_reset=None,
                                       surrogate_function=surrogate.Sigmoid(alpha=2.0),
                                       step_mode=m),
]


def _model(node):
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(10, 16), node, nn.Linear(16, 3)).double()


@pytest.mark.parametrize("case", range(len(SJ_CASES)))
@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_replaced_spikingjelly_model_gives_identical_outputs_and_gradients(case, step_mode):
    theirs = _model(SJ_CASES[case](step_mode))
    ours = replace_neurons(_model(SJ_CASES[case](step_mode)))
    assert isinstance(ours[1], snnrs.nn.BaseNode) and ours[1].step_mode == step_mode
    x = torch.randn(6, 4, 10, dtype=torch.float64) * 2

    def run(model):
        functional.reset_net(model)
        snnrs.nn.reset(model)
        model.zero_grad()
        out = model(x) if step_mode == "m" else torch.stack([model(xt) for xt in x])
        (out * torch.linspace(-1, 1, 3, dtype=torch.float64)).sum().backward()
        return out.detach(), [p.grad for p in model.parameters()]

    out_t, grads_t = run(theirs)
    out_o, grads_o = run(ours)
    torch.testing.assert_close(out_o, out_t, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_o, grads_t, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_unsupported_spikingjelly_surrogate_is_named_or_kept():
    model = nn.Sequential(neuron.LIFNode(surrogate_function=surrogate.Erf()))
    with pytest.raises(Unsupported, match="Erf"):
        replace_neurons(model)
    with pytest.warns(UserWarning, match="Erf"):
        replace_neurons(model, strict=False)
    assert isinstance(model[0], neuron.LIFNode)


@pytest.mark.parametrize("name", ["sigmoid", "atan", "triangle", "rectangle"])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 4.0])
def test_spikingjelly_surrogate_is_what_replace_neurons_reads_back(name, alpha):
    node = neuron.LIFNode(tau=2.0, step_mode="m",
                          surrogate_function=spikingjelly_surrogate(name, alpha))
    ours = replace_neurons(nn.Sequential(node))[0]
    assert ours.surrogate == name
    assert ours.alpha == pytest.approx(alpha, rel=1e-12)


def test_surrogate_without_spikingjelly_equivalent_is_refused():
    with pytest.raises(Unsupported, match="fast_sigmoid has no SpikingJelly equivalent"):
        spikingjelly_surrogate("fast_sigmoid", 25.0)


snntorch = pytest.importorskip("snntorch")


def test_replaced_snntorch_leaky_gives_identical_spikes():
    torch.manual_seed(2)
    leaky = snntorch.Leaky(beta=0.8, reset_mechanism="zero", reset_delay=False)
    x = torch.rand(10, 3, 7, dtype=torch.float64) * 0.7
    ours = replace_neurons(nn.Sequential(snntorch.Leaky(beta=0.8, reset_mechanism="zero",
                                                        reset_delay=False)))[0]
    assert isinstance(ours, snnrs.nn.SnnTorchLeaky)
    mem_t = mem_o = None
    for xt in x:
        spk_t, mem_t = leaky(xt, mem_t) if mem_t is not None else leaky(xt)
        spk_o, mem_o = ours(xt, mem_o)
        # snnTorch spikes are float32 whatever the input dtype
        torch.testing.assert_close(spk_o, spk_t.to(spk_o.dtype), rtol=0, atol=0)
        torch.testing.assert_close(mem_o, mem_t, rtol=1e-12, atol=1e-12)


def test_snntorch_leaky_with_delayed_reset_is_refused():
    with pytest.raises(Unsupported, match="reset_delay"):
        replace_neurons(nn.Sequential(snntorch.Leaky(beta=0.8)))

