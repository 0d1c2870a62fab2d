"""Memory levels: the same gradients as the full path at every level, less kept for backward.

The oracle is the network at ``memory="full"`` (every layer keeps what it saves, as before the
levels existed): the other levels must give bit-identical losses, gradients and BatchNorm
statistics, and keep strictly less.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs import models
from snnrs.distill import create_method
from snnrs.models.network import stage_units
from snnrs.nn import LIF, memory
from snnrs.train import TrainConfig
from torch import nn
from torch.nn.functional import cross_entropy


def step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, level: str):
    """One forward and backward at ``level``: loss, gradients, buffers and what was kept."""
    net.memory = level
    net.zero_grad(set_to_none=True)
    with memory.count_saved() as kept:
        loss = cross_entropy(net(x), y)
    loss.backward()
    grads = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    return loss.detach(), grads, [b.clone() for b in net.buffers()], kept


def assert_same_step(a, b) -> None:
    assert torch.equal(a[0], b[0])
    for ga, gb in zip(a[1], b[1], strict=True):
        assert (ga is None and gb is None) or torch.equal(ga, gb)
    for ba, bb in zip(a[2], b[2], strict=True):
        assert torch.equal(ba, bb)


def levels_agree(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, int]:
    """Runs a step at each level on copies of ``net``; asserts they equal "full"'s; returns the
    bytes each kept."""
    runs = {level: step(copy.deepcopy(net), x, y, level) for level in memory.LEVELS}
    for level in memory.LEVELS[1:]:
        assert_same_step(runs["full"], runs[level])
    return {level: run[3].bytes for level, run in runs.items()}


NETS = [
    ("convnet", {}, (1, 28, 28)),
    ("convnet", {"pool": "max", "norm": "per-step", "readout": "sum"}, (1, 28, 28)),
    ("resnet20", {}, (3, 16, 16)),
    ("resnet20", {"residual": "before_add", "shortcut": "avgpool", "head_hidden": 16},
     (3, 16, 16)),
]


@pytest.mark.parametrize(("name", "options", "image"), NETS)
def test_every_level_gives_the_full_paths_gradients_and_keeps_less(name, options, image):
    torch.manual_seed(0)
    net = models.create(name, kind="snn", T=3, in_channels=image[0], v_threshold=0.5,
                        **options)
    kept = levels_agree(net, torch.rand(4, *image) * 2, torch.randint(0, 10, (4,)))
    assert kept["full"] > kept["packed"] > kept["min"] > 0
    assert kept["packed"] >= kept["balanced"] >= kept["min"]


@settings(max_examples=8, deadline=None)
@given(T=st.integers(1, 4), batch=st.integers(1, 3), seed=st.integers(0, 2**16),
       neuron=st.sampled_from(["lif", "if", "plif", "cubalif", "alif"]))
def test_levels_agree_for_any_size_and_neuron_family(T, batch, seed, neuron):
    torch.manual_seed(seed)
    net = models.create("convnet", kind="snn", T=T, in_channels=1, neuron=neuron,
                        v_threshold=0.3)
    levels_agree(net, torch.rand(batch, 1, 28, 28) * 2, torch.randint(0, 10, (batch,)))


def test_the_floor_level_keeps_about_one_bit_per_block_input():
    torch.manual_seed(0)
    net = models.create("resnet20", kind="snn", T=4)
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    inputs: list[int] = []
    hooks = [m.register_forward_pre_hook(lambda _, a: inputs.append(a[0].numel()))
             for stage in net.stages for _, unit in stage_units(stage) for m in unit[:1]]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    floor = x.numel() * 4 + sum((n + 7) // 8 for n in inputs)
    kept = step(net, x, y, "min")[3]
    assert kept.packed == len(inputs)
    assert floor <= kept.bytes < 1.1 * floor  # the head's few floats on top


def test_a_tensor_that_is_not_spikes_is_never_packed():
    lin = nn.Linear(4096, 3)
    for bad in (0.5, -0.0, float("nan"), 2.0):
        x = torch.ones(2, 4096)
        x[1, 7] = bad
        with memory.count_saved() as kept, memory.saving("packed"):
            out = lin(memory.mark_spikes(x))
        assert kept.packed == 0 and kept.bytes == x.numel() * 4
        lin.zero_grad()
        out.sum().backward()
        torch.testing.assert_close(lin.weight.grad, x.sum(0).expand(3, -1), rtol=0, atol=0,
                                   equal_nan=True)


def test_a_neuron_that_does_not_fire_is_not_marked():
    torch.manual_seed(0)
    net = models.create("convnet", kind="snn", T=2, in_channels=1, neuron="li")
    x, y = torch.rand(2, 1, 28, 28), torch.randint(0, 10, (2,))
    assert step(copy.deepcopy(net), x, y, "packed")[3].packed == 0
    levels_agree(net, x, y)


def method_agrees_at_every_level(method: str, student: nn.Module, teacher: nn.Module | None,
                                 x: torch.Tensor, y: torch.Tensor, **options) -> None:
    """One step of ``method`` at each level, on copies of ``student``: gradients equal full's."""
    grads = {}
    for level in memory.LEVELS:
        s = copy.deepcopy(student)
        s.memory = level
        trainer = create_method(method, s, copy.deepcopy(teacher), **options).train()
        torch.manual_seed(1)  # NLD draws its noise
        trainer(x, y)["loss"].backward()
        grads[level] = [p.grad for p in s.parameters()]
    for level in memory.LEVELS[1:]:
        for a, b in zip(grads["full"], grads[level], strict=True):
            assert (a is None and b is None) or torch.equal(a, b)


