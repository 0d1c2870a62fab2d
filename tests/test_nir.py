"""NIR export and import (docs/nir.md): snnrs -> NIR -> snnrs gives the same outputs; Norse and
SpikingJelly read snnrs's graphs with the same spikes where their discrete math agrees; Norse's
recurrent braille graph runs in snnrs as in Norse; malformed graphs and networks NIR cannot
express are errors naming the node or layer; ``snnrs export`` writes a checkpoint's graph."""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import logging
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from snnrs import models
from snnrs.models import ModelSpec
from snnrs.nn import IF, LIF, PLIF, TimeDistributed
from torch import nn

nir = pytest.importorskip("nir")
import snnrs.nir as snir  # noqa: E402
from snnrs.nn import nir_form  # noqa: E402

DT = 2.0 ** -10  # a power of two: dt / tau is exact, so peers compute the very same floats


def _quietly(module: str):
    """Imports a peer library (Norse warns about torch.jit.script at import) or skips."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip(module)


def _run_stateful(module, x: torch.Tensor) -> torch.Tensor:
    """Steps a peer's imported graph (``module(x_t, state) -> (y_t, state)``) over ``x``."""
    state, out = None, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x_t in x:
            y, state = module(x_t, state)
            out.append(y)
    return torch.stack(out)


def _norse(graph, x: torch.Tensor, dt: float) -> torch.Tensor:
    norse = _quietly("norse.torch")
    logging.getLogger().setLevel(logging.ERROR)  # Norse logs that it ignores r
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch.load is deprecated
        module = norse.from_nir(graph, dt=dt, ignore_warnings=True)
    return _run_stateful(module, x)


def _spikingjelly(graph, x: torch.Tensor, dt: float) -> torch.Tensor:
    reader = _quietly("spikingjelly.activation_based.nir_exchange.from_nir")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = reader.import_from_nir(graph, dt=dt, dtype=x.dtype)
    return _run_stateful(module, x)


def _sequential(decay_input: bool = True, v_reset: float = 0.0) -> nn.Sequential:
    """Linear layers and IF / LIF / PLIF neurons on [T, B, 5], firing often."""
    net = nn.Sequential(
        TimeDistributed(nn.Linear(5, 16)), LIF(tau=2.0, step_mode="m"),
        TimeDistributed(nn.Linear(16, 12)), IF(v_threshold=0.7, step_mode="m"),
        TimeDistributed(nn.Linear(12, 6)),
        LIF(tau=2.0, decay_input=decay_input, v_reset=v_reset, step_mode="m"))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                m.weight.mul_(3.0)
                m.bias.add_(0.3)
    return net


