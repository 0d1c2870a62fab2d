"""The CUDA backend.

Everywhere: NVRTC compiles every kernel (skipped only without a libnvrtc), a CUDA call without a
driver is a clear RuntimeError, bad arguments are Value/TypeErrors before any driver call, the
self-test exits 0 without a GPU, and its checker accepts the CPU float32 kernels (which compute
exactly what the CUDA kernels must) and rejects wrong results. And the kernels themselves, run
by a host emulation of ``neuron.cu`` (``rust/cuda/emulate.cpp``, skipped without g++), through
the same Python wrappers and checker as on a GPU.

On a GPU: every op, configuration and dtype against the CPU float64 kernels (the self-test's
checker), odd N, T = 1 and 512, misaligned storage, another device and stream, CUDA graphs,
torch.compile, autocast and opcheck.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import snnrs
import torch
from helpers import assert_compiled_matches_eager
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs import _core, cuda, ops
from snnrs.backends import cuda as backend
from snnrs.backends._native import buf, record
from snnrs.cuda import _selftest
from snnrs.cuda._selftest import Config, run_case
from snnrs.surrogate import NAMES

GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="needs a CUDA GPU")
HALF = (torch.float16, torch.bfloat16)
ALIGNED = 1 << 12  # a fake, 16-byte aligned device address (never dereferenced)


@st.composite
def configs(draw) -> Config:
    kind = draw(st.sampled_from(["if", "lif", "plif"]))
    v_reset = draw(st.one_of(st.none(), st.floats(-0.5, 0.3)))
    return Config(
        kind, kind != "if" and draw(st.booleans()), v_reset, draw(st.booleans()),
        draw(st.sampled_from(NAMES)), tau=draw(st.floats(1.2, 8.0)),
        w0=draw(st.floats(-2.0, 2.0)), v_threshold=draw(st.floats(0.4, 1.5)),
        alpha=draw(st.floats(0.5, 5.0)))


# ---------------------------------------------------------------------------------------------
# Without a GPU.


def test_every_kernel_compiles_with_nvrtc():
    if cuda.load_nvrtc() is None:
        pytest.skip("no libnvrtc found")
    report = cuda.compile_kernels(90)
    for name in cuda.kernel_names():
        assert f".entry {name}(" in report["ptx"], name
    assert report["cubin_bytes"] > 0
    assert len(set(cuda.kernel_names())) == 3 * 2 + 2 * 3 * len(NAMES) * 2


def _fake(*shape: int, dtype: torch.dtype = torch.float32, addr: int = ALIGNED) -> tuple:
    """A buffer description of a device tensor at a fake address (never dereferenced)."""
    n = 1
    for d in shape:
        n *= d
    return addr, n, buf(torch.empty(0, dtype=dtype))[2]


P = record(ops.make_params(0.5, v_reset=None, surrogate="atan"))
GPU0 = _core.Cuda(0, 0) if backend.built() else None  # device 0, its default stream


def _forward_bufs(**changes) -> dict:
    bufs = dict(x=_fake(2, 8), v0=_fake(8, addr=2 * ALIGNED), spikes=_fake(2, 8, addr=3 * ALIGNED),
                h_seq=_fake(2, 8, addr=4 * ALIGNED), v=_fake(8, addr=5 * ALIGNED), leak=None)
    return {**bufs, **changes}


@pytest.mark.skipif(GPU, reason="a GPU is present: a launch would run")
def test_a_cuda_call_without_a_driver_or_gpu_is_a_clear_runtime_error():
    with pytest.raises(RuntimeError, match=r"CUDA driver|no CUDA|GPU"):
        _core.forward(GPU0, P, 2, **_forward_bufs())
    with pytest.raises(RuntimeError, match=r"CUDA driver|no CUDA|GPU"):  # and again: no panic
        _core.forward(GPU0, P, 2, **_forward_bufs())


def test_bad_arguments_are_rejected_before_any_driver_call():
    with pytest.raises(TypeError, match="float32, float16 and bfloat16, got float64"):
        _core.forward(GPU0, P, 2, **_forward_bufs(x=_fake(2, 8, dtype=torch.float64)))
    with pytest.raises(TypeError, match="h_seq is bfloat16, expected float32"):
        _core.forward(GPU0, P, 2, **_forward_bufs(
            h_seq=_fake(2, 8, dtype=torch.bfloat16, addr=4 * ALIGNED)))
    with pytest.raises(ValueError, match="T must be at least 1"):
        _core.forward(GPU0, P, 0, **_forward_bufs())
    with pytest.raises(ValueError, match="x has 16 elements, expected 24"):
        _core.forward(GPU0, P, 3, **_forward_bufs())
    with pytest.raises(ValueError, match="misaligned"):
        _core.forward(GPU0, P, 2, **_forward_bufs(x=_fake(2, 8, addr=ALIGNED + 1)))
    with pytest.raises(ValueError, match="overlap"):
        _core.forward(GPU0, P, 2, **_forward_bufs(v=_fake(8, addr=ALIGNED + 16)))
    with pytest.raises(ValueError, match="leak has 2 elements"):
        _core.forward(GPU0, P, 2, **_forward_bufs(leak=_fake(2, addr=6 * ALIGNED)))
    args = dict(grad_spikes=_fake(2, 8), grad_v=None, h_seq=_fake(2, 8, addr=2 * ALIGNED),
                v0=_fake(8, addr=3 * ALIGNED), grad_x=_fake(2, 8, addr=4 * ALIGNED),
                grad_v0=_fake(8, addr=5 * ALIGNED), leak=None)
    with pytest.raises(ValueError, match="partials has 0 elements, the launch needs 1"):
        _core.backward(GPU0, P, 2, **args, partials=None)
    assert _core.cuda_max_blocks(_core.CUDA_BLOCK + 1) == 2


@pytest.mark.skipif(GPU, reason="a GPU is present: the self-test runs the kernels")
def test_self_test_exits_zero_without_a_gpu(capsys):
    assert _selftest.main([]) == 0
    out = capsys.readouterr().out
    assert "no GPU" in out or "compilation skipped" in out
    if "no GPU" in out:
        assert all(f"{name} " in out for name in cuda.kernel_names())


def test_find_nvrtc_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SNNRS_NVRTC", str(tmp_path / "libnvrtc.so.99"))
    assert cuda.find_nvrtc() == tmp_path / "libnvrtc.so.99"
    monkeypatch.delenv("SNNRS_NVRTC")
    found = cuda.find_nvrtc()
    assert found is None or found.name.startswith("libnvrtc.so")


def _cpu_kernels(monkeypatch, grad_x_factor: float = 1.0) -> None:
    """The self-test's kernels replaced by the CPU float32 kernels (optionally made wrong)."""

    def forward(x, v0, w, p, launched=None):
        return torch.ops.snnrs.neuron_forward(x, v0, w, *p)

    def backward(*args, launched=None):
        *tensors, p = args
        gx, gv0, gl = torch.ops.snnrs.neuron_backward(*tensors, *p)
        return gx * grad_x_factor, gv0, gl

    def rate_forward(x, v0, w, p, launched=None):
        return torch.ops.snnrs.neuron_rate_forward(x, v0, w, *p)

    for name, fn in [("forward", forward), ("backward", backward), ("rate_forward", rate_forward)]:
        monkeypatch.setattr(backend, name, fn)


