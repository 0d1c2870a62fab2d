"""The custom ops under torch.library.opcheck, torch.compile, fork and threads."""

from __future__ import annotations

import multiprocessing as mp
import threading

import pytest
import snnrs
import torch
from helpers import assert_compiled_matches_eager
from snnrs import _core, ops
from snnrs.backends._native import buf, record


def _args(requires_grad: bool, plif: bool):
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=requires_grad)
    v0 = torch.randn(3, 5, dtype=torch.float64, requires_grad=requires_grad)
    w = torch.tensor(0.1, dtype=torch.float64, requires_grad=requires_grad) if plif else None
    return x, v0, w


@pytest.mark.parametrize("plif", [False, True])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_opcheck_forward_and_rate(plif, v_reset):
    for requires_grad in (False, True):
        x, v0, w = _args(requires_grad, plif)
        params = (0.5, True, 1.0, v_reset, False, "sigmoid", 4.0)
        torch.library.opcheck(torch.ops.snnrs.neuron_forward.default, (x, v0, w, *params))
    x, v0, w = _args(False, plif)
    torch.library.opcheck(torch.ops.snnrs.neuron_rate_forward.default, (x, v0, w, *params))


def test_opcheck_backward():
    h = torch.randn(4, 6, dtype=torch.float64)
    g, gv, v0 = torch.randn_like(h), torch.randn(6, dtype=torch.float64), torch.randn(6,
                                                                              dtype=torch.float64)
    w = torch.tensor(0.2, dtype=torch.float64)
    for args in [(g, gv, h, v0, w), (g, None, h, None, None)]:
        torch.library.opcheck(torch.ops.snnrs.neuron_backward.default,
                              (*args, 0.5, True, 1.0, 0.0, True, "atan", 2.0))


def test_torch_compile_fullgraph_matches_eager():
    net = torch.nn.Sequential(
        snnrs.nn.TimeDistributed(torch.nn.Linear(6, 8)),
        snnrs.nn.PLIF(step_mode="m"),
        snnrs.nn.TimeDistributed(torch.nn.Linear(8, 4)),
        snnrs.nn.LIF(tau=3.0, v_reset=None, surrogate="atan", step_mode="m"),
    )
    x = torch.randn(5, 2, 6)
    assert_compiled_matches_eager(net, x)


def _forward_with_threads(x: torch.Tensor, threads: int) -> torch.Tensor:
    """The Rust forward on ``x [T, N]`` with an explicit thread count (torch's may differ)."""
    spikes, h, v = torch.empty_like(x), torch.empty_like(x), torch.empty(x.shape[1])
    v0 = torch.zeros(x.shape[1])
    _core.forward(_core.Cpu(threads), record(ops.make_params(0.5)), x.shape[0], x=buf(x),
                  v0=buf(v0), spikes=buf(spikes), h_seq=buf(h), v=buf(v))
    return spikes


def _child(queue, x):
    torch.set_num_threads(1)  # torch's own OpenMP pool is not fork-safe; ours must be
    queue.put(float(_forward_with_threads(x, threads=2).sum()))


def test_no_deadlock_after_fork():
    x = torch.randn(8, 70000)
    expected = float(_forward_with_threads(x, threads=2).sum())  # the parent's pool is up
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, x))
    proc.start()
    proc.join(60)
    if proc.is_alive():
        proc.kill()
    assert proc.exitcode == 0, "child process hung or crashed after fork"
    assert queue.get(timeout=5) == expected


def test_dataloader_workers_can_call_the_ops():
    class Spiking(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return ops.lif(torch.full((8, 40000), 0.6))[0].sum()

    ops.lif(torch.randn(8, 70000))
    loader = torch.utils.data.DataLoader(Spiking(), batch_size=2, num_workers=2,
                                         multiprocessing_context="fork")
    totals = torch.cat(list(loader))
    expected = ops.lif(torch.full((8, 40000), 0.6))[0].sum()
    assert torch.equal(totals, expected.expand(4))


def test_concurrent_python_threads_get_correct_results():
    x = torch.randn(16, 100000)
    expected = ops.lif(x)[0]
    results: list[bool] = []

    def work():
        results.append(all(torch.equal(ops.lif(x)[0], expected) for _ in range(3)))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [True, True, True]


def test_opcheck_half_precision_keeps_h_in_float32():
    x, v0 = torch.randn(4, 6).bfloat16(), torch.zeros(6).bfloat16()
    params = (0.5, True, 1.0, 0.0, False, "sigmoid", 4.0)
    torch.library.opcheck(torch.ops.snnrs.neuron_forward.default, (x, v0, None, *params))
    h = torch.randn(4, 6)
    torch.library.opcheck(torch.ops.snnrs.neuron_backward.default,
                          (torch.randn(4, 6).bfloat16(), None, h, None, None, *params))


BIG = (8, 1 << 20)  # 32 MiB float32: large enough for the buffer pool


def test_a_dropped_output_buffer_is_reused():
    ops.empty_cache()
    x = torch.randn(*BIG)
    first = ops.lif(x)[0].data_ptr()  # the result dies at once
    assert ops.lif(x)[0].data_ptr() == first


def test_recycled_outputs_never_share_memory_with_live_tensors():
    x = torch.randn(*BIG)
    s1, _ = ops.lif(x)
    kept = s1.clone()
    view = ops.lif(x * 2)[0][1:]  # a view keeps its buffer alive too
    s3, _ = ops.lif(x * 3)
    ptrs = {s1.data_ptr(), view.untyped_storage().data_ptr(), s3.data_ptr()}
    assert len(ptrs) == 3
    assert torch.equal(s1, kept)


def test_recycling_keeps_training_steps_and_retained_graphs_exact():
    x = torch.randn(*BIG, dtype=torch.float32, requires_grad=True)
    g = torch.randn(*BIG)
    s, _ = ops.lif(x)
    (s * g).sum().backward(retain_graph=True)
    first = x.grad.clone()
    for _ in range(3):  # other steps run while the graph above is retained
        s2, _ = ops.lif(torch.randn(*BIG, requires_grad=True))
        s2.sum().backward()
    x.grad = None
    (s * g).sum().backward()
    assert torch.equal(x.grad, first)


def test_cache_limit_and_empty_cache():
    from snnrs import _buffers

    with pytest.raises(ValueError, match=">= 0"):
        ops.set_cache_limit(-1)
    x = torch.randn(*BIG)
    try:
        ops.lif(x)
        assert _buffers._pool, "the pool keeps the dropped outputs"
        ops.set_cache_limit(0)
        assert not _buffers._pool, "a zero limit lets go of everything"
        ops.lif(x)
        assert not _buffers._pool, "and keeps nothing new"
        ops.set_cache_limit(1 << 30)
        ops.lif(x)
        ops.empty_cache()
        assert not _buffers._pool
    finally:
        ops.set_cache_limit(1 << 30)