@pytest.mark.parametrize(("method", "options"), [
    ("kd", {}), ("feature-kd", {}), ("samd-nld", {}), ("hybrid", {}),
    ("none", {"backprop": "rate"}),
])
def test_methods_train_the_same_at_every_level(method, options):
    torch.manual_seed(0)
    student = models.create("convnet", kind="snn", T=2, v_threshold=0.5)
    teacher = models.create("convnet", kind="ann") if method != "none" else None
    method_agrees_at_every_level(method, student, teacher, torch.rand(4, 1, 28, 28),
                                 torch.randint(0, 10, (4,)), **options)


def test_joint_asnn_branches_agree_at_every_level():
    torch.manual_seed(0)
    student = models.create("joint_resnet18", kind="snn", T=2, width=4)
    method_agrees_at_every_level("joint-asnn", student, None, torch.rand(2, 3, 16, 16),
                                 torch.randint(0, 10, (2,)))


def test_bf16_autocast_agrees_at_every_level():
    torch.manual_seed(0)
    net = models.create("resnet20", kind="snn", T=2, v_threshold=0.5)
    x, y = torch.rand(2, 3, 16, 16), torch.randint(0, 10, (2,))
    with torch.autocast("cpu", torch.bfloat16):
        levels_agree(net, x, y)


def test_torch_compile_trains_at_every_level():
    torch.manual_seed(0)
    net = models.create("convnet", kind="snn", T=2, in_channels=1, v_threshold=0.5)
    x, y = torch.rand(2, 1, 28, 28), torch.randint(0, 10, (2,))
    eager = step(copy.deepcopy(net), x, y, "full")
    for level in memory.LEVELS[1:]:
        compiled_net = copy.deepcopy(net)
        compiled_net.memory = level
        cross_entropy(torch.compile(compiled_net)(x), y).backward()
        for a, p in zip(eager[1], compiled_net.parameters(), strict=True):
            torch.testing.assert_close(a, p.grad)


def test_ddp_at_min_gives_the_plain_gradients(tmp_path):
    from torch.nn.parallel import DistributedDataParallel

    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'rdv'}",
                                         rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        net = models.create("convnet", kind="snn", T=2, in_channels=1, v_threshold=0.5)
        x, y = torch.rand(2, 1, 28, 28), torch.randint(0, 10, (2,))
        plain = step(copy.deepcopy(net), x, y, "full")
        wrapped = copy.deepcopy(net)
        wrapped.memory = "min"
        cross_entropy(DistributedDataParallel(wrapped)(x), y).backward()
        for a, p in zip(plain[1], wrapped.parameters(), strict=True):
            assert torch.equal(a, p.grad)
    finally:
        torch.distributed.destroy_process_group()


