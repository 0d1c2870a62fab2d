"""Neuron families: CubaLIF, LI and ALIF against scalar float64 oracles written here from their
documented equations; the IF / LIF / PLIF kernels against their family's reference step; kernels
registered per family; a two-state family defined in this file, trained through ``snnrs
distill`` and round-tripped through NIR."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs import data, models, surrogate
from snnrs.cli import main
from snnrs.nn import (
    ALIF,
    IF,
    LI,
    LIF,
    NEURONS,
    PLIF,
    BaseNode,
    CubaLIF,
    NeuronSpec,
    TimeDistributed,
    kernel_for,
    register_family,
    register_kernel,
    unregister_kernel,
)
from test_extend import TINY, stripes
from torch import Tensor

F64 = torch.float64


def _fire(h: float, theta: float) -> float:
    return 1.0 if h >= theta else 0.0


def _charge(v: float, x: float, leak: float, decay_input: bool, v_rest: float) -> float:
    return v + (x - (v - v_rest)) * leak if decay_input else v - (v - v_rest) * leak + x


def _oracle(kind: str, x: list[float], p: dict) -> tuple[list[float], tuple[float, ...]]:
    """One neuron's outputs and final state, in Python floats, from the docstrings' equations."""
    rest = 0.0 if p.get("v_reset") is None else p["v_reset"]
    v, i, a, out = p.get("v_rest", rest), 0.0, 0.0, []
    for xt in x:
        if kind == "li":
            v = _charge(v, xt, p["leak"], p["decay_input"], p["v_rest"])
            out.append(v)
            continue
        if kind == "cubalif":
            i = i + (xt - i) * p["leak_syn"]
            xt = i
        h = _charge(v, xt, p["leak"], p["decay_input"], rest)
        theta = p["v_threshold"] + (p["beta"] * a if kind == "alif" else 0.0)
        s = _fire(h, theta)
        v = h - theta * s if p["v_reset"] is None else (p["v_reset"] if s else h)
        if kind == "alif":
            a = a + (s - a) * p["leak_adapt"]
        out.append(s)
    return out, {"li": (v,), "cubalif": (i, v), "alif": (v, a)}[kind]


taus = st.floats(1.0, 8.0)
spiking = st.fixed_dictionaries({
    "tau": taus, "decay_input": st.booleans(), "v_threshold": st.floats(0.3, 1.5),
    "v_reset": st.one_of(st.none(), st.floats(-0.5, 0.3))})


@st.composite
def family_cases(draw):
    kind = draw(st.sampled_from(["cubalif", "li", "alif"]))
    if kind == "li":
        kwargs = {"tau": draw(taus), "decay_input": draw(st.booleans()),
                  "v_rest": draw(st.floats(-1, 1))}
        module = LI(**kwargs, step_mode="m")
    elif kind == "cubalif":
        kwargs = {**draw(spiking), "tau_syn": draw(taus)}
        module = CubaLIF(**kwargs, step_mode="m")
    else:
        kwargs = {**draw(spiking), "tau_adapt": draw(taus), "beta": draw(st.floats(0, 2))}
        module = ALIF(**kwargs, step_mode="m")
    T, N = draw(st.integers(1, 12)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    x = torch.randn(T, N, dtype=F64, generator=torch.Generator().manual_seed(seed)) * 1.5
    return kind, module, x


@settings(max_examples=80, deadline=None)
@given(family_cases())
def test_families_match_their_scalar_oracles(case):
    kind, module, x = case
    out, state = module.simulate(x)
    p = module.params._asdict()
    for n in range(x.shape[1]):
        want_out, want_state = _oracle(kind, x[:, n].tolist(), p)
        assert out[:, n].tolist() == pytest.approx(want_out, abs=1e-12)
        assert [s[n].item() for s in state] == pytest.approx(list(want_state), abs=1e-12)


def _grads(module: BaseNode, x: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    x = x.clone().requires_grad_()
    out, state = module.simulate(x)
    ((out * g).sum() + state.v.sum()).backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("surrogate", ["sigmoid", "atan", "triangle"])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_degenerate_families_are_lif_forward_and_backward(surrogate, v_reset):
    """tau_syn = 1 passes the input straight through, beta = 0 never adapts: both are LIF, whose
    gradients come from the Rust kernel, an implementation independent of the reference step."""
    x = torch.randn(10, 3, 7, dtype=F64, generator=torch.Generator().manual_seed(0)) * 1.5
    g = torch.randn_like(x)
    common = dict(tau=3.0, v_reset=v_reset, surrogate=surrogate, step_mode="m")
    lif_out, lif_grad = _grads(LIF(**common), x, g)
    for other in (CubaLIF(tau_syn=1.0, **common), ALIF(beta=0.0, **common)):
        out, grad = _grads(other, x, g)
        assert torch.equal(out, lif_out)
        torch.testing.assert_close(grad, lif_grad, rtol=1e-12, atol=1e-12)


def test_the_leaky_integrator_has_the_exact_gradient():
    node = LI(tau=3.0, decay_input=False, v_rest=0.2, step_mode="m")
    x = torch.randn(6, 2, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: node.simulate(t)[0], (x,))


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from([IF, LIF, PLIF]), params=spiking, T=st.integers(1, 9),
       seed=st.integers(0, 2**16), surrogate=st.sampled_from(["sigmoid", "atan", "rectangle"]))
def test_the_fused_kernels_equal_their_familys_reference(kind, params, T, seed, surrogate):
    params = {**params, "surrogate": surrogate}
    if kind is IF:
        params = {k: v for k, v in params.items() if k not in ("tau", "decay_input")}
    elif kind is PLIF:
        params["init_tau"] = params.pop("tau") + 0.5
    node = kind(**params, step_mode="m").double()
    gen = torch.Generator().manual_seed(seed)
    x, g = (torch.randn(T, 2, 5, dtype=F64, generator=gen) * 1.5 for _ in range(2))
    fused, fused_grad = _grads(node, x, g)
    fused_w = None if kind is not PLIF else node.w.grad.clone()
    node.zero_grad()
    xr = x.clone().requires_grad_()
    out, state = node.reference(xr)
    ((out * g).sum() + state.v.sum()).backward()
    assert torch.equal(out, fused)
    torch.testing.assert_close(xr.grad, fused_grad, rtol=1e-10, atol=1e-10)
    if fused_w is not None:
        torch.testing.assert_close(node.w.grad, fused_w, rtol=1e-9, atol=1e-10)


def _li_closed_form(node: LI, x_seq: Tensor, state: LI.State | None) -> tuple[Tensor, LI.State]:
    """LI's recurrence ``v_t = keep * v_{t-1} + drive_t`` solved at once: a fused kernel that
    knows nothing of the family's step."""
    p = node.params
    keep, gain = 1 - p.leak, (p.leak if p.decay_input else 1.0)
    v0 = torch.full_like(x_seq[0], p.v_rest) if state is None else state.v
    t = torch.arange(1, x_seq.shape[0] + 1, dtype=x_seq.dtype)
    weights = torch.tril(keep ** (t[:, None] - t[None, :]).clamp(min=0))   # keep^(t - s)
    decay = (keep ** t).view(-1, *[1] * v0.dim())
    v = torch.einsum("ts,s...->t...", weights, gain * x_seq + p.leak * p.v_rest) + decay * v0
    return v, LI.State(v[-1])


