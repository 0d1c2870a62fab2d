"""The event convolution (snnrs.event_conv) against torch's dense convolution in float64.

Each result is held to a float32 summation bound: a float32 sum of ``K`` terms is within
``K * eps * sum |term|`` of the exact one, and the float64 oracle is exact enough to stand for it.
``sum |term|`` is the same convolution of the absolute values.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs.event_conv import event_conv2d, event_conv2d_weight

EPS = torch.finfo(torch.float32).eps


@st.composite
def convolutions(draw):
    groups = draw(st.sampled_from([1, 2, 4]))
    c_in = groups * draw(st.integers(1, 20 // groups))
    c_out = groups * draw(st.integers(1, 20 // groups))
    k = draw(st.sampled_from([1, 3, 5]))
    padding = draw(st.integers(0, 2))
    h = draw(st.integers(max(1, k - 2 * padding), 13))
    w = draw(st.integers(max(1, k - 2 * padding), 13))
    stride = draw(st.sampled_from([1, 2, 3, (1, 2), (3, 1)]))
    density = draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0))
    return dict(n=draw(st.integers(1, 3)), c_in=c_in, c_out=c_out, h=h, w=w, k=k,
                stride=stride, padding=padding, groups=groups, density=density,
                bias=draw(st.booleans()))


def spikes(n, c, h, w, density, generator=None):
    return (torch.rand(n, c, h, w, generator=generator) < density).float()


def assert_within(got, want, bound, terms, what):
    """``|got - want| <= terms * eps * bound`` elementwise (plus a denormal's worth)."""
    err = (got.double() - want).abs()
    limit = terms * EPS * bound + 1e-30
    worst = (err - limit).max().item() if err.numel() else 0.0
    assert worst <= 0, f"{what}: error {err.max().item():.3g} over the float32 bound"


def check(x, weight, bias, stride, padding, groups):
    """Forward and the three gradients against float64 autograd of F.conv2d."""
    w = weight.detach().clone().requires_grad_()
    b = None if bias is None else bias.detach().clone().requires_grad_()
    y = event_conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    x64 = x.double().requires_grad_()
    w64 = w.detach().double().requires_grad_()
    b64 = None if b is None else b.detach().double().requires_grad_()
    y64 = F.conv2d(x64, w64, b64, stride=stride, padding=padding, groups=groups)
    assert y.shape == y64.shape and y.dtype == torch.float32
    kh, kw = weight.shape[2:]
    k_terms = weight.shape[1] * kh * kw + 1
    y_abs = F.conv2d(x.double(), w64.detach().abs(), None if b is None else b64.detach().abs(),
                     stride=stride, padding=padding, groups=groups)
    assert_within(y, y64.detach(), y_abs, k_terms, "forward")

    gy = torch.randn(y.shape)
    x_in = x.clone().requires_grad_()
    y = event_conv2d(x_in, w, b, stride=stride, padding=padding, groups=groups)
    y.backward(gy)
    y64.backward(gy.double())
    gy_abs = gy.double().abs()
    pixels = y.shape[0] * y.shape[2] * y.shape[3]
    gw_abs = torch.nn.grad.conv2d_weight(x.double(), weight.shape, gy_abs, stride, padding,
                                         groups=groups)
    assert_within(w.grad, w64.grad, gw_abs, pixels, "weight gradient")
    gx_abs = torch.nn.grad.conv2d_input(x.shape, w64.detach().abs(), gy_abs, stride, padding,
                                        groups=groups)
    fan_out = weight.shape[0] // groups * kh * kw
    assert_within(x_in.grad, x64.grad, gx_abs, fan_out, "input gradient")
    if b is not None:
        assert_within(b.grad, b64.grad, gy_abs.sum((0, 2, 3)), pixels, "bias gradient")


@settings(max_examples=60, deadline=None)
@given(convolutions(), st.integers(0, 2**31 - 1))
def test_matches_the_dense_convolution(c, seed):
    g = torch.Generator().manual_seed(seed)
    x = spikes(c["n"], c["c_in"], c["h"], c["w"], c["density"], g)
    weight = torch.randn(c["c_out"], c["c_in"] // c["groups"], c["k"], c["k"], generator=g)
    bias = torch.randn(c["c_out"], generator=g) if c["bias"] else None
    check(x, weight, bias, c["stride"], c["padding"], c["groups"])


@pytest.mark.parametrize("fill", [0.0, 1.0])
@pytest.mark.parametrize("groups", [1, 4])
def test_all_zero_and_all_one_inputs(fill, groups):
    x = torch.full((2, 8, 9, 7), fill)
    weight = torch.randn(12, 8 // groups, 3, 3)
    check(x, weight, torch.randn(12), (2, 1), 1, groups)


def test_wide_layers_use_every_block():
    """Output channels past one 64-channel block and a group width not a multiple of 16."""
    x = spikes(2, 24, 6, 6, 0.3)
    check(x, torch.randn(150, 12, 3, 3), torch.randn(150), 1, 1, 2)


@pytest.mark.parametrize(("c_in", "k"), [(128, 3), (64, 5)])
def test_wide_inputs_sum_the_taps_in_several_passes(c_in, k):
    """Enough input channels that the forward splits the kernel's taps into passes."""
    x = spikes(2, c_in, 7, 6, 0.2)
    check(x, torch.randn(40, c_in, k, k), None, 1, k // 2, 1)


def test_non_contiguous_inputs():
    x = spikes(3, 6, 10, 2, 0.4).permute(3, 1, 2, 0)  # [2, 6, 10, 3], not contiguous
    weight = torch.randn(3, 3, 5, 4).transpose(0, 3)[:, :, :, :3]  # [4, 3, 5, 3]
    assert not x.is_contiguous() and not weight.is_contiguous()
    check(x, weight, torch.randn(8)[::2], 1, (2, 1), 2)


def test_weight_gradient_alone():
    x = spikes(2, 4, 7, 7, 0.3)
    gy = torch.randn(2, 6, 4, 4)
    want = torch.nn.grad.conv2d_weight(x.double(), (6, 2, 3, 3), gy.double(), 2, 1, groups=2)
    got = event_conv2d_weight(x, (6, 2, 3, 3), gy, stride=2, padding=1, groups=2)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


def test_empty_batch():
    x = torch.zeros(0, 3, 5, 5)
    y = event_conv2d(x, torch.randn(4, 3, 3, 3), torch.randn(4))
    assert y.shape == (0, 4, 3, 3)


@pytest.mark.parametrize("value", [0.5, -0.0, math.nan, 2.0, -1.0, math.inf])
def test_refuses_what_is_not_spikes(value):
    x = torch.zeros(2, 3, 5, 5)
    x[1, 2, 3, 4] = value
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    index = 1 * 75 + 2 * 25 + 3 * 5 + 4
    with pytest.raises(ValueError, match=f"must be spikes.*element {index} "):
        event_conv2d(x, w)
    with pytest.raises(ValueError, match="must be spikes"):
        event_conv2d_weight(x, w.shape, torch.zeros(2, 4, 3, 3))


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), [
    ((torch.zeros(1, 3, 5, 5, dtype=torch.float64), torch.zeros(4, 3, 3, 3)), {}, TypeError,
     "x must be float32"),
    ((torch.zeros(1, 3, 5, 5), torch.zeros(4, 3, 3, 3, dtype=torch.float16)), {}, TypeError,
     "weight must be float32"),
    ((torch.zeros(3, 5, 5), torch.zeros(4, 3, 3, 3)), {}, ValueError, "x must be 4-D"),
    ((torch.zeros(1, 3, 5, 5), torch.zeros(4, 3, 3)), {}, ValueError, "weight must be 4-D"),
    ((torch.zeros(1, 3, 5, 5), torch.zeros(4, 2, 3, 3)), {}, ValueError,
     "expects 2 input channels"),
    ((torch.zeros(1, 4, 5, 5), torch.zeros(6, 2, 3, 3)), {"groups": 4}, ValueError,
     "groups \\(4\\) must divide"),
    ((torch.zeros(1, 4, 5, 5), torch.zeros(6, 4, 3, 3)), {"groups": 0}, ValueError,
     "groups must be a positive int"),
    ((torch.zeros(1, 3, 2, 5), torch.zeros(4, 3, 3, 3)), {}, ValueError, "exceeds the padded"),
    ((torch.zeros(1, 3, 5, 5), torch.zeros(4, 3, 3, 3)), {"stride": 0}, ValueError,
     "stride must be >= 1"),
    ((torch.zeros(1, 3, 5, 5), torch.zeros(4, 3, 3, 3)), {"padding": (1, 2, 3)}, TypeError,
     "padding must be an int or a pair"),
    ((torch.zeros(1, 3, 5, 5), torch.zeros(4, 3, 3, 3), torch.zeros(5)), {}, ValueError,
     "bias has 5 elements"),
    (([[0.0]], torch.zeros(4, 3, 3, 3)), {}, TypeError, "x must be a tensor"),
])
def test_refuses_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        event_conv2d(*args, **kwargs)


def test_core_checks_buffers_against_the_geometry():
    """The Rust layer refuses buffers that do not fit the stated geometry, whatever Python says."""
    from snnrs import _core
    from snnrs.backends._native import buf

    x, w, y = torch.zeros(1, 3, 5, 5), torch.zeros(4, 3, 3, 3), torch.zeros(1, 4, 3, 3)
    ctx = _core.Cpu(1)
    with pytest.raises(ValueError, match="y has 36 elements, expected 100"):
        _core.event_conv2d(ctx, (1, 3, 5, 5, 4, 3, 3), (1, 1), (1, 1), 1, x=buf(x),
                           weight=buf(w), y=buf(y))
    with pytest.raises(ValueError, match="overlap"):
        _core.event_conv2d(ctx, (1, 3, 5, 5, 4, 3, 3), (1, 1), (0, 0), 1, x=buf(x),
                           weight=buf(w), y=buf(x.reshape(-1)[:36]))
    with pytest.raises(ValueError, match="too large"):
        _core.event_conv2d(ctx, (2**62, 3, 5, 5, 4, 3, 3), (1, 1), (0, 0), 1, x=buf(x),
                           weight=buf(w), y=buf(y))
    with pytest.raises(TypeError, match="needs the buffer 'y'"):
        _core.event_conv2d(ctx, (1, 3, 5, 5, 4, 3, 3), (1, 1), (0, 0), 1, x=buf(x),
                           weight=buf(w))