def _lively(net: nn.Module) -> nn.Module:
    """``net`` in eval mode with BatchNorm statistics and affine parameters that make its
    neurons fire (a fresh zoo network barely does)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(2.0, 4.0)
                m.bias.uniform_(0.5, 1.2)
    return net.eval()


def _steps(images: torch.Tensor, T: int) -> torch.Tensor:
    return images.expand(T, *images.shape)


def _resnet(residual: str, **options) -> nn.Module:
    """A two-stage spiking ResNet of one block each (the second with a 1x1-conv shortcut)."""
    return models.resnet(models.SpikingLayers(models.NeuronSpec(), 2), [1, 1], [4, 8], 4,
                         num_classes=5, residual=residual, **options)


ZOO = {
    "convnet": (lambda: models.create("convnet", kind="snn", T=3), (1, 28, 28)),
    "vgg-like": (lambda: models.conv_stack(models.SpikingLayers(models.NeuronSpec(), 3),
                                           [[8], [8, 8], [16]], in_channels=2, num_classes=3),
                 (2, 16, 16)),
    "resnet-after-add": (lambda: _resnet("after_add"), (3, 8, 8)),
    "resnet-before-add": (lambda: _resnet("before_add"), (3, 8, 8)),
    "joint-asnn": (lambda: models.create("joint_resnet18", kind="snn", T=2, width=2,
                                         num_classes=3), (3, 16, 16)),
}
if "shortcut" in inspect.signature(models.resnet).parameters:
    ZOO["resnet-avgpool-shortcut"] = (lambda: _resnet("after_add", shortcut="avgpool"),
                                      (3, 8, 8))


# ---------------------------------------------------------------------------------------------
# snnrs -> NIR -> snnrs


def test_round_trip_through_a_file_is_exact_and_trains_alike(tmp_path):
    net = _sequential(decay_input=False, v_reset=0.2)
    net[1] = PLIF(init_tau=2.5, step_mode="m")
    x = torch.rand(8, 4, 5) * 2
    path = tmp_path / "net.nir"
    nir.write(path, snir.export(net, (5,), dt=1e-3))
    again = snir.load(path)  # dt from the graph's metadata
    assert again.dt == 1e-3 and not again.recurrent
    ref, out = net(x), again(x)
    assert 0 < ref.sum() < ref.numel()
    assert torch.equal(out, ref)
    ref.sum().backward()
    out.sum().backward()
    linears = [p for m in net.modules() if isinstance(m, nn.Linear) for p in m.parameters()]
    for a, b in zip(linears, again.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_networks_round_trip(name):
    build, shape = ZOO[name]
    net = _lively(build()).double()
    graph = snir.export(net, shape, dt=DT, readout=True)
    assert graph.metadata["snnrs_T"] == net.T and graph.metadata["dt"] == DT
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert "BatchNorm" not in str(kinds) and "AvgPool2d" not in kinds  # folded, sum pools
    again = snir.load(graph, dtype=torch.float64)
    images = torch.rand(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        per_step, logits = net.forward_steps(images), net(images)
        out = again(_steps(images, net.T))
    assert not torch.equal(per_step[:, 0], per_step[:, 1])  # spikes reach the head
    # the integrator's output at step t: the readout of steps 1..t
    readout = per_step.cumsum(0) / (1 if net.readout == "sum" else net.T)
    torch.testing.assert_close(out, readout, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out[-1], logits, rtol=1e-10, atol=1e-10)


def test_the_graph_survives_nir_write_and_read(tmp_path):
    net = _lively(models.create("convnet", kind="snn", T=2))
    graph = snir.export(net, (1, 28, 28), dt=1e-3)
    nir.write(tmp_path / "g.nir", graph)
    read = nir.read(tmp_path / "g.nir")
    assert [type(n).__name__ for n in graph.nodes.values()] == [
        "Input", "Conv2d", "SumPool2d", "LIF", "Conv2d", "SumPool2d", "LIF", "Conv2d", "LIF",
        "SumPool2d", "Flatten", "Affine", "Output"]
    assert {k: type(n) for k, n in read.nodes.items()} == {
        k: type(n) for k, n in graph.nodes.items()}
    assert sorted(read.edges) == sorted(graph.edges)
    for name, node in graph.nodes.items():
        for field in ("weight", "bias", "tau", "r", "v_leak", "v_threshold", "v_reset"):
            if hasattr(node, field):
                np.testing.assert_array_equal(getattr(read.nodes[name], field),
                                              getattr(node, field))
    lif = read.nodes["stem_act"]
    np.testing.assert_allclose(lif.tau, 2 * 1e-3)  # snnrs tau (steps) x dt
    assert (lif.r == 1).all() and (lif.v_leak == 0).all() and (lif.v_reset == 0).all()
    assert lif.metadata[nir_form.SPIKE_KEY] == nir_form.FIRES_AT
    images = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(snir.load(read)(_steps(images, 2)), net.forward_steps(images))


def test_the_mapping_of_the_parameters():
    assert nir_form.to_nir("lif", 0.25, True, -0.5, 0.01) == (0.04, 1.0, -0.5)
    assert nir_form.to_nir("lif", 0.25, False, 0.0, 0.01) == (0.04, 4.0, 0.0)
    assert nir_form.to_nir("if", 0.0, False, 0.0, 0.01).r == 100.0
    for leak in (0.1, 1 / 3, 0.75, 1.0):
        for decay_input in (True, False):
            c = nir_form.to_nir("lif", leak, decay_input, 0.0, 1e-4)
            back = nir_form.lif_from_nir(c.tau, c.r, 1e-4)
            assert back.decay_input == decay_input or leak == 1.0
            assert back.gain == 1.0 and np.float32(back.leak) == np.float32(leak)


# ---------------------------------------------------------------------------------------------
# Other libraries read snnrs's graphs


def test_norse_reads_snnrs_graphs_with_the_same_spikes():
    net = _sequential()  # LIF with decay_input and v_reset = 0, IF: where Norse agrees
    x = torch.rand(10, 4, 5) * 2
    graph = snir.export(net, (5,), dt=DT)
    with torch.no_grad():
        ref = net(x)
        theirs = _norse(graph, x, DT)
    assert 0 < ref.sum() < ref.numel()
    assert torch.equal(theirs, ref)


def test_norse_runs_the_zoo_convnet_one_image_at_a_time():
    net = _lively(models.create("convnet", kind="snn", T=3))
    graph = snir.export(net, (1, 28, 28), dt=DT)
    images = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        ours = net.forward_steps(images)
        # Norse's Flatten keeps NIR's per-sample dims as torch dims: batches of one only
        theirs = torch.stack([_norse(graph, _steps(images[i:i + 1], 3), DT)
                              for i in range(2)], 1)
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-6)


def test_spikingjelly_reads_snnrs_graphs_with_the_same_spikes():
    net = _sequential(decay_input=False, v_reset=0.2)  # SpikingJelly agrees here too
    x = torch.rand(10, 4, 5) * 2
    with torch.no_grad():
        ref = net(x)
        theirs = _spikingjelly(snir.export(net, (5,), dt=DT), x, DT)
    assert 0 < ref.sum() < ref.numel()
    assert torch.equal(theirs, ref)


@pytest.mark.parametrize("name", ["convnet", "resnet-before-add"])
def test_spikingjelly_runs_zoo_graphs(name):
    build, shape = ZOO[name]
    net = _lively(build())
    images = torch.rand(2, *shape)
    graph = snir.export(net, shape, dt=DT)
    with torch.no_grad():
        ours = snir.load(graph)(_steps(images, net.T))
        theirs = _spikingjelly(graph, _steps(images, net.T), DT)
        torch.testing.assert_close(ours, net.forward_steps(images), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Graphs from other libraries run in snnrs


def _braille():
    spec = importlib.util.find_spec("norse")
    if spec is None:
        pytest.skip("needs norse (its wheel ships braille.nir)")
    path = Path(spec.origin).parent / "torch" / "utils" / "test" / "braille.nir"
    if not path.is_file():
        pytest.skip(f"no {path}")
    return path


def test_norse_braille_graph_gives_norses_spikes_and_trains():
    path = _braille()
    net = snir.load(path, dt=1e-4)  # the step its time constants were trained for
    assert net.recurrent and net.input_shape == (12,) and net.output_shape == (7,)
    x = (torch.rand(100, 4, 12) < 0.3).float()
    with torch.no_grad():
        theirs = _norse(nir.read(path), x, 1e-4)
    ours = net(x)
    assert 0 < theirs.sum() < theirs.numel()
    assert torch.equal(ours, theirs)
    ours.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def _lif_graph(tau, threshold=1.0, metadata=None, r=1.0):
    n = 3
    lif = nir.LIF(tau=np.broadcast_to(np.asarray(tau, float), (n,)).copy(), r=np.full(n, r),
                  v_leak=np.zeros(n), v_threshold=np.full(n, threshold), v_reset=np.zeros(n),
                  metadata=metadata or {})
    return nir.NIRGraph.from_list(nir.Input({"input": np.array([n])}), lif,
                                  nir.Output({"output": np.array([n])}))


@pytest.mark.parametrize("tau", [2 * DT, [2 * DT, 4 * DT, 8 * DT]], ids=["fast", "per-neuron"])
def test_nir_lif_graphs_fire_as_in_norse(tau):
    graph = _lif_graph(tau)
    x = torch.rand(20, 3, 3) * 3
    with torch.no_grad():
        ours, theirs = snir.load(graph, dt=DT)(x), _norse(graph, x, DT)
    assert 0 < ours.sum() < ours.numel()
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("tau", [2 * DT, [2 * DT, 2 * DT + 1e-9, 2 * DT]],
                         ids=["fast", "per-neuron"])
def test_a_charge_exactly_at_threshold_fires_by_the_graphs_rule(tau):
    x = torch.full((1, 1, 3), 2.0)  # v = 0 + (2 - 0) / 2 = 1.0, the threshold, at tau = 2 dt
    nir_rule = snir.load(_lif_graph(tau), dt=DT)(x)
    snnrs_rule = snir.load(_lif_graph(tau, metadata={nir_form.SPIKE_KEY: nir_form.FIRES_AT}),
                           dt=DT)(x)
    assert nir_rule[0, 0, 0] == 0 and snnrs_rule[0, 0, 0] == 1
    assert torch.equal(nir_rule[..., :1], _norse(_lif_graph(tau), x, DT)[..., :1])


def test_a_recurrent_lif_graph_runs_step_by_step():
    w_in = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    w_rec = np.random.default_rng(1).normal(size=(4, 4)).astype(np.float32)
    lif = nir.LIF(tau=np.full(4, 2 * DT), r=np.ones(4), v_leak=np.zeros(4),
                  v_threshold=np.ones(4), v_reset=np.zeros(4))
    graph = nir.NIRGraph(
        nodes={"input": nir.Input({"input": np.array([3])}), "w_in": nir.Linear(w_in),
               "lif": lif, "w_rec": nir.Affine(w_rec, np.full(4, 0.1, np.float32)),
               "output": nir.Output({"output": np.array([4])})},
        edges=[("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
               ("lif", "output")])
    net = snir.load(graph, dt=DT)
    assert net.recurrent
    x = torch.rand(12, 2, 3) * 2
    v, s, want = torch.zeros(2, 4), None, []
    for x_t in x:  # NIR's LIF at tau = 2 dt; the loop edge carries the previous step
        current = x_t @ torch.from_numpy(w_in).T
        if s is not None:
            current = current + s @ torch.from_numpy(w_rec).T + 0.1
        v = v + (current - v) / 2
        s = (v > 1.0).float()
        v = v * (1 - s)
        want.append(s)
    out = net(x)
    assert 0 < out.sum() < out.numel()
    assert torch.equal(out, torch.stack(want))


def test_cuba_li_scale_threshold_and_pooling_nodes_run():
    n = 4
    graph = nir.NIRGraph.from_list(
        nir.Input({"input": np.array([1, 4, 4])}),
        nir.Conv2d(input_shape=(4, 4), weight=np.ones((1, 1, 1, 1), np.float32), stride=1,
                   padding=0, dilation=1, groups=1, bias=np.zeros(1, np.float32)),
        nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                      padding=np.array([0, 0])),
        nir.Flatten({"input": np.array([1, 2, 2])}, 0, -1),
        nir.Scale(np.full(n, 0.5)),
        nir.CubaLI(tau_syn=np.full(n, 2 * DT), tau_mem=np.full(n, 4 * DT), r=np.ones(n),
                   v_leak=np.zeros(n)),
        nir.Threshold(np.full(n, 0.3)))
    net = snir.load(graph, dt=DT)
    x = torch.ones(3, 1, 1, 4, 4)
    # sum pool 4, scale 0.5: x = 2; i = 1, 1.5, 1.75; v = 0.25, 0.5625, 0.86: v > 0.3 spikes
    assert net(x)[:, 0, 0].tolist() == [0.0, 1.0, 1.0]


# ---------------------------------------------------------------------------------------------
# Errors


def _graph(nodes: dict, edges: list) -> object:
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _affine(n_in: int, n_out: int):
    return nir.Affine(np.ones((n_out, n_in), np.float32), np.zeros(n_out, np.float32))


def _io(n_in: int = 3, n_out: int = 3) -> dict:
    return {"input": nir.Input({"input": np.array([n_in])}),
            "output": nir.Output({"output": np.array([n_out])})}


MALFORMED = {
    "unsupported node": (lambda: _graph({**_io(), "d": nir.Delay(np.ones(3))},
                                        [("input", "d"), ("d", "output")]),
                         "node 'd' is a Delay, which snnrs.nir.load cannot run"),
    "missing node": (lambda: _graph(_io(), [("input", "ghost"), ("ghost", "output")]),
                     "names a node 'ghost'"),
    "two inputs": (lambda: _graph({**_io(), "in2": nir.Input({"input": np.array([3])})},
                                  [("input", "output"), ("in2", "output")]),
                   "one Input and one Output"),
    "unreachable": (lambda: _graph({**_io(), "a": _affine(3, 3), "b": _affine(3, 3)},
                                   [("input", "a"), ("a", "output"), ("b", "a")]),
                    "node(s) 'b' cannot be reached"),
    "wrong shape": (lambda: _graph({**_io(3, 2), "a": _affine(3, 4), "b": _affine(5, 2)},
                                   [("input", "a"), ("a", "b"), ("b", "output")]),
                    "node 'b' (Affine) cannot take input of per-sample shape (4,)"),
    "zero tau": (lambda: _lif_graph([0.0, 1.0, 1.0]), "its tau must be > 0"),
    "nan threshold": (lambda: _lif_graph(2 * DT, threshold=math.nan), "not finite"),
    "mismatched neuron": (lambda: _graph({**_io(3, 4), "a": _affine(3, 4),
                                          "lif": _lif_graph(2 * DT).nodes["lif"]},
                                         [("input", "a"), ("a", "lif"), ("lif", "output")]),
                          "node 'lif' (LIF) cannot take input of per-sample shape (4,)"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_graphs_are_named_errors(case):
    make, message = MALFORMED[case]
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        snir.load(make(), dt=DT)


def test_bad_dt_files_and_inputs_are_named_errors(tmp_path):
    graph = _lif_graph(2 * DT)
    with pytest.raises(ValueError, match="pass dt"):
        snir.load(graph)
    with pytest.raises(ValueError, match=r"dt \(the time step, in seconds\) must be"):
        snir.load(graph, dt=0.0)
    with pytest.raises(FileNotFoundError):
        snir.load(tmp_path / "missing.nir", dt=DT)
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="is not a readable NIR graph"):
        snir.load(tmp_path / "junk.nir", dt=DT)
    with pytest.raises(ValueError, match=r"expected input \[T, B, 3\]"):
        snir.load(graph, dt=DT)(torch.zeros(2, 3))


KINDS = ["affine", "lif", "if", "cubalif", "threshold", "delay"]


def _node(kind: str):
    n = np.ones(3)
    return {"affine": lambda: _affine(3, 3),
            "lif": lambda: nir.LIF(tau=n * 2e-3, r=n, v_leak=0 * n, v_threshold=n, v_reset=0 * n),
            "if": lambda: nir.IF(r=n * 1e3, v_threshold=n, v_reset=0 * n),
            "cubalif": lambda: nir.CubaLIF(tau_syn=n * 2e-3, tau_mem=n * 3e-3, r=n,
                                           v_leak=0 * n, v_threshold=n),
            "threshold": lambda: nir.Threshold(n),
            "delay": lambda: nir.Delay(n)}[kind]()


@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4),
       edges=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=6))
def test_any_graph_runs_or_is_a_value_error(kinds, edges):
    """A chain input -> n0 -> ... -> output of random kinds, plus random edges (branches, loops,
    and edges out of the output or into the input)."""
    names = ["input", *(f"n{i}" for i in range(len(kinds))), "output"]
    nodes = {**{f"n{i}": _node(k) for i, k in enumerate(kinds)}, **_io()}
    chain = list(itertools.pairwise(names))
    wired = list(dict.fromkeys(chain + [(names[a % len(names)], names[b % len(names)])
                                        for a, b in edges]))
    try:
        net = snir.load(_graph(nodes, wired), dt=1e-3)
    except ValueError as e:
        assert str(e)
        return
    out = net(torch.rand(3, 2, 3))
    assert out.shape == (3, 2, 3) and torch.isfinite(out).all()


NOT_EXPRESSIBLE = {
    "soft reset": (lambda: models.create("convnet", kind="snn", T=2, v_reset=None),
                   "'stem_act' .LIF. uses soft reset"),
    "trailing ReLU": (lambda: models.create("convnet", kind="snn", T=2, last_relu=True),
                      "'stages.1.2' is an analog activation .ReLU."),
    "max pooling": (lambda: models.create("convnet", kind="snn", T=2, pool="max"),
                    "'stem.2' is max pooling"),
    "an ANN": (lambda: models.create("convnet", kind="ann"), "is in ANN mode"),
    "Joint A-SNN in ANN mode": (lambda: models.create("joint_resnet18", kind="ann", width=2),
                                "is in ANN mode"),
    "a custom layer": (lambda: nn.Sequential(nn.Linear(1, 1), nn.Softplus()),
                       "layer 'model.1' .Softplus. is not supported"),
}


@pytest.mark.parametrize("case", NOT_EXPRESSIBLE)
def test_networks_nir_cannot_express_are_refused_naming_the_layer(case):
    make, message = NOT_EXPRESSIBLE[case]
    shape = (1,) if case == "a custom layer" else (1, 28, 28)
    if case == "Joint A-SNN in ANN mode":
        shape = (3, 16, 16)
    with pytest.raises(ValueError, match=message):
        snir.export(make(), shape, dt=1e-3)


def test_a_misread_network_is_caught_by_the_self_check(monkeypatch):
    net = _lively(models.create("convnet", kind="snn", T=2))
    snir.export(net, (1, 28, 28))
    forward = models.Head.forward
    monkeypatch.setattr(models.Head, "forward", lambda head, h: 2 * forward(head, h))
    with pytest.raises(ValueError, match="computes something else than the network"):
        snir.export(net, (1, 28, 28))
    assert snir.export(net, (1, 28, 28), check=False) is not None


def test_nir_is_optional(monkeypatch):
    out = subprocess.run([sys.executable, "-c", "import sys, snnrs, snnrs.cli, snnrs.nir; "
                          "print('nir' in sys.modules, 'h5py' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ImportError, match=r"pip install snnrs\[nir\]"):
        snir.export(nn.Sequential(), (1,))


# ---------------------------------------------------------------------------------------------
# The command


def _checkpoint(path: Path, kind: str = "snn") -> nn.Module:
    from snnrs.train import checkpoint

    spec = ModelSpec("convnet", kind=kind, num_classes=10, in_channels=1, T=2)
    net = _lively(spec.build())
    checkpoint.save(path, {
        "model": spec.to_dict(), "epoch": 1, "config": {"data_dir": None, "seed": 0},
        "method": {f"student.{k}": v for k, v in net.state_dict().items()},
        "data": {"dataset": "mnist", "mean": [0.13], "std": [0.31]}})
    return net


def test_export_command_writes_the_students_graph(tmp_path, capsys):
    from snnrs.cli import main

    net = _checkpoint(tmp_path / "student.pt")
    out = tmp_path / "out" / "student.nir"
    assert main(["export", str(tmp_path / "student.pt"), "--nir", str(out), "--dt", "1e-3",
                 "--input-shape", "1", "28", "28"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["student.nir"]  # no temporary left
    graph = nir.read(out)
    assert graph.metadata["snnrs_dataset"] == "mnist"
    np.testing.assert_allclose(graph.metadata["snnrs_input_std"], [0.31])
    images = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(snir.load(graph)(_steps(images, 2)), net.forward_steps(images))
    # the image shape read from the dataset, the readout written, T re-timed
    assert main(["export", str(tmp_path / "student.pt"), "--nir", str(out), "--T", "3",
                 "--readout"]) == 0
    graph = nir.read(out)
    assert graph.metadata["snnrs_T"] == 3 and "readout" in graph.nodes
    assert tuple(graph.nodes["input"].input_type["input"]) == (1, 28, 28)


def test_export_command_refuses_an_ann_and_has_help(tmp_path, capsys):
    from snnrs.cli import main

    _checkpoint(tmp_path / "teacher.pt", kind="ann")
    assert main(["export", str(tmp_path / "teacher.pt"), "--nir", str(tmp_path / "t.nir")]) == 2
    assert "holds an ANN" in capsys.readouterr().err
    assert not (tmp_path / "t.nir").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith("usage: snnrs export") and "examples:" in out
