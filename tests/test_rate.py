"""Rate-based backprop: exact values, BPTT's gradient where it must agree, straight-through BN,
memory flat in T, and a model left as it was."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import leak_of, neuron_params, oracle, rel_err
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs import models
from snnrs.distill import RateBackprop, rate_forward
from snnrs.distill.rate import batch_norm_rate
from snnrs.models import Head, Spiking, StagedNet, Steps
from snnrs.nn import IF, LIF, PLIF, memory
from torch import nn

F64 = torch.float64


def image_shape(name: str) -> tuple[int, int, int]:
    if name == "convnet":
        return (1, 8, 8)
    return (3, 16, 16) if name.startswith("vgg") else (3, 8, 8)


def small(name: str, **options) -> StagedNet:
    if name.startswith("joint_"):
        options.setdefault("width", 4)
    return models.create(name, kind="snn", **options).to(F64)


def assert_matches_normal_forward(net: StagedNet, x: torch.Tensor) -> None:
    """The rate pass's logits and stage rates equal the spike pass's time averages, as the
    model's own forward computes them on an untouched copy."""
    expected = copy.deepcopy(net).forward_features(x)
    out = rate_forward(net, x)
    torch.testing.assert_close(out.spike_logits, expected.logits, rtol=0, atol=0)
    torch.testing.assert_close(out.logits, expected.logits, rtol=1e-10, atol=1e-12)
    for r, s in zip(out.stages, expected.stages, strict=True):
        torch.testing.assert_close(r, s.mean(0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", models.list_models())
def test_rate_logits_equal_the_time_averaged_spike_logits_for_every_model(name):
    # joint_* are StagedNets too (JointNet, main head in SNN mode): supported.
    net = small(name, T=3, v_threshold=0.5)
    assert_matches_normal_forward(net, torch.rand(2, *image_shape(name), dtype=F64))


@pytest.mark.parametrize(("name", "options"), [
    ("convnet", {"pool": "max"}),
    ("vgg11", {"pool": "max", "last_relu": True}),
    ("resnet20", {"last_relu": True, "readout": "sum"}),
    ("resnet20", {"residual": "before_add", "neuron": "if", "v_reset": None}),
    ("resnet20", {"neuron": "plif", "detach_reset": True, "surrogate": "atan"}),
    ("convnet", {"leak": 0.8, "v_reset": None, "readout": "sum"}),
])
def test_rate_logits_are_exact_with_max_pools_relus_sum_readouts_and_any_neuron(name, options):
    net = small(name, T=4, v_threshold=0.4, **options)
    assert_matches_normal_forward(net, torch.rand(2, *image_shape(name), dtype=F64))


def one_layer(node: nn.Module, T: int, classes: int = 4) -> StagedNet:
    """Image = the constant input current of one spiking layer; then pool + linear."""
    steps = Steps(T)
    return StagedNet(nn.Identity(), Spiking(node, steps), [], Head(nn.Linear(3, classes)),
                     steps=steps).to(F64)


def node_of(kind: str, params, w: float) -> nn.Module:
    node = {"if": IF, "lif": LIF, "plif": PLIF}[kind](step_mode="m").to(F64)
    node.params = params
    if kind == "plif":
        node.w.data.fill_(w)
    return node


@given(neuron_params(), st.integers(1, 8), st.integers(0, 2**16))
@settings(max_examples=30)
def test_one_layer_with_a_constant_input_gets_bptts_gradient(params, T, seed):
    kind, p, w = params
    node = node_of(kind, p, w)
    net = one_layer(node, T)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 2, 2, generator=g, dtype=F64) * 3 - 0.5
    gz = torch.randn(2, 4, generator=g, dtype=F64)

    x_rate = x.clone().requires_grad_()
    (RateBackprop(net, grad_scale=1.0)(x_rate) * gz).sum().backward()

    x_bptt = x.clone().requires_grad_()
    rest = torch.full_like(x, 0.0 if p.v_reset is None else p.v_reset)
    spikes, _ = oracle(x_bptt.expand(T, *x.shape), rest, p, leak_of(kind, p, node._w()))
    (net.head(spikes.mean(0)) * gz).sum().backward()
    assert rel_err(x_rate.grad, x_bptt.grad) < 1e-10


@pytest.mark.parametrize(("name", "options"), [("resnet20", {}), ("convnet", {"pool": "max"})])
def test_at_one_step_the_whole_network_gets_bptts_gradients(name, options):
    # T = 1: eligibility = surrogate, spike-pass statistics = averaged ones, mean = max.
    net = small(name, T=1, v_threshold=0.3, **options)
    twin = copy.deepcopy(net)
    x, y = torch.rand(2, *image_shape(name), dtype=F64), torch.tensor([1, 2])
    nn.functional.cross_entropy(RateBackprop(net)(x), y).backward()
    nn.functional.cross_entropy(twin(x), y).backward()
    for (key, a), b in zip(net.named_parameters(), twin.parameters(), strict=True):
        assert rel_err(a.grad, b.grad) < 1e-9, key


def test_the_loss_gradient_is_scaled_by_one_over_T():
    net = small("resnet20", T=4)
    x = torch.rand(2, 3, 8, 8, dtype=F64)
    grads = []
    for scale in (None, 1.0):
        net.zero_grad()
        RateBackprop(net, grad_scale=scale)(x).square().sum().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for scaled, plain in zip(*grads, strict=True):
        torch.testing.assert_close(scaled, plain / 4, rtol=1e-10, atol=1e-14)


def straight_through_bn(x, mean_s, var_s, bn):
    """The oracle: spike-pass statistics as values, the average's in the autograd graph."""
    var_x, mean_x = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    mu = (mean_s + (mean_x - mean_x.detach())).view(-1, 1, 1)
    var = (var_s + (var_x - var_x.detach())).view(-1, 1, 1)
    y = (x - mu) / (var + bn.eps).sqrt()
    return y * bn.weight.view(-1, 1, 1) + bn.bias.view(-1, 1, 1) if bn.affine else y


@given(st.integers(0, 2**16), st.booleans())
@settings(max_examples=10)
def test_batch_norm_takes_its_value_from_the_spike_pass_and_its_gradient_from_the_average(
        seed, affine):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 2, 4, 4, generator=g, dtype=F64).requires_grad_()
    mean_s = torch.rand(2, generator=g, dtype=F64)
    var_s = torch.rand(2, generator=g, dtype=F64) + 0.05
    bn = nn.BatchNorm2d(2, affine=affine).to(F64)
    for p in bn.parameters():
        nn.init.normal_(p)
    leaves = (x, *bn.parameters())
    stats = [b.clone() for b in bn.buffers()]
    y = batch_norm_rate(x, mean_s, var_s, bn)
    gy = torch.randn(y.shape, generator=g, dtype=F64)
    (y * gy).sum().backward()
    grads = [t.grad.clone() for t in leaves]

    view = (1, 2, 1, 1)
    gamma = bn.weight.detach().view(view) if affine else 1.0
    beta = bn.bias.detach().view(view) if affine else 0.0
    s = (var_s + bn.eps).rsqrt().view(view)
    xd, centred = x.detach(), x.detach() - mean_s.view(view)
    torch.testing.assert_close(y, centred * s * gamma + beta, rtol=1e-12, atol=1e-12)

    def avg(t):
        return t.mean(dim=(0, 2, 3), keepdim=True)

    # Closed form of d/dx with d mu/dx = 1/n, d var/dx = 2 (x - mean(x)) / n.
    expected = gamma * s * (gy - avg(gy) - s**2 * (xd - avg(xd)) * avg(gy * centred))
    torch.testing.assert_close(grads[0], expected, rtol=1e-10, atol=1e-12)
    for t in leaves:
        t.grad = None
    (straight_through_bn(x, mean_s, var_s, bn) * gy).sum().backward()
    for a, t in zip(grads, leaves, strict=True):
        torch.testing.assert_close(a, t.grad, rtol=1e-10, atol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(stats, bn.buffers(), strict=True))


