"""The Rust-backed ops against the autograd oracle of snnrs.reference (NEURONS.md)."""

from __future__ import annotations

import pytest
import torch
from helpers import leak_of, neuron_params, oracle, rel_err, shapes
from hypothesis import given
from hypothesis import strategies as st
from snnrs import ops

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _inputs(kind, w0, T, rest, scale, dtype):
    x = torch.randn(T, *rest, dtype=dtype) * scale + 0.4 * scale
    v0 = torch.randn(rest, dtype=dtype) * 0.5
    w = torch.tensor(w0, dtype=dtype) if kind == "plif" else None
    return x, v0, w


def _run_with_grads(fn, x, v0, w, g, gv):
    x, v0 = x.clone().requires_grad_(), v0.clone().requires_grad_()
    w = None if w is None else w.clone().requires_grad_()
    s, v = fn(x, v0, w)
    ((s * g).sum() + (v * gv).sum()).backward()
    return s.detach(), v.detach(), x.grad, v0.grad, None if w is None else w.grad


@given(cfg=neuron_params(), T=st.integers(1, 6), rest=shapes, scale=st.floats(0.3, 3.0),
       dtype=st.sampled_from([torch.float64, torch.float32]))
def test_spikes_state_and_gradients_match_the_oracle(cfg, T, rest, scale, dtype):
    kind, p, w0 = cfg
    x, v0, w = _inputs(kind, w0, T, rest, scale, dtype)
    g, gv = torch.randn_like(x), torch.randn_like(v0)
    ours = _run_with_grads(lambda x, v0, w: ops.multistep(x, v0, p, w), x, v0, w, g, gv)
    ref = _run_with_grads(lambda x, v0, w: oracle(x, v0, p, leak_of(kind, p, w)), x, v0, w, g, gv)
    assert torch.equal(ours[0], ref[0]), "spikes differ"
    for name, a, b in zip(("v", "dx", "dv0", "dw"), ours[1:], ref[1:], strict=True):
        if b is not None:
            assert rel_err(a, b) <= TOL[dtype], name


@given(cfg=neuron_params(), T=st.integers(1, 8), n=st.integers(1, 40), scale=st.floats(0.3, 3.0),
       dtype=st.sampled_from([torch.float64, torch.float32]))
def test_rate_mode_eligibility_is_the_bptt_derivative_of_the_rate(cfg, T, n, scale, dtype):
    kind, p, w0 = cfg
    c = (torch.randn(n, dtype=dtype) * scale + 0.5 * scale).requires_grad_()
    v0 = torch.zeros(n, dtype=dtype) + (p.v_reset or 0.0)
    w = torch.tensor(w0, dtype=dtype) if kind == "plif" else None
    spikes, v = oracle(c.expand(T, n), v0, p, leak_of(kind, p, w))
    spikes.mean(0).sum().backward()
    out = ops.rate(c.detach().expand(T, n), v0, p, w)
    assert torch.equal(out.spikes, spikes.detach())
    assert torch.equal(out.rate, spikes.detach().mean(0))
    assert rel_err(out.v, v.detach()) <= TOL[dtype]
    assert rel_err(out.eligibility, c.grad) <= 10 * TOL[dtype]