@pytest.mark.parametrize("decay_input", [True, False])
def test_a_kernel_registered_for_a_family_replaces_its_reference_and_equals_it(decay_input):
    node = LI(tau=4.0, decay_input=decay_input, v_rest=0.3, step_mode="m")
    x, v0 = torch.randn(7, 2, 3, dtype=F64), LI.State(torch.randn(2, 3, dtype=F64))
    assert kernel_for(LI, "cpu") is None
    register_kernel(LI, "cpu")(_li_closed_form)
    try:
        assert kernel_for(LI, "cpu") is _li_closed_form
        fused = [node.simulate(x), node.simulate(x, v0)]
    finally:
        unregister_kernel(LI, "cpu")
    assert kernel_for(LI, "cpu") is None
    for (out, state), start in zip(fused, (None, v0), strict=True):
        want, want_state = node.reference(x, start)
        torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(state.v, want_state.v, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda mode: CubaLIF(tau_syn=3.0, step_mode=mode), lambda mode: LI(tau=2.0, step_mode=mode),
    lambda mode: ALIF(tau_adapt=3.0, beta=0.5, step_mode=mode),
    lambda mode: LIF(tau=2.0, step_mode=mode)])
def test_step_mode_s_keeps_the_state_as_m_does(make):
    x = torch.randn(5, 2, 4) * 2
    single = make("s")
    got = torch.stack([single(x_t) for x_t in x])
    torch.testing.assert_close(got, make("m")(x), rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError, match="reset"):
        single(torch.randn(3, 4))
    single.reset()
    assert single.state is None and single(torch.randn(3, 4)).shape == (3, 4)