def test_running_statistics_update_once_per_step_from_the_spike_pass():
    net = small("resnet20", T=4)
    twin = copy.deepcopy(net)
    x = torch.rand(2, 3, 8, 8, dtype=F64)
    bn = net.stages[1][0].bn1
    outputs = []
    handle = bn.register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
    RateBackprop(net)(x).sum().backward()
    handle.remove()
    twin(x)  # one normal training forward
    for key, value in twin.state_dict().items():
        if "running" in key or "num_batches" in key:
            assert torch.equal(net.state_dict()[key], value), key
    assert net.stages[1][0].bn1.num_batches_tracked == 1
    spike, rate = outputs  # the hook saw the spike pass [T * B], then the rate pass [B]
    torch.testing.assert_close(rate, spike.unflatten(0, (4, 2)).mean(0), rtol=1e-10, atol=1e-12)


def test_in_eval_mode_batch_norms_use_running_statistics_and_nothing_updates():
    net = small("resnet20", T=3).eval()
    twin = copy.deepcopy(net)
    x = torch.rand(2, 3, 8, 8, dtype=F64)
    logits = RateBackprop(net)(x)
    torch.testing.assert_close(logits, twin(x), rtol=1e-10, atol=1e-12)
    logits.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    for key, value in twin.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key
    with torch.no_grad():  # evaluation is the normal forward
        assert torch.equal(RateBackprop(net)(x), twin(x))