@pytest.mark.parametrize("surrogate", ["triangle", "rectangle"])
@pytest.mark.parametrize("kind", ["if", "lif", "plif"])
@pytest.mark.parametrize("decay_input", [True, False])
def test_gradcheck_below_threshold(kind, surrogate, decay_input):
    # Far below threshold these surrogates are exactly 0, so autograd's answer is the true one.
    p = ops.make_params(0.0 if kind != "lif" else 0.4, decay_input and kind != "if", 50.0, 0.1,
                        False, surrogate, 1.0)
    x = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    v0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(0.3, dtype=torch.float64, requires_grad=True) if kind == "plif" else None
    inputs = (x, v0) if w is None else (x, v0, w)
    assert torch.autograd.gradcheck(lambda *a: ops.multistep(a[0], a[1], p, *a[2:]), inputs)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_do_not_depend_on_the_thread_count(threads):
    p = ops.make_params(0.5)
    x = torch.randn(6, 3 * 2048 + 77, requires_grad=True)
    w = torch.tensor(0.2, requires_grad=True)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        s1, v1 = ops.multistep(x, None, p, w)
        (s1.sum() + v1.sum()).backward()
        g1, gw1 = x.grad.clone(), w.grad.clone()
        x.grad = w.grad = None
        torch.set_num_threads(threads)
        s2, v2 = ops.multistep(x, None, p, w)
        (s2.sum() + v2.sum()).backward()
    finally:
        torch.set_num_threads(before)
    assert torch.equal(s1, s2) and torch.equal(v1, v2)
    assert torch.equal(g1, x.grad) and torch.equal(gw1, w.grad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32(dtype):
    x = torch.randn(4, 50).to(dtype).requires_grad_()
    s, v = ops.lif(x)
    s.sum().backward()
    x32 = x.detach().float().requires_grad_()
    s32, _ = ops.lif(x32)
    s32.sum().backward()
    assert s.dtype == v.dtype == x.grad.dtype == dtype
    h_seq = torch.ops.snnrs.neuron_forward(x.detach(), v.detach(), None, 0.5, True, 1.0, 0.0,
                                           False, "sigmoid", 4.0)[2]
    assert h_seq.dtype == torch.float32  # saved at full precision: spikes recompute exactly
    assert torch.equal(s.float(), s32)
    torch.testing.assert_close(x.grad.float(), x32.grad, rtol=2e-2, atol=2e-2)


def test_layouts_non_contiguous_and_channels_last_give_the_same_result():
    base = torch.randn(3, 2, 4, 5, 6)
    expected, _ = ops.lif(base)
    transposed = base.transpose(3, 4).contiguous().transpose(3, 4)
    channels_last = base.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(
        0, (3, 2))
    for x in (transposed, channels_last, base[:, :, ::1]):
        assert torch.equal(ops.lif(x)[0], expected)
    sliced = torch.randn(3, 10)[:, ::2]
    assert torch.equal(ops.lif(sliced)[0], ops.lif(sliced.contiguous())[0])


def test_t_equals_one_and_empty_tensors():
    x = torch.randn(1, 7, requires_grad=True)
    s, v = ops.lif(x, tau=2.0)
    assert s.shape == (1, 7) and v.shape == (7,)
    for shape in [(0, 3), (4, 0), (4, 2, 0)]:
        e = torch.randn(shape, requires_grad=True)
        s, v = ops.lif(e)
        assert s.shape == shape and v.shape == shape[1:]
        (s.sum() + v.sum()).backward()
        assert e.grad.shape == shape


def test_only_the_charge_sequence_is_saved_for_backward():
    T, N = 8, 4096
    x = torch.randn(T, N, requires_grad=True)
    saved: list[torch.Tensor] = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        ops.lif(x)
    big = [t for t in saved if t.numel() >= T * N]
    assert len(big) == 1 and big[0].dtype == torch.float32
    assert sum(t.numel() * t.element_size() for t in big) <= 4 * T * N


@pytest.mark.parametrize("v_reset", [0.2, None])
def test_the_rust_kernels_equal_their_pytorch_twins(v_reset):
    # The twins in snnrs.reference are the fallback on devices without a native kernel.
    from snnrs import reference

    x, v0, g, gv = torch.randn(5, 300), torch.randn(300), torch.randn(5, 300), torch.randn(300)
    w = torch.tensor(0.3)
    params = (True, 1.0, v_reset, False, "atan", 2.0)
    s, v, h = torch.ops.snnrs.neuron_forward(x, v0, w, 0.0, *params)
    assert all(map(torch.equal, (s, v, h), reference.forward(x, v0, torch.sigmoid(w),
                                                               *params[:3])))
    ours = torch.ops.snnrs.neuron_backward(g, gv, h, v0, w, 0.0, *params)
    twin = reference.backward(g, gv, h, v0, torch.sigmoid(w), *params)
    for a, b in zip(ours, twin, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)
    ours = torch.ops.snnrs.neuron_rate_forward(x, v0, None, 0.4, *params)
    twin = reference.rate_forward(x, v0, 0.4, *params)
    for a, b in zip(ours, twin, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