@settings(max_examples=25)
@given(cfg=configs(), dtype=st.sampled_from([torch.float32, *HALF]), steps=st.integers(1, 6),
       n=st.integers(1, 300), seed=st.integers(0, 2**31))
def test_the_self_test_checker_accepts_the_cpu_float32_kernels(cfg, dtype, steps, n, seed):
    with pytest.MonkeyPatch.context() as mp:
        _cpu_kernels(mp)
        outcome = run_case(cfg, dtype, steps, n, device=torch.device("cpu"), seed=seed)
    assert outcome.failures(dtype) == []


def test_the_self_test_checker_rejects_a_wrong_gradient(monkeypatch):
    _cpu_kernels(monkeypatch, grad_x_factor=1.01)
    cfg = Config("lif", True, 0.0, False, "atan")
    outcome = run_case(cfg, torch.float32, 4, 500, device=torch.device("cpu"))
    assert [f.split()[0] for f in outcome.failures(torch.float32)] == ["grad_x"]


# ---------------------------------------------------------------------------------------------
# The kernels on the host: neuron.cu compiled by g++ and run by rust/cuda/emulate.cpp, launched
# like the Rust launcher does (minus the "fill the GPU" rule: aligned launches take the vector
# kernels), behind the real Python wrappers.

EMULATOR = Path(__file__).resolve().parents[1] / "rust" / "cuda" / "emulate.cpp"