def test_without_grad_nothing_is_recomputed_or_packed():
    net = models.create("convnet", kind="snn", T=2, in_channels=1)
    net.memory = "min"
    with torch.no_grad(), memory.count_saved() as kept:
        net(torch.rand(2, 1, 28, 28))
    assert kept.bytes == 0 and kept.packed == 0


def test_a_bad_level_is_refused_by_name():
    net = models.create("convnet", kind="snn", T=2, in_channels=1)
    message = "unknown memory level 'minimal'; expected one of: full, packed, balanced, min"
    with pytest.raises(ValueError, match=re.escape(message)):
        net.memory = "minimal"
    with pytest.raises(ValueError, match=re.escape(message)):
        with memory.saving("minimal"):
            pass
    with pytest.raises(ValueError, match="memory"):
        TrainConfig(memory="minimal").validate()
    assert "memory" in TrainConfig.resumable()  # the level changes no number: a resume may


def test_a_compiled_neuron_runs_inside_a_saving_forward():
    neuron = torch.compile(LIF(tau=2.0, step_mode="m"), fullgraph=True)
    lin = nn.Linear(8, 2)
    x = torch.rand(3, 2, 8, requires_grad=True) * 2
    with memory.saving("packed"):
        lin(neuron(x)).sum().backward()
    assert lin.weight.grad is not None


