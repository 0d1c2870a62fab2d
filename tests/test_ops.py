"""The ops on every backend against the autograd oracle of snnrs.reference (docs/neurons.md).

The oracle tests take the ``backend`` fixture (conftest): each runs on the pure-PyTorch twins,
the Rust CPU kernels and, with a GPU, the CUDA kernels.
"""

from __future__ import annotations

import sys

import pytest
import torch
from helpers import leak_of, neuron_params, oracle, rel_err, shapes
from hypothesis import assume, given
from hypothesis import strategies as st
from snnrs import ops

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _inputs(kind, w0, T, rest, scale, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, *rest, dtype=dtype, generator=gen) * scale + 0.4 * scale
    v0 = torch.randn(rest, dtype=dtype, generator=gen) * 0.5
    w = torch.tensor(w0, dtype=dtype) if kind == "plif" else None
    g = torch.randn(x.shape, dtype=dtype, generator=gen)
    gv = torch.randn(v0.shape, dtype=dtype, generator=gen)
    return x, v0, w, g, gv


def _run_with_grads(fn, x, v0, w, g, gv, device="cpu"):
    """Spikes, state and the gradients of a random linear loss, computed on ``device``."""
    x, v0, g, gv = (t.to(device) for t in (x, v0, g, gv))
    x, v0 = x.clone().requires_grad_(), v0.clone().requires_grad_()
    w = None if w is None else w.to(device).clone().requires_grad_()
    s, v = fn(x, v0, w)
    ((s * g).sum() + (v * gv).sum()).backward()
    out = (s.detach(), v.detach(), x.grad, v0.grad, None if w is None else w.grad)
    return tuple(None if t is None else t.cpu() for t in out)


@given(cfg=neuron_params(), T=st.integers(1, 6), rest=shapes, scale=st.floats(0.3, 3.0),
       dtype=st.sampled_from([torch.float64, torch.float32]), seed=st.integers(0, 2**31))
def test_spikes_state_and_gradients_match_the_oracle(backend, cfg, T, rest, scale, dtype, seed):
    kind, p, w0 = cfg
    inputs = _inputs(kind, w0, T, rest, scale, dtype, seed)

    def oracle_fn(x, v0, w):
        return oracle(x, v0, p, leak_of(kind, p, w))

    ours = _run_with_grads(lambda x, v0, w: ops.multistep(x, v0, p, w), *inputs, device=backend)
    ref = _run_with_grads(oracle_fn, *inputs)
    assert torch.equal(ours[0], ref[0]), "spikes differ"
    names = ("v", "dx", "dv0", "dw")
    if dtype == torch.float64:
        for name, a, b in zip(names, ours[1:], ref[1:], strict=True):
            assert b is None or rel_err(a, b) <= TOL[dtype], name
        return
    # float32: the oracle rounds too (the sigmoid surrogate's 1 - s, dw's cancelling sum), so
    # hold ours to the float64 oracle, with the float32 oracle's own error as the yardstick.
    exact = _run_with_grads(oracle_fn, *(None if t is None else t.double() for t in inputs))
    assume(torch.equal(exact[0], ref[0].double()))
    for name, a, b, e in zip(names, ours[1:], ref[1:], exact[1:], strict=True):
        if e is not None:
            yardstick = max(TOL[dtype] * float(e.abs().max()), 4 * float((b - e).abs().max()))
            assert float((a - e).abs().max()) <= yardstick, name


@given(cfg=neuron_params(), T=st.integers(1, 8), n=st.integers(1, 40), scale=st.floats(0.3, 3.0),
       dtype=st.sampled_from([torch.float64, torch.float32]), seed=st.integers(0, 2**31))