class _Consts(ctypes.Structure):
    _fields_ = [(f, ctypes.c_float) for f in ("leak", "decay", "input_gain", "threshold",
                                               "v_rest", "reset_grad", "sg_a", "sg_b")]
    _fields_ += [("decay_input", ctypes.c_uint), ("hard", ctypes.c_uint)]


def _args(*names: str) -> type[ctypes.Structure]:
    fields = [(f, ctypes.c_uint64) for f in (*names, "leak_ptr", "steps", "n")]
    return type("Args", (ctypes.Structure,), {"_fields_": [*fields, ("c", _Consts)]})


_FORWARD = _args("x", "v0", "spikes", "h_seq", "v")
_BACKWARD = _args("grad_spikes", "grad_v", "h_seq", "v0", "grad_x", "grad_v0", "partials")
_RATE = _args("x", "v0", "spikes", "v", "rate", "eligibility")
assert [ctypes.sizeof(a) for a in (_Consts, _FORWARD, _BACKWARD, _RATE)] == [40, 104, 120, 112]


def _consts(leak, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha):
    """rust/cuda/plan.rs `Consts::new`: float64 values rounded once to float32."""
    sg = {"sigmoid": (alpha, 0.0), "fast_sigmoid": (alpha, 0.0), "triangle": (alpha, 1 / alpha**2),
          "atan": (alpha / 2, math.pi / 2 * alpha), "rectangle": (alpha / 2, 1 / alpha)}[surrogate]
    return _Consts(leak, 1.0 - leak, leak if decay_input else 1.0, v_threshold,
                   0.0 if v_reset is None else v_reset, 0.0 if detach_reset else 1.0, *sg,
                   int(decay_input), int(v_reset is not None))


def _addr(b: tuple | None) -> int:
    return 0 if b is None else b[0]


