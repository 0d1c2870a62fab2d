"""NIR import under hostile input (docs/nir.md, "Limits"): no small file makes snnrs allocate
gigabytes, and parameters that are not a neuron's are refused, naming the node and parameter.

A file that declares data it does not hold (HDF5 reads a never-written dataset as fill values)
is loaded in a child process whose address space is capped at 2 GiB above its baseline: the
child must answer with snnrs's refusal, not die or raise MemoryError; the same child loads an
honest graph under that cap, so the cap does not refuse everything."""

from __future__ import annotations

import math
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

nir = pytest.importorskip("nir")
h5py = pytest.importorskip("h5py")
import snnrs.nir as snir  # noqa: E402

DT = 1e-3
N = 3
HEADROOM = 2 << 30  # the child's address space: its baseline after importing torch, plus this

CHILD = r"""
import resource, sys
import h5py, nir, numpy, torch
import snnrs.nir

torch.set_num_threads(1)
snnrs.nir.load(sys.argv[1])  # every import and first-use allocation happens before the cap
with open("/proc/self/status") as status:
    vm = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize:"))
hard = resource.getrlimit(resource.RLIMIT_AS)[1]
resource.setrlimit(resource.RLIMIT_AS, (vm + int(sys.argv[2]), hard))
print("ready", flush=True)
for line in sys.stdin:
    try:
        snnrs.nir.load(line.rstrip("\n"))
        print("loaded", flush=True)
    except BaseException as e:
        print(type(e).__name__ + ": " + " ".join(str(e).split()), flush=True)
"""


def _valid_graph():
    """input [3] -> affine -> lif -> output, with its dt."""
    graph = nir.NIRGraph.from_list(
        nir.Input({"input": np.array([N])}),
        nir.Affine(np.eye(N, dtype=np.float32), np.zeros(N, np.float32)),
        nir.LIF(tau=np.full(N, 2 * DT), r=np.ones(N), v_leak=np.zeros(N),
                v_threshold=np.ones(N), v_reset=np.zeros(N)),
        nir.Output({"output": np.array([N])}))
    graph.metadata = {"dt": DT}
    return graph


def _write(path: Path, graph=None) -> Path:
    nir.write(path, graph if graph is not None else _valid_graph())
    return path


def _replace(path: Path, where: str, **dataset) -> None:
    """Replaces (or adds) the dataset ``/node/<where>`` of the file by one made with
    ``h5py.Group.create_dataset(**dataset)``."""
    parent, name = f"node/{where}".rsplit("/", 1)
    with h5py.File(path, "a") as f:
        group = f.require_group(parent)
        if name in group:
            del group[name]
        group.create_dataset(name, **dataset)