def test_rate_mode_eligibility_is_the_bptt_derivative_of_the_rate(backend, cfg, T, n, scale, dtype,
                                                                  seed):
    kind, p, w0 = cfg
    gen = torch.Generator().manual_seed(seed)
    c = torch.randn(n, dtype=dtype, generator=gen) * scale + 0.5 * scale
    w = torch.tensor(w0, dtype=dtype) if kind == "plif" else None

    def rate_and_derivative(c, w):
        c = c.clone().requires_grad_()
        v0 = torch.zeros(n, dtype=c.dtype) + (p.v_reset or 0.0)
        spikes, v = oracle(c.expand(T, n), v0, p, leak_of(kind, p, w))
        spikes.mean(0).sum().backward()
        return spikes.detach(), v.detach(), c.grad

    spikes, v, d_rate = rate_and_derivative(c, w)
    v0 = torch.zeros(n, dtype=dtype, device=backend) + (p.v_reset or 0.0)
    out = ops.rate(c.expand(T, n).to(backend), v0, p, None if w is None else w.to(backend))
    out = ops.RateOutput(*(t.cpu() for t in out))
    assert torch.equal(out.spikes, spikes)
    assert torch.equal(out.rate, spikes.mean(0))
    assert rel_err(out.v, v) <= TOL[dtype]
    if dtype == torch.float64:
        assert rel_err(out.eligibility, d_rate) <= 10 * TOL[dtype]
        return
    # As in the test above: the float64 oracle, with the float32 oracle's error as yardstick.
    exact_spikes, _, exact = rate_and_derivative(c.double(), None if w is None else w.double())
    assume(torch.equal(exact_spikes, spikes.double()))
    yardstick = max(10 * TOL[dtype] * float(exact.abs().max()),
                    4 * float((d_rate - exact).abs().max()))
    assert float((out.eligibility - exact).abs().max()) <= yardstick


@pytest.mark.parametrize("surrogate", ["triangle", "rectangle"])
@pytest.mark.parametrize("kind", ["if", "lif", "plif"])
@pytest.mark.parametrize("decay_input", [True, False])
def test_gradcheck_below_threshold(backend, kind, surrogate, decay_input):
    # Far below threshold these surrogates are exactly 0, so autograd's answer is the true one.
    p = ops.make_params(0.0 if kind != "lif" else 0.4, decay_input and kind != "if", 50.0, 0.1,
                        False, surrogate, 1.0)
    f64 = {"dtype": torch.float64, "device": backend, "requires_grad": True}
    x, v0 = torch.randn(5, 3, 4, **f64), torch.randn(3, 4, **f64)
    w = torch.tensor(0.3, **f64) if kind == "plif" else None
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
def test_half_precision_computes_in_float32(backend, dtype):
    x = torch.randn(4, 50, device=backend).to(dtype).requires_grad_()
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


def test_layouts_non_contiguous_and_channels_last_give_the_same_result(backend):
    base = torch.randn(3, 2, 4, 5, 6, device=backend)
    expected, _ = ops.lif(base)
    transposed = base.transpose(3, 4).contiguous().transpose(3, 4)
    channels_last = base.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(
        0, (3, 2))
    for x in (transposed, channels_last, base[:, :, ::1]):
        assert torch.equal(ops.lif(x)[0], expected)
    sliced = torch.randn(3, 10, device=backend)[:, ::2]
    assert torch.equal(ops.lif(sliced)[0], ops.lif(sliced.contiguous())[0])


def test_t_equals_one_and_empty_tensors(backend):
    x = torch.randn(1, 7, device=backend, requires_grad=True)
    s, v = ops.lif(x, tau=2.0)
    assert s.shape == (1, 7) and v.shape == (7,)
    for shape in [(0, 3), (4, 0), (4, 2, 0)]:
        e = torch.randn(shape, device=backend, requires_grad=True)
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
    # The twins (the reference backend) are the fallback on devices without a native kernel.
    from snnrs.backends import cpu, reference

    x, v0, g, gv = torch.randn(5, 300), torch.randn(300), torch.randn(5, 300), torch.randn(300)
    w = torch.tensor(0.3)
    p = ops.make_params(0.0, True, 1.0, v_reset, False, "atan", 2.0)
    ours, twin = cpu.forward(x, v0, w, p), reference.forward(x, v0, w, p)
    assert all(map(torch.equal, ours, twin))
    h = ours[2]
    for a, b in zip(cpu.backward(g, gv, h, v0, w, p), reference.backward(g, gv, h, v0, w, p),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)
    p = p._replace(leak=0.4)
    for a, b in zip(cpu.rate_forward(x, v0, None, p), reference.rate_forward(x, v0, None, p),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_the_backend_fixture_puts_its_backend_behind_the_ops(backend, request):
    name = request.node.callspec.params["backend"]
    assert ops.backend_for(backend, torch.float32)[0].__name__ == f"snnrs.backends.{name}"
    # float64 on CUDA, and other devices, fall back to the pure-PyTorch twins
    assert ops.backend_for(backend, torch.float64)[0].__name__ == (
        "snnrs.backends.reference" if name != "cpu" else "snnrs.backends.cpu")
    assert ops.backend_for(torch.device("meta"), torch.float16) == (
        sys.modules["snnrs.backends.reference"], torch.float32)