def saved_activation_bytes(fn) -> int:
    """Bytes of the distinct storages, parameters excluded, autograd keeps while ``fn`` runs
    (at the network's memory level)."""
    with memory.count_saved() as kept:
        fn()
    return kept.bytes


def test_saved_memory_is_flat_in_T_while_bptts_grows():
    x = torch.rand(2, 3, 8, 8)
    rate, bptt = {}, {}
    for T in (2, 16):
        net = models.create("resnet20", kind="snn", T=T)
        rate[T] = saved_activation_bytes(lambda net=net: RateBackprop(net)(x))
        bptt[T] = saved_activation_bytes(lambda net=net: net(x))
    assert abs(rate[16] - rate[2]) <= 0.1 * rate[2]
    assert bptt[16] > 6 * bptt[2]
    assert rate[2] < bptt[2]


def assert_left_as_it_was(net: nn.Module) -> None:
    for name, m in net.named_modules():
        assert "forward" not in m.__dict__, name
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks), name


def test_the_model_trains_and_infers_normally_afterwards():
    net = small("resnet20", T=2)
    x, y = torch.rand(2, 3, 8, 8, dtype=F64), torch.tensor([0, 3])
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    nn.functional.cross_entropy(RateBackprop(net)(x), y).backward()
    opt.step()
    assert_left_as_it_was(net)
    twin = models.create("resnet20", kind="snn", T=2).to(F64)
    twin.load_state_dict(net.state_dict())
    for m in (net, twin):
        m.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
    for a, b in zip(net.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)
    with pytest.raises(RuntimeError):  # a failure inside a pass still restores the model
        RateBackprop(net)(torch.rand(2, 5, 8, 8, dtype=F64))
    assert_left_as_it_was(net)
    assert torch.equal(net.eval()(x), twin.eval()(x))


def test_bad_models_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="SNN form"):
        RateBackprop(models.create("convnet", kind="ann"))
    with pytest.raises(ValueError, match="StagedNet"):
        RateBackprop(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="grad_scale"):
        RateBackprop(models.create("convnet"), grad_scale=0.0)
    with pytest.raises(ValueError, match=r"images \[B, C, H, W\]"):
        RateBackprop(models.create("convnet"))(torch.rand(1, 28, 28))
    bare = StagedNet(nn.Identity(), LIF(step_mode="m"), [], Head(nn.Linear(3, 2)),
                     steps=Steps(1))
    with pytest.raises(ValueError, match="outside a Spiking layer"):
        RateBackprop(bare)


def test_rate_based_training_fits_a_batch():
    net = models.create("convnet", kind="snn", T=4, v_threshold=0.5)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    step, opt = RateBackprop(net), torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(20):
        opt.zero_grad()
        nn.functional.cross_entropy(step(x), y).backward()
        opt.step()
    with torch.no_grad():
        assert (net(x).argmax(1) == y).float().mean() > 0.8