class Child:
    """A python under an address-space cap that loads the NIR files it is sent, one a line,
    and answers ``loaded`` or ``<exception type>: <message>``."""

    def __init__(self, valid: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(valid), str(HEADROOM)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        assert self._answer(600) == "ready"

    def _answer(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            return f"died (exit code {self.proc.wait()})"
        return line.rstrip("\n")

    def load(self, path: Path) -> str:
        assert self.proc.poll() is None, "the child died on an earlier file"
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        return self._answer(120)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nir_files")


@pytest.fixture(scope="module")
def child(files):
    c = Child(_write(files / "valid.nir"))
    yield c
    c.close()


def _refused(answer: str, path: Path, *fragments: str) -> None:
    """``answer`` is snnrs's ValueError naming the file and every fragment."""
    assert answer.startswith(f"ValueError: {path}: "), answer
    for fragment in fragments:
        assert fragment in answer, answer


# ---------------------------------------------------------------------------------------------
# Files that declare more than they hold


def test_the_capped_child_loads_an_honest_graph(child, files):
    assert child.load(files / "valid.nir") == "loaded"


def test_a_compressed_dataset_never_written_is_refused(child, files):
    """The audit's 25 kB file: a weight declared 10^8 x 3, gzip, never written (2.2 GiB of
    fill values if read)."""
    path = _write(files / "never_written.nir")
    _replace(path, "nodes/affine/weight", shape=(10**8, 3), dtype="f8", compression="gzip")
    assert path.stat().st_size < 64 << 10
    _refused(child.load(path), path, "node 'affine', dataset 'weight'",
             "(/node/nodes/affine/weight) declares shape (100000000, 3) of float64: 2.24 GiB",
             "the file stores none of it")
    with pytest.raises(ValueError, match=r"never_written\.nir: node 'affine', dataset 'weight'"):
        snir.load(path)


def test_a_weight_written_in_part_is_refused(child, files):
    """A file lying about a weight's shape: declared 2^20 x 2^10, one 32 x 32 chunk written."""
    path = _write(files / "in_part.nir")
    _replace(path, "nodes/affine/weight", shape=(1 << 20, 1 << 10), dtype="f4",
             chunks=(32, 32), compression="gzip")
    with h5py.File(path, "a") as f:
        f["node/nodes/affine/weight"][:32, :32] = np.random.default_rng(0).random((32, 32))
    _refused(child.load(path), path, "dataset 'weight'", "4 GiB, but the file stores",
             "more than 1100 times less (limits.compression)")


def test_a_huge_input_node_is_refused_before_shape_inference(child, files):
    """Input 50,000 x 50,000 flattened: shape inference would allocate 9.3 GiB."""
    shape = np.array([50_000, 50_000])
    graph = nir.NIRGraph.from_list(nir.Input({"input": shape}),
                                   nir.Flatten({"input": shape}, 0, -1),
                                   nir.Output({"output": np.array([50_000 * 50_000])}))
    graph.metadata = {"dt": DT}
    path = _write(files / "huge_input.nir", graph)
    answer = child.load(path)
    assert answer.startswith("ValueError: the Input node 'input' has per-sample shape "
                             "(50000, 50000), in torch.float32: 9.31 GiB, more than the limit "
                             "of 1 GiB (limits.array_bytes"), answer


def test_an_inferred_shape_past_the_cap_is_refused(child, files):
    """A 1 x 8 x 8 input padded by 30,000: the conv's output would be 13 GiB per sample."""
    conv = nir.Conv2d(input_shape=(8, 8), weight=np.ones((1, 1, 1, 1), np.float32), stride=1,
                      padding=30_000, dilation=1, groups=1, bias=np.zeros(1, np.float32))
    graph = nir.NIRGraph.from_list(nir.Input({"input": np.array([1, 8, 8])}), conv,
                                   nir.Output({"output": np.array([1, 60_008, 60_008])}))
    graph.metadata = {"dt": DT}
    path = _write(files / "padded.nir", graph)
    answer = child.load(path)
    assert answer.startswith("ValueError: node 'conv2d' (Conv2d) has per-sample shape "
                             "(1, 60008, 60008), in torch.float32: 13.4 GiB, more than"), answer


@given(h=st.integers(1, 1 << 20), w=st.integers(1, 1 << 20), pad=st.integers(0, 1 << 16))
def test_any_shape_past_the_cap_is_refused_before_allocating(child, files, h, w, pad):
    """Input [1, h, w] -> conv padded by ``pad`` -> output: the first shape over 1 GiB of
    float32 is refused by name in the capped child; graphs within the cap load."""
    conv = nir.Conv2d(input_shape=(h, w), weight=np.ones((1, 1, 1, 1), np.float32), stride=1,
                      padding=pad, dilation=1, groups=1, bias=np.zeros(1, np.float32))
    out = (1, h + 2 * pad, w + 2 * pad)
    graph = nir.NIRGraph.from_list(nir.Input({"input": np.array([1, h, w])}), conv,
                                   nir.Output({"output": np.array(out)}))
    graph.metadata = {"dt": DT}
    answer = child.load(_write(files / "shapes.nir", graph))
    if 4 * h * w > 1 << 30:
        assert answer.startswith(f"ValueError: the Input node 'input' has per-sample shape "
                                 f"{(1, h, w)}, in torch.float32:"), answer
    elif 4 * math.prod(out) > 1 << 30:
        assert answer.startswith(f"ValueError: node 'conv2d' (Conv2d) has per-sample shape "
                                 f"{out}, in torch.float32:"), answer
    else:
        assert answer == "loaded"


def test_parameters_that_broadcast_past_the_cap_are_refused(child, files):
    """NIR broadcasts a CubaLIF's w_in against its other parameters: a w_in of shape
    [20000, 1] against [20000] would make 3 GiB of float64 inside nir.read."""
    n = 20_000
    cuba = nir.CubaLIF(tau_syn=np.full(n, 2 * DT), tau_mem=np.full(n, 4 * DT), r=np.ones(n),
                       v_leak=np.zeros(n), v_threshold=np.ones(n))
    graph = nir.NIRGraph.from_list(nir.Input({"input": np.array([n])}), cuba,
                                   nir.Output({"output": np.array([n])}))
    graph.metadata = {"dt": DT}
    path = _write(files / "broadcast.nir", graph)
    _replace(path, "nodes/cubalif/w_in", data=np.ones((n, 1)), compression="gzip")
    _refused(child.load(path), path, "the datasets of node 'cubalif' (/node/nodes/cubalif) "
             "broadcast to shape (20000, 20000), as float64: 2.98 GiB", "limits.array_bytes")


LAYOUTS = {
    "contiguous": {},
    "gzip": {"compression": "gzip"},
    "lzf, shuffled": {"compression": "lzf", "shuffle": True},
    "gzip, a fill value": {"compression": "gzip", "fillvalue": 7},
}


@given(where=st.sampled_from(["nodes/affine/weight", "nodes/affine/bias", "nodes/lif/tau",
                              "nodes/lif/v_threshold", "nodes/input/shape", "metadata/dt",
                              "nodes/lif/metadata/extra", "nodes/output/extra"]),
       log2=st.integers(20, 34), rest=st.lists(st.integers(1, 64), max_size=2),
       dtype=st.sampled_from(["u1", "f4", "f8", "i8"]), layout=st.sampled_from(list(LAYOUTS)),
       one_chunk=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_any_dataset_declared_but_not_held_is_refused_before_allocating(
        child, files, where, log2, rest, dtype, layout, one_chunk, seed):
    """Any dataset nir.read would read, of 2^20 to 2^34 elements, never written or written one
    chunk (at most 1/2048 of it) in a chunked layout: the capped child answers snnrs's
    refusal naming the file and the dataset, and loads again afterwards."""
    shape = (max(1, (1 << log2) // math.prod(rest)), *rest)
    options = dict(LAYOUTS[layout])
    if one_chunk:
        options["chunks"] = tuple(min(s, 8) for s in shape)
    path = _write(files / "bomb.nir")
    _replace(path, where, shape=shape, dtype=dtype, **options)
    if one_chunk:
        with h5py.File(path, "a") as f:
            first = tuple(slice(0, c) for c in options["chunks"])
            values = np.random.default_rng(seed).integers(0, 200, options["chunks"])
            f[f"node/{where}"][first] = values.astype(dtype)
    _refused(child.load(path), path, f"(/node/{where}) declares shape {shape} of "
             f"{np.dtype(dtype)}", "refused")
    assert child.load(files / "valid.nir") == "loaded"


@pytest.mark.parametrize("case", ["external link", "external storage", "linked twice"])
def test_data_outside_the_file_or_read_twice_is_refused(files, case):
    path = _write(files / f"{case.replace(' ', '_')}.nir")
    with h5py.File(path, "a") as f:
        lif = f["node/nodes/lif"]
        if case == "external link":
            del lif["tau"]
            lif["tau"] = h5py.ExternalLink("/dev/zero", "/tau")
        elif case == "external storage":
            del lif["tau"]
            lif.create_dataset("tau", shape=(N,), dtype="f8", external=[("/dev/zero", 0, 24)])
        else:
            f["node/nodes/affine/also"] = f["node/nodes/lif"]
    message = {"external link": "node 'lif', entry 'tau' (/node/nodes/lif/tau) links to "
                                "another file (/dev/zero)",
               "external storage": "node 'lif', dataset 'tau' (/node/nodes/lif/tau) keeps its "
                                   "data outside the file",
               "linked twice": "node 'affine', entry 'also' (/node/nodes/affine/also) is "
                               "linked twice in the file"}[case]
    with pytest.raises(ValueError, match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
        snir.load(path)


# ---------------------------------------------------------------------------------------------
# The caps: honest graphs load, and the caller moves them


def test_an_honest_highly_compressed_graph_loads_and_the_caps_move(tmp_path):
    """Zero weights compress about 600:1 with gzip and are honest: they load by default; each
    cap, lowered, refuses them with its own name."""
    graph = nir.NIRGraph.from_list(nir.Input({"input": np.array([500])}),
                                   nir.Affine(np.zeros((500, 500)), np.zeros(500)),
                                   nir.Output({"output": np.array([500])}))
    graph.metadata = {"dt": DT}
    path = _write(tmp_path / "zeros.nir", graph)
    with h5py.File(path) as f:
        weight = f["node/nodes/affine/weight"]
        assert weight.nbytes > 100 * weight.id.get_storage_size()
    net = snir.load(path)
    assert net(torch.ones(2, 1, 500)).abs().sum() == 0
    cases = {snir.Limits(compression=10): r"stores .* more than 10 times less "
                                          r"\(limits\.compression\)",
             snir.Limits(array_bytes=1 << 20): r"'weight' .* 1\.91 MiB, more than the limit of "
                                               r"1 MiB \(limits\.array_bytes",
             snir.Limits(graph_bytes=1 << 20): r"its datasets up to .* declare .*more than the "
                                               r"limit of 1 MiB \(limits\.graph_bytes"}
    for limits, message in cases.items():
        with pytest.raises(ValueError, match=re.escape(f"{path}: ") + ".*" + message):
            snir.load(path, limits=limits)
    assert snir.load(path, limits=snir.Limits(array_bytes=4 << 20, graph_bytes=4 << 20))


def test_a_broadcast_view_in_memory_is_capped_before_it_is_copied():
    graph = _valid_graph()
    graph.nodes["affine"].weight = np.broadcast_to(np.float32(1), (1000, 1000))
    with pytest.raises(ValueError, match=r"node 'affine''s weight has shape \(1000, 1000\) of "
                                         r"float32: 3\.81 MiB, more than the limit of 1 MiB"):
        snir.load(graph, limits=snir.Limits(array_bytes=1 << 20))


@pytest.mark.parametrize("limits, message", [
    (snir.Limits(array_bytes=0), r"limits\.array_bytes must be an integer > 0, got 0"),
    (snir.Limits(graph_bytes=1.5), r"limits\.graph_bytes must be an integer > 0, got 1\.5"),
    (snir.Limits(compression=math.inf), r"limits\.compression must be a finite number >= 1"),
    ({"array_bytes": 10}, r"limits must be a snnrs\.nir\.Limits, got dict"),
])
def test_bad_limits_are_named(limits, message):
    error = TypeError if isinstance(limits, dict) else ValueError
    with pytest.raises(error, match=message):
        snir.load(_valid_graph(), limits=limits)


def test_a_real_export_round_trips_through_a_file_under_the_default_caps(tmp_path):
    from snnrs import models
    net = models.create("convnet", kind="snn", T=2).eval()
    path = tmp_path / "convnet.nir"
    nir.write(path, snir.export(net, (1, 28, 28), dt=DT))
    again = snir.load(path)
    images = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert again(images.expand(2, *images.shape)).shape == (2, 2, 10)


# ---------------------------------------------------------------------------------------------
# Parameters that are not a neuron's


def _neuron_graph(kind: str, **values):
    """input [3] -> a ``kind`` neuron with sound parameters, ``values`` replacing some ->
    output."""
    ones = np.ones(N)
    fields = {"tau": 2 * DT * ones, "tau_syn": 2 * DT * ones, "tau_mem": 4 * DT * ones,
              "r": ones, "v_leak": 0 * ones, "v_threshold": ones, "v_reset": 0 * ones,
              "w_in": ones}
    names = {"LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
             "LI": ("tau", "r", "v_leak"),
             "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
             "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in")}[kind]
    params = {k: np.broadcast_to(np.asarray(values.get(k, fields[k]), float), (N,)).copy()
              for k in names}
    return nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([N])}),
                               "cell": getattr(nir, kind)(**params),
                               "output": nir.Output({"output": np.array([N])})},
                        edges=[("input", "cell"), ("cell", "output")], type_check=False)


TAUS = {"LIF": ["tau"], "LI": ["tau"], "CubaLIF": ["tau_syn", "tau_mem"],
        "CubaLI": ["tau_syn", "tau_mem"]}
KINDS_AND_TAUS = [(k, t) for k, ts in TAUS.items() for t in ts]


@given(kind_tau=st.sampled_from(KINDS_AND_TAUS),
       tau=st.one_of(st.floats(min_value=1e-320, max_value=DT * (1 - 1e-9),
                               allow_subnormal=True),
                     st.sampled_from([1e-300, 5e-324, DT / 2])),
       neuron=st.integers(0, N - 1), per_neuron=st.booleans())
def test_a_time_constant_below_dt_is_refused_naming_node_and_parameter(kind_tau, tau, neuron,
                                                                        per_neuron):
    """tau < dt makes dt / tau (the share of v - v_leak lost per step) > 1: the Euler step
    overshoots and grows without bound; tau = 1e-300 makes it 1e297, a subnormal tau inf."""
    kind, name = kind_tau
    value = np.full(N, 2 * DT)
    value[neuron if per_neuron else slice(None)] = tau
    at = rf" at neuron \({neuron if per_neuron else 0},\)"  # the first of the worst
    with pytest.raises(ValueError, match=rf"node 'cell' \({kind}\): dt / {name} \(dt = 0\.001 "
                                         rf"s, {name} = [-+.e0-9]+ s{at}\) must be in \[0, 1\]"):
        snir.load(_neuron_graph(kind, **{name: value}), dt=DT)


@given(kind_tau=st.sampled_from(KINDS_AND_TAUS),
       steps=st.floats(min_value=1.0, max_value=1e30), dtype=st.sampled_from(["32", "64"]))
def test_a_time_constant_of_at_least_dt_runs_and_stays_finite(kind_tau, steps, dtype):
    kind, name = kind_tau
    net = snir.load(_neuron_graph(kind, **{name: np.full(N, DT * steps)}), dt=DT,
                    dtype=getattr(torch, f"float{dtype}"))
    with torch.no_grad():
        out = net(torch.rand(20, 2, N, dtype=getattr(torch, f"float{dtype}")) * 4)
    assert torch.isfinite(out).all()


def test_a_tiny_dt_and_tau_run_in_float32():
    """dt = 1e-300 s and tau = 10 dt underflow to 0 in float32, so a leak of 1 / tau there
    was inf; snnrs takes dt / tau = 0.1 in float64."""
    graph = _neuron_graph("CubaLI", tau_syn=np.full(N, 1e-299), tau_mem=np.full(N, 2e-299))
    out = snir.load(graph, dt=1e-300)(torch.ones(5, 1, N))
    assert torch.isfinite(out).all() and out[-1].min() > 0


NOT_FINITE = [math.nan, math.inf, -math.inf]


@given(kind=st.sampled_from(list(TAUS)), data=st.data())
def test_non_finite_neuron_parameters_are_refused(kind, data):
    graph = _neuron_graph(kind)
    name = data.draw(st.sampled_from(sorted(vars(graph.nodes["cell"]).keys() & {
        "tau", "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"})))
    bad = data.draw(st.sampled_from([*NOT_FINITE, 1e39]))  # 1e39: past float32's range
    value = np.full(N, getattr(graph.nodes["cell"], name)[0])
    value[data.draw(st.integers(0, N - 1))] = bad
    with pytest.raises(ValueError, match=rf"node 'cell' \({kind}\): its {name} is not finite "
                                         r"everywhere in torch\.float32"):
        snir.load(_neuron_graph(kind, **{name: value}), dt=DT)


@pytest.mark.parametrize("node, name", [
    (lambda v: nir.Scale(v), "scale"),
    (lambda v: nir.Threshold(v), "threshold"),
    (lambda v: nir.Affine(np.diag(v), np.zeros(N)), "weight"),
    (lambda v: nir.Affine(np.eye(N), v), "bias"),
])
@pytest.mark.parametrize("bad", NOT_FINITE)
def test_non_finite_values_of_other_nodes_are_refused(node, name, bad):
    graph = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([N])}),
                                "n": node(np.array([1.0, bad, 1.0])),
                                "output": nir.Output({"output": np.array([N])})},
                         edges=[("input", "n"), ("n", "output")], type_check=False)
    with pytest.raises(ValueError, match=rf"node 'n' \(\w+\): its {name} is not finite"):
        snir.load(graph, dt=DT)


def test_a_neuron_past_float32_loads_in_float64():
    graph = _neuron_graph("LIF", r=np.full(N, 1e39))
    with pytest.raises(ValueError, match=r"its r is not finite everywhere in torch\.float32"):
        snir.load(graph, dt=DT)
    assert snir.load(graph, dt=DT, dtype=torch.float64)


def test_metadata_dt_must_be_one_number():
    graph = _valid_graph()
    graph.metadata = {"dt": np.ones(3)}
    with pytest.raises(ValueError, match=r"the graph's metadata dt must be one number"):
        snir.load(graph)