class EmulatedCore:
    """The ``_core`` ops in a ``_core.Cuda`` context, over the emulator."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.Cuda = _core.Cuda
        self.cuda_max_blocks = _core.cuda_max_blocks
        self.cuda_kernel_names = _core.cuda_kernel_names

    def _launch(self, op, dtype, surrogate, n, bufs, args) -> tuple[int, int]:
        tag = {"F32": "f32", "F16": "f16", "BF16": "bf16"}[str(dtype).rsplit(".", 1)[-1]]
        width = 4 if tag == "f32" else 8
        vec = n % width == 0 and all(_addr(b) % 16 == 0 for b in bufs)
        sg = "" if surrogate is None else f"_{surrogate}"
        name = f"snnrs_{('forward', 'backward', 'rate')[op]}_{tag}{sg}_{'vec' if vec else 'scalar'}"
        grid = -(-n // (_core.CUDA_BLOCK * (width if vec else 1)))
        self.lib.snnrs_emulate(ctypes.cast(self.lib[name], ctypes.c_void_p), op, grid,
                               ctypes.byref(args))
        return backend.kernel_names().index(name), grid

    def forward(self, ctx, params, steps, *, x, v0, spikes, h_seq, v, leak):
        assert isinstance(ctx, _core.Cuda)
        c = _consts(*params.args[:4], False, "sigmoid", 1.0)
        bufs = [x, v0, spikes, h_seq, v]
        args = _FORWARD(*map(_addr, bufs), _addr(leak), steps, v0[1], c)
        return self._launch(0, x[2], None, v0[1], bufs, args)

    def backward(self, ctx, params, steps, *, grad_spikes, grad_v, h_seq, v0, grad_x, grad_v0,
                 leak, partials):
        assert isinstance(ctx, _core.Cuda)
        bufs = [grad_spikes, grad_v, h_seq, v0, grad_x, grad_v0]
        args = _BACKWARD(*map(_addr, [*bufs, partials]), _addr(leak), steps, grad_v0[1],
                         _consts(*params.args))
        return self._launch(1, grad_spikes[2], params.args[5], grad_v0[1], bufs, args)

    def rate_forward(self, ctx, params, steps, *, x, v0, spikes, v, rate, eligibility, leak):
        assert isinstance(ctx, _core.Cuda)
        bufs = [x, v0, spikes, v, rate, eligibility]
        args = _RATE(*map(_addr, bufs), _addr(leak), steps, v0[1], _consts(*params.args))
        return self._launch(2, x[2], params.args[5], v0[1], bufs, args)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> EmulatedCore:
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("no g++ to build the host emulation of the kernels")
    lib = tmp_path_factory.mktemp("emulator") / "emulate.so"
    subprocess.run([cxx, "-std=c++20", "-O1", "-ffp-contract=off", "-fPIC", "-shared",
                    "-Wno-unknown-pragmas", f"-DSNNRS_BLOCK={_core.CUDA_BLOCK}", str(EMULATOR),
                    "-o", str(lib), "-lpthread"], check=True)
    core = EmulatedCore(ctypes.CDLL(str(lib)))
    core.lib.snnrs_emulate.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint,
                                       ctypes.c_void_p]
    return core


def _emulate(mp: pytest.MonkeyPatch, core: EmulatedCore) -> None:
    mp.setattr(backend, "_core", core)
    mp.setattr(backend, "_context", lambda t: _core.Cuda(0, 0))


@settings(max_examples=30)
@given(cfg=configs(), dtype=st.sampled_from([torch.float32, *HALF]), steps=st.integers(1, 6),
       n=st.integers(1, 600), offset=st.sampled_from([0, 1, 8]), seed=st.integers(0, 2**31))
def test_emulated_kernels_match_the_float64_cpu_kernels(emulator, cfg, dtype, steps, n, offset,
                                                         seed):
    with pytest.MonkeyPatch.context() as mp:
        _emulate(mp, emulator)
        outcome = run_case(cfg, dtype, steps, n, device=torch.device("cpu"), offset=offset,
                           seed=seed)
    assert outcome.failures(dtype) == []
    assert len(outcome.kernels) == 3


@pytest.mark.parametrize("dtype", [torch.float32, *HALF])
@pytest.mark.parametrize(("n", "offset", "path"), [(4096, 0, "vec"), (2056, 0, "vec"),
                                                     (4099, 0, "scalar"), (4096, 1, "scalar")])
def test_emulated_vector_and_scalar_kernels_over_several_blocks(emulator, dtype, n, offset, path):
    with pytest.MonkeyPatch.context() as mp:
        _emulate(mp, emulator)
        for cfg in (Config("plif", True, 0.0, False, "sigmoid"),
                    Config("plif", False, None, True, "rectangle"),
                    Config("lif", True, -0.2, False, "atan", tau=3.0)):
            outcome = run_case(cfg, dtype, 5, n, device=torch.device("cpu"), offset=offset)
            assert outcome.failures(dtype) == [], cfg
            assert all(k.endswith(f"_{path}") for k in outcome.kernels), outcome.kernels


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_emulated_float32_forward_equals_the_cpu_kernels_bit_for_bit(emulator, v_reset):
    x, v0 = torch.randn(16, 1031) * 1.5 + 0.4, torch.randn(1031)
    p = ops.make_params(1 / 3, True, 0.9, v_reset, False, "atan", 2.0)
    cpu = torch.ops.snnrs.neuron_forward(x, v0, None, *p)
    with pytest.MonkeyPatch.context() as mp:
        _emulate(mp, emulator)
        ours = backend.forward(x, v0, None, p)
    for a, b in zip(cpu, ours, strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------
# On a GPU.


@needs_gpu
@settings(max_examples=40)
@given(cfg=configs(), dtype=st.sampled_from([torch.float32, *HALF]), steps=st.integers(1, 6),
       n=st.integers(1, 3000), offset=st.sampled_from([0, 1, 8]), seed=st.integers(0, 2**31))
def test_every_op_matches_the_float64_cpu_kernels(cfg, dtype, steps, n, offset, seed):
    outcome = run_case(cfg, dtype, steps, n, device=torch.device("cuda"), offset=offset,
                       seed=seed)
    assert outcome.failures(dtype) == []
    assert outcome.left_out < 0.05


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, *HALF])
@pytest.mark.parametrize(("steps", "n", "offset", "path"), [
    (1, 1, 0, "scalar"), (1, 7, 0, "scalar"), (512, 1001, 0, "scalar"), (3, 4099, 1, "scalar"),
    (2, "fill", 0, "vec"), (2, "fill+4", 0, "scalar"), (2, "fill", 1, "scalar"),
])
def test_sizes_alignment_and_kernel_choice(dtype, steps, n, offset, path):
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    fill = sms * 1024 * 8  # enough vector threads to fill the GPU, a multiple of 8
    n = {"fill": fill, "fill+4": fill + 4}.get(n, n)
    for cfg in (Config("plif", True, 0.0, False, "sigmoid"), Config("if", False, None, True,
                                                                     "fast_sigmoid")):
        outcome = run_case(cfg, dtype, steps, n, device=torch.device("cuda"), offset=offset)
        assert outcome.failures(dtype) == []
        assert all(k.endswith(f"_{path}") for k in outcome.kernels), outcome.kernels


@needs_gpu
@pytest.mark.parametrize("kind", ["if", "lif"])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_float32_forward_equals_the_cpu_kernels_bit_for_bit(kind, v_reset):
    # --fmad=false and the same expression order: IEEE float32 rounds identically.
    x, v0 = torch.randn(16, 4099) * 1.5 + 0.4, torch.randn(4099)
    leak = 0.0 if kind == "if" else 1 / 3
    args = (leak, kind == "lif", 0.9, v_reset, False, "atan", 2.0)
    cpu = torch.ops.snnrs.neuron_forward(x, v0, None, *args)
    gpu = torch.ops.snnrs.neuron_forward(x.cuda(), v0.cuda(), None, *args)
    for a, b in zip(cpu, gpu, strict=True):
        assert torch.equal(a, b.cpu())


def _lif_with_grads(x: torch.Tensor, w: torch.Tensor | None = None):
    x = x.detach().clone().requires_grad_()
    w = None if w is None else w.detach().clone().requires_grad_()
    if w is None:
        s, v = ops.lif(x, tau=3.0, surrogate="atan")
    else:
        s, v = ops.plif(x, w, v_reset=None)
    (s * torch.linspace(-1, 1, s.numel(), device=s.device).view_as(s)).sum().add(v.sum()).backward()
    return [t.detach() for t in (s, v, x.grad, *(() if w is None else (w.grad,)))]


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, *HALF])
@pytest.mark.parametrize("plif", [False, True])
def test_the_ops_dispatch_cuda_tensors_with_autograd(dtype, plif):
    x = (torch.randn(6, 3, 257, dtype=torch.float64) + 0.5).to(dtype)
    w = torch.tensor(0.2, dtype=dtype) if plif else None
    cpu = _lif_with_grads(x, w)
    gpu = _lif_with_grads(x.cuda(), None if w is None else w.cuda())
    assert gpu[0].dtype == gpu[2].dtype == dtype and gpu[0].is_cuda
    tol = {torch.float64: 1e-12, torch.float32: 1e-5}.get(dtype, 2e-2)
    assert torch.equal(gpu[0].cpu(), cpu[0])
    for a, b in zip(gpu[1:], cpu[1:], strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=tol, atol=tol)


@needs_gpu
def test_half_inputs_save_h_in_float32():
    x = torch.randn(4, 100, device="cuda", dtype=torch.bfloat16)
    s, v, h = torch.ops.snnrs.neuron_forward(x, x[0], None, 0.5, True, 1.0, 0.0, False,
                                             "sigmoid", 4.0)
    assert (s.dtype, v.dtype, h.dtype) == (torch.bfloat16, torch.bfloat16, torch.float32)


@needs_gpu
def test_plif_leak_gradient_is_deterministic():
    x = torch.randn(8, 1 << 20, device="cuda") + 0.5
    w = torch.tensor(0.1, device="cuda")
    first, second = _lif_with_grads(x, w)[3], _lif_with_grads(x, w)[3]
    assert torch.equal(first, second)


@needs_gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_a_tensor_on_another_device_runs_there_and_leaves_the_current_device_alone():
    x = torch.randn(5, 3000) + 0.5
    expected = _lif_with_grads(x)
    torch.cuda.set_device(0)
    got = _lif_with_grads(x.to("cuda:1"))
    assert torch.cuda.current_device() == 0
    assert got[0].device == torch.device("cuda:1")
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-5, atol=1e-5)


@needs_gpu
def test_the_current_stream_is_used():
    x = torch.randn(8, 1 << 16, device="cuda") + 0.5
    expected = _lif_with_grads(x)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)  # x_late is written late on `side`: a kernel launched
        x_late = x * 1.0               # on any other stream would read it before it exists
        got = _lif_with_grads(x_late)
    torch.cuda.current_stream().wait_stream(side)
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)


@needs_gpu
def test_cuda_graph_capture_and_replay():
    x = torch.randn(8, 4096, device="cuda", requires_grad=True)
    w = torch.tensor(0.3, device="cuda", requires_grad=True)

    def step(x, w):
        s, v = ops.plif(x, w, v_reset=None, surrogate="triangle")
        (s.sum() + v.sum()).backward()
        return s

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up: loads the kernels, settles the allocator
        for _ in range(3):
            x.grad = w.grad = None
            step(x, w)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    x.grad = w.grad = None
    with torch.cuda.graph(graph):
        static_s = step(x, w)
    static_gx, static_gw = x.grad, w.grad
    for _ in range(2):
        with torch.no_grad():
            x.copy_(torch.randn_like(x) + 0.5)
        graph.replay()
        xe, we = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
        eager_s = step(xe, we)
        torch.testing.assert_close(static_s, eager_s)
        torch.testing.assert_close(static_gx, xe.grad)
        torch.testing.assert_close(static_gw, we.grad)


@needs_gpu
def test_capture_before_the_kernels_are_loaded_is_a_clear_error():
    code = textwrap.dedent("""
        import torch, snnrs
        x = torch.randn(4, 64, device="cuda")
        g = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(g):
                snnrs.ops.lif(x)
        except Exception as e:  # torch may add its own error on leaving the capture
            print("ERROR", e, "| CONTEXT", e.__context__)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "warm-up" in out.stdout, out.stdout + out.stderr