def test_half_inputs_compute_in_float32_and_come_back_in_their_dtype():
    x = torch.randn(6, 4, 5) * 2
    node = ALIF(tau_adapt=4.0, step_mode="m")
    out, state = node.simulate(x.bfloat16())
    want, _ = node.simulate(x.bfloat16().float())
    assert out.dtype == state.v.dtype == torch.bfloat16 and torch.equal(out.float(), want)


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: CubaLIF(tau_syn=0.5), ValueError, "tau_syn must be a finite number >= 1"),
    (lambda: ALIF(beta=-1.0), ValueError, "beta must be >= 0"),
    (lambda: ALIF(tau_adapt=math.nan), ValueError, "tau_adapt must be a finite number"),
    (lambda: LI(v_rest=math.inf), ValueError, "v_rest must be finite"),
    (lambda: LI.from_leak(1.5), ValueError, "leak_factor must be in [0, 1]"),
    (lambda: NeuronSpec.make("alif", tau_adaptt=5.0), ValueError,
     "neuron 'alif' has no parameter 'tau_adaptt'; it takes tau, tau_adapt, beta"),
    (lambda: NeuronSpec.make("lif", tau_syn=2.0), ValueError,
     "neuron 'lif' has no parameter 'tau_syn'; it takes tau, leak, decay_input, "
     "v_threshold, v_reset, surrogate, alpha, detach_reset"),
    (lambda: NeuronSpec("li", v_threshold=0.5), ValueError,
     "neuron 'li' has no parameter 'v_threshold'"),
    (lambda: CubaLIF(step_mode="m").simulate(torch.zeros(3, 2), torch.zeros(2)), TypeError,
     "the state of CubaLIF is a CubaLIF.State('i', 'v'), got Tensor"),
    (lambda: CubaLIF(step_mode="m").simulate(
        torch.zeros(3, 2), CubaLIF.State(torch.zeros(2), torch.zeros(3))), ValueError,
     "state.v has shape (3,) but x_seq (3, 2) needs (2,)"),
    (lambda: ALIF().rate(torch.zeros(3, 2)), ValueError, "ALIF has no rate-based mode"),
])
def test_bad_parameters_and_states_are_named_errors(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_a_spec_routes_a_familys_own_parameters():
    spec = NeuronSpec.make("alif", tau=4.0, tau_adapt=5.0, beta=0.5, v_reset=None)
    node = spec.build()
    assert isinstance(node, ALIF) and node.step_mode == "m"
    assert node.params.leak == 0.25 and node.params.leak_adapt == 0.2
    assert node.params.beta == 0.5 and node.params.v_reset is None
    assert {"tau_syn", "tau_adapt", "beta", "v_rest"} <= NeuronSpec.field_names()
    net = models.create("convnet", kind="snn", T=2, neuron="cubalif", tau_syn=3.0)
    assert net.stem_act.neuron.params.leak_syn == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------------------------
# A new family with two state variables, in one place, through distill, the reference and NIR.


class SynState(NamedTuple):
    current: Tensor
    v: Tensor


class SynParams(NamedTuple):
    syn_decay: float
    mem_decay: float
    v_threshold: float


class SynapticLIF(BaseNode):
    """Norse's form of a current-based LIF: the current keeps ``syn_decay`` of itself and jumps
    by the input; the membrane keeps ``mem_decay`` of itself and adds the current; it fires at
    ``v_threshold`` and resets to 0."""

    Params, State = SynParams, SynState

    def __init__(self, syn_decay: float = 0.5, mem_decay: float = 0.5,
                 v_threshold: float = 1.0, step_mode: str = "s") -> None:
        super().__init__(SynParams(float(syn_decay), float(mem_decay), float(v_threshold)),
                         step_mode)

    @staticmethod
    def step(x, state, p):
        current = state.current * p.syn_decay + x
        h = state.v * p.mem_decay + current
        s = surrogate.heaviside(h - p.v_threshold, "sigmoid", 4.0)
        return s, SynState(current, h * (1 - s))

    @staticmethod
    def rest(x, p):
        return SynState(torch.zeros_like(x), torch.zeros_like(x))

    def to_nir(self, dt):
        """NIR's CubaLIF with ``w_in = 1 / leak_syn`` and ``r = 1 / leak_mem``."""
        p = self.params
        syn, mem = 1 - p.syn_decay, 1 - p.mem_decay
        return "CubaLIF", {"tau_syn": dt / syn, "tau_mem": dt / mem, "r": 1 / mem,
                           "w_in": 1 / syn, "v_leak": 0.0, "v_threshold": p.v_threshold,
                           "v_reset": 0.0}


@pytest.fixture
def syn_family():
    register_family("test-syn-lif")(SynapticLIF)
    data.register_dataset("test-stripes", augment={"crop_padding": 1, "flip": False},
                          needs_dir=False)(stripes)
    try:
        yield
    finally:
        NEURONS.unregister("test-syn-lif")
        data.DATASETS.unregister("test-stripes")


def test_a_two_state_family_in_one_file_trains_and_round_trips(syn_family, tmp_path):
    out = tmp_path / "run"
    assert main(["distill", *TINY, "--dataset", "test-stripes", "--neuron", "test-syn-lif",
                 "--model-opt", "syn_decay=0.25", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["student_accuracy"] is not None
    student = torch.load(out / "checkpoints" / "student.pt", weights_only=True)
    assert student["model"]["neuron"] == "test-syn-lif"
    node = models.create("convnet", kind="snn", T=2, neuron="test-syn-lif",
                         syn_decay=0.25).stem_act.neuron
    assert node.params.syn_decay == 0.25
    x = torch.randn(4, 2, 3)
    assert torch.equal(node.simulate(x)[0], node.reference(x)[0])

    pytest.importorskip("nir")
    from snnrs.nir import export, load
    torch.manual_seed(0)
    net = torch.nn.Sequential(TimeDistributed(torch.nn.Linear(6, 5)),
                              SynapticLIF(0.25, 0.5, step_mode="m")).double()
    graph = export(net, (6,), dt=1e-3)
    assert type(graph.nodes["model.1"]).__name__ == "CubaLIF"
    back = load(graph, dtype=F64)
    assert any(isinstance(m, CubaLIF) for m in back.modules())   # an ordinary snnrs module
    x = torch.rand(12, 3, 6, dtype=F64) * 2
    want = net(x)
    assert 0 < want.sum() < want.numel() and torch.equal(back(x), want)


@pytest.mark.parametrize("neuron", [
    CubaLIF(tau=3.0, tau_syn=2.0, decay_input=False, v_reset=-0.1, step_mode="m"),
    LI(tau=4.0, v_rest=0.3, step_mode="m"), LI.from_leak(1.0, step_mode="m"),
    LIF(tau=2.0, step_mode="m"), IF(v_threshold=0.5, step_mode="m")])
def test_nir_import_gives_back_the_same_ordinary_module(neuron):
    pytest.importorskip("nir")
    from snnrs.nir import export, load
    torch.manual_seed(0)
    net = torch.nn.Sequential(TimeDistributed(torch.nn.Linear(6, 5)), neuron).double()
    back = load(export(net, (6,), dt=1e-3), dtype=F64)
    (imported,) = [m for m in back.modules() if isinstance(m, BaseNode)]
    assert type(imported) is type(neuron)
    x = torch.rand(12, 3, 6, dtype=F64) * 2
    torch.testing.assert_close(back(x), net(x), rtol=1e-12, atol=1e-12)


def test_nir_export_refuses_a_family_nir_has_no_node_for():
    pytest.importorskip("nir")
    from snnrs.nir import export
    net = torch.nn.Sequential(TimeDistributed(torch.nn.Linear(6, 5)), ALIF(step_mode="m"))
    with pytest.raises(ValueError, match=r"layer 'model.1' \(ALIF\) has no NIR neuron node"):
        export(net, (6,), dt=1e-3)


@pytest.mark.parametrize("flags", [["--method", "hybrid"],
                                   ["--method", "none", "--method-opt", "backprop=rate"]])
def test_rate_based_training_refuses_a_family_without_a_rate_mode_before_any_work(
        syn_family, tmp_path, capsys, flags):
    out = tmp_path / "run"
    assert main(["distill", *TINY, "--dataset", "test-stripes", "--neuron", "alif", *flags,
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "neuron 'alif' (ALIF) has none" in err and "backprop=bptt" in err
    assert not out.exists()


@pytest.mark.parametrize(("neuron", "options"), [
    ("cubalif", ["--model-opt", "tau_syn=2.0"]), ("alif", ["--model-opt", "tau_adapt=5.0"]),
    ("li", [])])
def test_each_family_trains_through_distill(syn_family, tmp_path, neuron, options):
    out = tmp_path / "run"
    assert main(["distill", *TINY, "--dataset", "test-stripes", "--neuron", neuron, *options,
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["student_accuracy"] is not None


# ---------------------------------------------------------------------------------------------
# Golden trajectories (tests/golden/families.json, written by tests/golden/make_families.py).

GOLDEN = Path(__file__).with_name("golden")
GOLDEN_CASES = json.loads((GOLDEN / "families.json").read_text())["cases"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", GOLDEN_CASES, ids=[c["name"] for c in GOLDEN_CASES])
def test_families_follow_their_golden_trajectories(case, dtype):
    node = NeuronSpec.make(case["kind"], **case["params"]).build()
    x, g, gv = (torch.tensor(case["inputs"][k], dtype=dtype) for k in ("x", "g", "gv"))
    x.requires_grad_()
    out, state = node.simulate(x)
    ((out * g).sum() + (state.v * gv).sum()).backward()
    want = case["outputs"]
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == F64 else {"rtol": 1e-4, "atol": 1e-4}
    if node.fires:
        assert out.tolist() == want["out"]           # the decisions are far from any threshold
    else:
        torch.testing.assert_close(out, torch.tensor(want["out"], dtype=dtype), **tol)
    for name, value in state._asdict().items():
        torch.testing.assert_close(value, torch.tensor(want["state"][name], dtype=dtype), **tol)
    torch.testing.assert_close(x.grad, torch.tensor(want["grad_x"], dtype=dtype), **tol)


def test_the_golden_file_is_what_its_script_writes():
    done = subprocess.run([sys.executable, str(GOLDEN / "make_families.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------------------------------
# CubaLIF's fused CPU kernel (rust/families/cuba.rs), held to the family's reference step.


def _cuba_run(run, x: Tensor, state, g: Tensor, gi: Tensor, gv: Tensor):
    """Outputs, final state and the gradients of x and (when given) the initial state of
    ``run(x, state)`` for the loss ``<out, g> + <i_T, gi> + <v_T, gv>``."""
    x = x.clone().requires_grad_()
    state = None if state is None else CubaLIF.State(*(s.clone().requires_grad_() for s in state))
    out, final = run(x, state)
    loss = (out.double() * g).sum() + (final.i.double() * gi).sum() + (final.v.double() * gv).sum()
    loss.backward()
    grads = (x.grad,) if state is None else (x.grad, state.i.grad, state.v.grad)
    return out.detach(), CubaLIF.State(*(s.detach() for s in final)), grads


@settings(max_examples=60, deadline=None)
@given(params=spiking, tau_syn=st.one_of(st.just(1.0), st.floats(1.0, 6.0)),
       detach_reset=st.booleans(),
       surrogate=st.sampled_from(["sigmoid", "atan", "triangle", "rectangle", "fast_sigmoid"]),
       T=st.integers(1, 9), shape=st.sampled_from([(1,), (3, 5), (2, 2, 3)]),
       with_state=st.booleans(), dtype=st.sampled_from([torch.float64, torch.float32]),
       seed=st.integers(0, 2**16))
def test_the_cubalif_kernel_equals_its_reference(params, tau_syn, detach_reset, surrogate, T,
                                                 shape, with_state, dtype, seed):
    node = CubaLIF(**params, tau_syn=tau_syn, detach_reset=detach_reset, surrogate=surrogate,
                   step_mode="m")
    assert kernel_for(CubaLIF, "cpu") is not None
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, *shape, dtype=F64, generator=gen) * 1.5).to(dtype)
    state = None if not with_state else CubaLIF.State(
        *(torch.randn(*shape, dtype=F64, generator=gen).to(dtype) for _ in range(2)))
    g, gi, gv = (torch.randn(*s, dtype=F64, generator=gen) for s in ((T, *shape), shape, shape))
    fused = _cuba_run(node.simulate, x, state, g, gi, gv)
    ref = _cuba_run(node.reference, x, state, g, gi, gv)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert torch.equal(fused[0], ref[0])
    assert fused[0].dtype == dtype and fused[1].v.dtype == dtype
    torch.testing.assert_close(fused[1], ref[1], rtol=tol, atol=tol)
    for got, want in zip(fused[2], ref[2], strict=True):
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)


def test_the_cubalif_kernel_runs_half_inputs_in_float32_and_serves_the_reference_off_cpu():
    node = CubaLIF(tau=2.0, tau_syn=3.0, step_mode="m")
    x = torch.rand(5, 2, 4, generator=torch.Generator().manual_seed(1)) * 3
    for half in (torch.float16, torch.bfloat16):
        out, state = node.simulate(x.to(half))
        ref, ref_state = node.reference(x.to(half))
        assert out.dtype == half and state.i.dtype == half
        assert torch.equal(out, ref) and torch.equal(state.v, ref_state.v)
    fused = unregister_kernel(CubaLIF, "cpu")
    try:
        assert kernel_for(CubaLIF, "cpu") is None
        assert torch.equal(node.simulate(x)[0], node.reference(x)[0])
    finally:
        register_kernel(CubaLIF, "cpu")(fused)


def test_the_cubalif_ops_check_every_buffer():
    from snnrs import _core
    from snnrs.backends._native import buf

    p = _core.Params(0.5, True, 1.0, 0.0, False, "sigmoid", 4.0)
    x, state = torch.zeros(3, 4, dtype=F64), torch.zeros(4, dtype=F64)
    syn = torch.ones(1, dtype=F64)
    outs = {"spikes": torch.empty(3, 4, dtype=F64), "h_seq": torch.empty(3, 4, dtype=F64),
            "i": torch.empty(4, dtype=F64), "v": torch.empty(4, dtype=F64)}
    bufs = {"x": buf(x), "i0": buf(state), "v0": buf(state), "leak_syn": buf(syn),
            **{k: buf(v) for k, v in outs.items()}}
    _core.cubalif_forward(_core.Cpu(1), p, 3, **bufs)
    short = torch.empty(3, 3, dtype=F64)
    with pytest.raises(ValueError, match="h_seq has 9 elements, expected 12"):
        _core.cubalif_forward(_core.Cpu(1), p, 3, **{**bufs, "h_seq": buf(short)})
    with pytest.raises(ValueError, match="overlap"):
        _core.cubalif_forward(_core.Cpu(1), p, 3, **{**bufs, "v": buf(outs["i"])})
    syn32, syn2 = syn.float(), syn * 2  # kept alive: the op reads their addresses
    with pytest.raises(TypeError, match="leak_syn is float32"):
        _core.cubalif_forward(_core.Cpu(1), p, 3, **{**bufs, "leak_syn": buf(syn32)})
    with pytest.raises(ValueError, match="leak_syn"):
        _core.cubalif_forward(_core.Cpu(1), p, 3, **{**bufs, "leak_syn": buf(syn2)})
    with pytest.raises(TypeError, match="needs the buffer 'grad_x'"):
        _core.cubalif_backward(_core.Cpu(1), p, 3, grad_spikes=buf(x), h_seq=buf(x))