def test_snnrs_distill_trains_the_same_weights_at_every_level(tmp_path):
    tiny = ["--train-limit", "96", "--test-limit", "32", "--batch-size", "32", "--T", "2",
            "--teacher-epochs", "1", "--epochs", "2", "--device", "cpu", "--no-noise",
            "--no-baseline"]
    weights = {}
    for level in ("full", "min"):
        out = tmp_path / level
        run = subprocess.run([sys.executable, "-m", "snnrs", "distill", *tiny, "--memory", level,
                              "--out", str(out)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert yaml.safe_load((out / "config.yaml").read_text())["memory"] == level
        weights[level] = torch.load(out / "checkpoints" / "student.pt",
                                    weights_only=True)["method"]
    assert weights["full"].keys() == weights["min"].keys()
    assert all(torch.equal(weights["full"][k], weights["min"][k]) for k in weights["full"])


OOM_PLUGIN = """
import torch
from snnrs.distill import Method, register_method


@register_method("oom-test")
class OutOfMemory(Method):
    needs_teacher = False

    def forward(self, images, labels):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
"""


@pytest.mark.parametrize(("level", "advice"), [
    ("packed", "did not fit: try --memory min (it keeps about 1 bit per neuron-step"),
    ("min", "at --memory min did not fit: try a smaller --batch-size or --T"),
])
def test_running_out_of_memory_ends_in_one_line_saying_what_to_change(tmp_path, level, advice):
    plugin = tmp_path / "oom_method.py"
    plugin.write_text(OOM_PLUGIN)
    run = subprocess.run([sys.executable, "-m", "snnrs", "distill", "--import", str(plugin),
                          "--method", "oom-test", "--memory", level, "--train-limit", "64",
                          "--test-limit", "32", "--batch-size", "32", "--epochs", "1",
                          "--no-baseline", "--no-noise", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("snnrs distill: error: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert advice in last
    assert "Traceback" not in run.stderr


def test_a_recomputed_unit_that_uses_a_weight_twice_gets_its_gradient_once():
    lin = nn.Linear(4, 4)
    x = torch.rand(3, 4, requires_grad=True)
    lin(lin(x)).sum().backward()
    expected, expected_x = lin.weight.grad.clone(), x.grad.clone()
    lin.zero_grad()
    x.grad = None
    memory.recompute(lambda h: lin(lin(h)), x, [lin, lin]).sum().backward()
    assert torch.equal(lin.weight.grad, expected) and torch.equal(x.grad, expected_x)


def _stateful_blocks() -> nn.ModuleList:
    """Two blocks of a user's own network whose neurons keep their state between calls."""
    torch.manual_seed(0)
    return nn.ModuleList(nn.Sequential(nn.Linear(6, 6), LIF(tau=2.0, step_mode="m"))
                         for _ in range(2))


def _calls(blocks: nn.ModuleList, xs: list[torch.Tensor], recompute: bool) -> torch.Tensor:
    """Each x through both blocks, the neurons carrying their state from call to call."""
    total = torch.zeros(())
    for x in xs:
        for block in blocks:
            x = memory.recompute(block, x, [block]) if recompute else block(x)
        total = total + (x * torch.linspace(-1, 1, x.numel()).view_as(x)).sum()
    return total


@pytest.mark.parametrize("calls", [1, 3])
def test_recompute_starts_a_stateful_neuron_where_its_forward_started(calls):
    """A neuron that keeps its state recomputes from the state it began the forward in (not the
    one the forward left), and gradients flow from call to call through that state, as they do
    when nothing is recomputed."""
    g = torch.Generator().manual_seed(1)
    xs = [(torch.rand(4, 3, 6, generator=g) * 2).requires_grad_() for _ in range(calls)]
    grads = []
    for recompute in (False, True):
        blocks = _stateful_blocks()
        for x in xs:
            x.grad = None
        _calls(blocks, xs, recompute).backward()
        grads.append([*(x.grad for x in xs), *(p.grad for p in blocks.parameters())])
        assert all(b[1].state is not None for b in blocks)  # each kept the state it ended in
    for plain, recomputed in zip(*grads, strict=True):
        assert torch.equal(plain, recomputed)


def test_auto_packs_a_small_step_and_recomputes_one_over_the_budget(monkeypatch):
    torch.manual_seed(0)
    net = models.create("convnet", kind="snn", T=2, v_threshold=0.5)
    x, y = torch.rand(6, 1, 28, 28) * 2, torch.randint(0, 10, (6,))
    kept = levels_agree(net, x, y)  # auto's probe included: same gradients and statistics
    assert kept["auto"] == kept["packed"] < memory.AUTO_BUDGET
    monkeypatch.setattr(memory, "AUTO_BUDGET", kept["packed"] // 2)
    assert step(copy.deepcopy(net), x, y, "auto")[3].bytes == kept["balanced"] < kept["packed"]


@pytest.mark.parametrize(("name", "image"), [("convnet", (1, 28, 28)), ("resnet20", (3, 16, 16))])
def test_auto_estimates_a_batch_from_eight_samples(name, image):
    torch.manual_seed(0)
    net = models.create(name, kind="snn", T=2, in_channels=image[0])
    x = torch.rand(64, *image)
    with memory.count_saved() as kept, memory.saving("packed"):
        net.head(net.run_stages(x))
    eight = memory.probe_saved(lambda h: net.head(net.run_stages(h)), x[:8].clone(), [net])
    assert kept.bytes == pytest.approx(8 * eight, rel=0.02)


def test_the_probe_leaves_statistics_states_random_numbers_and_hooks_alone():
    torch.manual_seed(0)
    neuron = LIF(tau=2.0)  # single-step: keeps its charge between calls
    net = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), neuron, nn.Dropout(0.5),
                        nn.Linear(64, 8)).train()
    net(torch.rand(4, 64) * 4)
    probe = torch.rand(2, 64) * 4
    calls = []
    neuron.register_forward_hook(lambda *_: calls.append(1))  # a firing-rate recording, say
    before = copy.deepcopy(net.state_dict()), neuron.state.v.clone(), torch.get_rng_state()
    assert memory.probe_saved(net, probe, [net]) > 0
    after = net.state_dict(), neuron.state.v, torch.get_rng_state()
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert torch.equal(before[1], after[1]) and torch.equal(before[2], after[2])
    assert not calls
    neuron.reset()
    net(probe)
    assert calls == [1]  # the hook is back