@needs_gpu
def test_torch_compile_fullgraph_matches_eager():
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        snnrs.nn.TimeDistributed(torch.nn.Linear(6, 64)),
        snnrs.nn.PLIF(step_mode="m"),
        snnrs.nn.TimeDistributed(torch.nn.Linear(64, 4)),
        snnrs.nn.LIF(tau=3.0, v_reset=None, surrogate="atan", step_mode="m"),
    ).cuda()
    x = torch.randn(5, 2, 6, device="cuda")
    assert_compiled_matches_eager(net, x)


@needs_gpu
@pytest.mark.parametrize("dtype", HALF)
def test_autocast(dtype):
    lin = torch.nn.Linear(32, 64).cuda()
    x = torch.randn(4, 8, 32, device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        s, v = ops.lif(lin(x))
    assert s.dtype == v.dtype == dtype
    s.float().sum().backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()


@needs_gpu
@pytest.mark.parametrize("plif", [False, True])
def test_opcheck_on_cuda(plif):
    x = torch.randn(4, 3, 5, device="cuda", requires_grad=True)
    v0 = torch.randn(3, 5, device="cuda", requires_grad=True)
    w = torch.tensor(0.1, device="cuda", requires_grad=True) if plif else None
    params = (0.5, True, 1.0, 0.0, False, "sigmoid", 4.0)
    torch.library.opcheck(torch.ops.snnrs.neuron_forward.default, (x, v0, w, *params))
    with torch.no_grad():
        torch.library.opcheck(torch.ops.snnrs.neuron_rate_forward.default,
                              (x.detach(), v0.detach(), None if w is None else w.detach(),
                               *params))


# ---------------------------------------------------------------------------------------------
# Spike packing (snnrs.ops.pack_spikes): the CUDA kernels `snnrs_<pack|unpack>_u<bits>`, emulated
# on the host behind the real CUDA backend functions, bit for bit against the pure-PyTorch twins
# (themselves held to numpy.packbits in tests/test_spikes.py).

SPIKE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_SPIKE_INTS = {torch.float16: torch.int16, torch.bfloat16: torch.int16,
               torch.float32: torch.int32, torch.float64: torch.int64}
_ONE_BITS = {"F16": (16, 0x3C00), "BF16": (16, 0x3F80), "F32": (32, 0x3F80_0000),
             "F64": (64, 0x3FF0_0000_0000_0000)}


class _SpikeArgs(ctypes.Structure):
    _fields_ = [(f, ctypes.c_uint64) for f in ("src", "dst", "flag", "n", "one")]


assert ctypes.sizeof(_SpikeArgs) == 40


class EmulatedSpikeCore(EmulatedCore):
    """``_core.pack_spikes`` / ``unpack_spikes`` in a ``_core.Cuda`` context, over the emulator
    (grids as rust/cuda/plan.rs `spike_grid`)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        super().__init__(lib)
        self.launched: list[str] = []

    def _spikes(self, op: str, dtype, n: int, args: _SpikeArgs) -> int:
        bits, one = _ONE_BITS[str(dtype).rsplit(".", 1)[-1]]
        name = f"snnrs_{op}_u{bits}"
        assert name in _core.cuda_spike_kernel_names()
        args.one = one
        threads = -(-n // 8) if op == "pack" else n
        grid = -(-threads // _core.CUDA_BLOCK)
        self.launched.append(name)
        self.lib.snnrs_emulate(ctypes.cast(self.lib[name], ctypes.c_void_p), 3, grid,
                               ctypes.byref(args))
        return grid

    def pack_spikes(self, ctx, *, x, bits, flag):
        assert isinstance(ctx, _core.Cuda) and bits[1] == -(-x[1] // 8) and flag[1] == 1
        return self._spikes("pack", x[2], x[1], _SpikeArgs(x[0], bits[0], flag[0], x[1]))

    def unpack_spikes(self, ctx, *, bits, out):
        assert isinstance(ctx, _core.Cuda) and bits[1] == -(-out[1] // 8)
        return self._spikes("unpack", out[2], out[1], _SpikeArgs(bits[0], out[0], 0, out[1]))


@pytest.fixture(scope="module")
def spike_emulator(emulator) -> EmulatedSpikeCore:
    return EmulatedSpikeCore(emulator.lib)


def test_the_spike_kernels_compile_with_nvrtc():
    if cuda.load_nvrtc() is None:
        pytest.skip("no libnvrtc found")
    ptx = cuda.compile_kernels(90)["ptx"]
    names = _core.cuda_spike_kernel_names()
    assert len(names) == 6 and not set(names) & set(cuda.kernel_names())
    for name in names:
        assert f".entry {name}(" in ptx, name


def _spike_values(n: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, generator=g) < 0.4).to(dtype)


@settings(max_examples=30, deadline=None)
@given(dtype=st.sampled_from(SPIKE_DTYPES), n=st.sampled_from([1, 7, 8, 9, 63, 65, 255, 2049,
                                                              2055, 4100]),
       seed=st.integers(0, 2**31))
def test_emulated_spike_kernels_match_the_reference_bit_for_bit(spike_emulator, dtype, n, seed):
    from snnrs.backends import reference

    x = _spike_values(n, dtype, seed)
    with pytest.MonkeyPatch.context() as mp:
        _emulate(mp, spike_emulator)
        bits = backend.pack_spikes(x)
        assert bits is not None
        assert torch.equal(bits, reference.pack_spikes(x))
        back = backend.unpack_spikes(bits, n, dtype)
    assert torch.equal(back.view(_SPIKE_INTS[dtype]), x.view(_SPIKE_INTS[dtype]))
    assert torch.equal(reference.unpack_spikes(bits, n, dtype).view(_SPIKE_INTS[dtype]),
                       back.view(_SPIKE_INTS[dtype]))


@pytest.mark.parametrize("dtype", SPIKE_DTYPES)
@pytest.mark.parametrize("bad", [-0.0, math.nan, 0.5, 2.0, math.inf, -1.0])
def test_emulated_pack_flags_any_non_spike(spike_emulator, dtype, bad):
    for n, at in [(1, 0), (9, 8), (2050, 2049), (3000, 1234)]:
        x = _spike_values(n, dtype, n)
        x[at] = bad
        with pytest.MonkeyPatch.context() as mp:
            _emulate(mp, spike_emulator)
            assert backend.pack_spikes(x) is None, (n, at)


def test_the_ops_run_the_emulated_cuda_kernels_through_the_device_table(spike_emulator):
    # ops picks the backend by device type: the CPU entry points at the CUDA backend here.
    x = _spike_values(1001, torch.bfloat16, 3).view(7, 143).mT
    with pytest.MonkeyPatch.context() as mp:
        _emulate(mp, spike_emulator)
        previous = ops.register_backend("cpu", backend)
        try:
            spike_emulator.launched.clear()
            bits = ops.pack_spikes(x)
            back = ops.unpack_spikes(bits, x.shape, x.dtype)
        finally:
            ops.register_backend("cpu", previous)
    assert spike_emulator.launched == ["snnrs_pack_u16", "snnrs_unpack_u16"]
    assert torch.equal(back, x) and back.is_contiguous()


@needs_gpu
@pytest.mark.parametrize("dtype", SPIKE_DTYPES)
@pytest.mark.parametrize("n", [1, 9, 4099, (1 << 22) + 3])
def test_cuda_spike_packing_matches_the_cpu_kernels(dtype, n):
    x = _spike_values(n, dtype, n)
    cpu_bits = ops.pack_spikes(x)
    gpu_bits = ops.pack_spikes(x.cuda())
    assert gpu_bits is not None and gpu_bits.is_cuda and torch.equal(gpu_bits.cpu(), cpu_bits)
    back = ops.unpack_spikes(gpu_bits, (n,), dtype)
    assert back.is_cuda and torch.equal(back.cpu().view(_SPIKE_INTS[dtype]),
                                        x.view(_SPIKE_INTS[dtype]))
    x[n // 2] = -0.0
    assert ops.pack_spikes(x.cuda()) is None
