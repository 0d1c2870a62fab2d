"""The CPU kernels on torch's OpenMP team and on rayon's pool: same results, the right threads."""

import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from snnrs import _core, ops
from snnrs._threads import torch_openmp_library, use_torch_threads

needs_gomp = pytest.mark.skipif(torch_openmp_library() is None,
                                reason="torch does not run on GNU OpenMP here")


@pytest.fixture
def restore_default():
    yield
    use_torch_threads()


def _run_all_kernels(x: torch.Tensor, w: torch.Tensor, p: ops.NeuronParams):
    """Spikes, state, every gradient (PLIF's leak reduction included) and the rate outputs."""
    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_()
    spikes, v = ops.multistep(x, None, p, w)
    (spikes * torch.linspace(-1, 1, spikes.shape[-1]) + v.sum()).sum().backward()
    rate = ops.rate(x.detach(), None, p)
    return spikes, v, x.grad, w.grad, *rate


@needs_gomp
@given(steps=st.integers(1, 5), n=st.integers(2048, 5 * 2048 + 33), threads=st.integers(1, 3),
       surrogate=st.sampled_from(["sigmoid", "atan", "triangle"]))
def test_openmp_and_rayon_give_identical_results(steps, n, threads, surrogate):
    p = ops.make_params(0.5, surrogate=surrogate)
    x, w = torch.randn(steps, n) * 1.5, torch.tensor(0.3)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        assert use_torch_threads(False) is False
        on_rayon = _run_all_kernels(x, w, p)
        assert use_torch_threads(True) is True
        on_openmp = _run_all_kernels(x, w, p)
    finally:
        torch.set_num_threads(before)
        use_torch_threads()
    for a, b in zip(on_rayon, on_openmp, strict=True):
        assert torch.equal(a, b)


_THREAD_NAMES = """
    import os, torch
    from snnrs import ops
    torch.set_num_threads(2)
    ops.use_torch_threads({enabled})
    ops.lif(torch.randn(8, 1 << 18))
    names = [open(f"/proc/self/task/{{t}}/comm").read().strip()
             for t in os.listdir("/proc/self/task")]
    print(sum(name.startswith("snnrs-") for name in names))
"""


@needs_gomp
@pytest.mark.parametrize("enabled", [True, False])
def test_kernels_start_no_pool_of_their_own_on_openmp(enabled):
    script = textwrap.dedent(_THREAD_NAMES.format(enabled=enabled))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)
    rayon_threads = int(out.stdout)
    assert rayon_threads == (0 if enabled else 2)


def test_a_missing_runtime_is_refused():
    with pytest.raises(RuntimeError, match=r"cannot use OpenMP at /nonexistent/libgomp\.so\.1"):
        _core.attach_openmp("/nonexistent/libgomp.so.1")
    x = torch.randn(4, 3 * 2048)
    assert torch.equal(ops.lif(x)[0], ops.lif(x)[0])  # still usable


def test_disabling_openmp_always_succeeds(restore_default):
    assert use_torch_threads(False) is False
    assert use_torch_threads(True) is (torch_openmp_library() is not None)
