"""snnrs.nn.AvgPool2d against torch's avg_pool2d: outputs and input gradients bit-identical, in
the same memory layout (a later layer given another layout may take another kernel)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs.nn import AvgPool2d
from torch.nn import functional as F


def _both(pool: torch.nn.Module, x: torch.Tensor, grad_seed: int):
    """``pool`` and torch's functional pool on copies of ``x``: (outputs, input gradients)."""
    outs, grads = [], []
    for run in (pool, lambda t: F.avg_pool2d(t, pool.kernel_size, pool.stride, pool.padding,
                                            pool.ceil_mode, pool.count_include_pad,
                                            pool.divisor_override)):
        t = x.detach().clone().requires_grad_()
        y = run(t)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(grad_seed),
                        dtype=y.dtype)
        y.backward(g)
        outs.append(y)
        grads.append(t.grad)
    return outs, grads


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 5), h=st.integers(1, 13), w=st.integers(1, 13),
       k=st.integers(1, 4), dtype=st.sampled_from([torch.float32, torch.float64]),
       layout=st.sampled_from(["contiguous", "channels_last", "transposed"]),
       seed=st.integers(0, 2**16))
def test_tiled_pool_equals_torch_bit_for_bit(n, c, h, w, k, dtype, layout, seed):
    if h < k or w < k:
        h, w = max(h, k), max(w, k)
    x = torch.randn(n, c, h, w, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "transposed":
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    (ours, theirs), (g_ours, g_theirs) = _both(AvgPool2d(k), x, seed)
    assert ours.shape == theirs.shape
    assert torch.equal(ours, theirs) and ours.stride() == theirs.stride()
    assert torch.equal(g_ours, g_theirs) and g_ours.stride() == g_theirs.stride()


@pytest.mark.parametrize("args", [dict(kernel_size=3, stride=2), dict(kernel_size=2, padding=1),
                                  dict(kernel_size=2, ceil_mode=True), dict(kernel_size=(2, 3)),
                                  dict(kernel_size=2, divisor_override=3)])
def test_windows_that_do_not_tile_run_torchs_kernel(args):
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    (ours, theirs), (g_ours, g_theirs) = _both(AvgPool2d(**args), x, 0)
    assert torch.equal(ours, theirs) and torch.equal(g_ours, g_theirs)


def test_spikes_and_other_dtypes_and_ranks():
    spikes = (torch.rand(4, 8, 10, 10) < 0.2).float()
    assert torch.equal(AvgPool2d(2)(spikes), F.avg_pool2d(spikes, 2))
    x = torch.randn(3, 8, 8)
    assert torch.equal(AvgPool2d(2)(x), F.avg_pool2d(x, 2))
    b = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16)
    assert torch.equal(AvgPool2d(2)(b), F.avg_pool2d(b, 2))


def test_a_window_larger_than_the_input_is_torchs_error():
    with pytest.raises(RuntimeError, match=r"[Oo]utput size is too small"):
        AvgPool2d(4)(torch.randn(1, 1, 3, 3))
