# %% [markdown]
# # Memory and speed: choosing the settings for your GPU or CPU
#
# Training a spiking network by backpropagation through time keeps, for every neuron and
# every time step, what the backward pass will need. snnrs lets you choose how much of that
# is kept: four *memory levels* (`full`, `packed`, `balanced`, `min`) that give the same
# gradients for different amounts of memory and recomputation, and `auto`, the default, which
# picks `packed` or `balanced` by what a step would keep. This tutorial measures, on a
# small zoo network, what each level keeps and how long a training step takes at each,
# checks that the gradients are identical, then turns the numbers into a guide: which level
# and which `snnrs distill` flags to pick on a GPU that runs out of memory and on a CPU. It
# runs in about 20 s on a 2-core CPU.

# %%
import copy
import os
import statistics
import tempfile
import time

import matplotlib.pyplot as plt
import snnrs
import torch
import torch.nn.functional as F
from snnrs import models
from snnrs.cli import build_parser, training_config
from snnrs.nn import LIF, TimeDistributed, memory
from snnrs.train import TrainConfig
from snnrs.train.loop import out_of_memory_advice
from torch import nn

torch.manual_seed(0)
T, B = 4, 8                      # time steps, images per batch
print("memory levels:", memory.LEVELS, "| default:", memory.DEFAULT)
assert memory.LEVELS == ("full", "packed", "balanced", "min", "auto") and memory.DEFAULT == "auto"

# %% [markdown]
# ## The levels
#
# In a spiking network, most of what autograd keeps is of two kinds, one tensor of each per
# neuron and time step: the **spikes** (every conv or linear after a neuron keeps its input
# for its weight gradient, and that input is 0s and 1s) and **analog values** (each
# BatchNorm's input, each neuron's charge `H`). The levels differ in what they keep
# (`python/snnrs/nn/memory.py`):
#
# | level | kept for backward | extra work |
# |---|---|---|
# | `full` | everything, as each layer saves it | none |
# | `packed` | spikes at 1 bit each, analog values as saved | packing |
# | `balanced` | as `min`, but the last stage is `packed` | as `min`, less the last stage |
# | `min` | only the spikes entering each block, at 1 bit each | one more forward per block |
# | `auto` (default) | `balanced` over 256 MiB a step, else `packed` | 8 images' forward, once |
#
# At `min` everything inside a block is recomputed in the backward pass from the block's
# input; `balanced` leaves the last stage (the smallest feature maps) out of that.
#
# A *block* is a residual block, or in a plain conv stack a run of layers ending in a neuron.
# Packing is checked, never assumed: a tensor is packed only if every element is exactly
# `+0.0` or `+1.0`, so the unpacked tensor is the same floats.
#
# The network here is the zoo's `resnet20` as an SNN (three stages of residual blocks, LIF
# neurons), at `T = 4` on a batch of 8 random 32 x 32 colour images: small enough to run in
# seconds on a CPU, and built like the zoo's larger ResNets (stages of residual blocks).

# %%
base = models.create("resnet20", kind="snn", num_classes=10, T=T)
images = torch.rand(B, 3, 32, 32)
labels = torch.randint(0, 10, (B,))
print(f"resnet20 SNN: {sum(p.numel() for p in base.parameters()):,} parameters, "
      f"{len(base.stages)} stages, T={T}, batch {B}")

assert snnrs.ops.pack_spikes(torch.tensor([0.0, 1.0, 1.0])) is not None
for not_spikes in ([0.0, 1.0, 0.5], [-0.0, 1.0], [0.0, float("nan")]):
    assert snnrs.ops.pack_spikes(torch.tensor(not_spikes)) is None   # kept as they are

# %% [markdown]
# ## What each level keeps
#
# A zoo network takes its level as its `memory` attribute (`snnrs distill --memory` sets
# it). `memory.count_saved()` counts the bytes autograd keeps during the forward inside it:
# distinct storages, parameters excluded, packed spikes at their packed size. We build one
# copy of the network per level, run one training forward and backward on each, and keep
# the gradients, the loss and the BatchNorm statistics to compare them.
#
# Dividing by the number of neuron-steps (the size of every neuron's output, all layers and
# all steps together) gives bytes per neuron-step, the unit of [Training memory](../memory.html).

# %%
def neuron_steps(net):
    """Neuron outputs in one forward, all layers and time steps together."""
    sizes = []                        # the zoo's neurons sit in models.Spiking layers
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel()))
             for m in net.modules() if isinstance(m, models.Spiking)]
    with torch.no_grad():
        net(images)
    for h in hooks:
        h.remove()
    return sum(sizes)


nets, kept, first = {}, {}, {}
for level in memory.LEVELS:
    net = copy.deepcopy(base).train()
    net.memory = level
    with memory.count_saved() as count:
        loss = F.cross_entropy(net(images), labels)
    loss.backward()
    nets[level], kept[level] = net, count
    first[level] = (loss.detach(), [p.grad.clone() for p in net.parameters()],
                    [b.clone() for b in net.buffers()])

steps = neuron_steps(copy.deepcopy(base))
print(f"{steps:,} neuron-steps per forward\n")
print(f"{'level':<9} {'kept for backward':>18} {'vs full':>8} {'bytes/neuron-step':>18} "
      f"{'packed tensors':>15}")
for level, count in kept.items():
    print(f"{level:<9} {count.bytes / 1e6:>15.2f} MB {count.bytes / kept['full'].bytes:>8.3f} "
          f"{count.bytes / steps:>18.2f} {count.packed:>15}")
assert kept["full"].bytes > kept["packed"].bytes > kept["balanced"].bytes > kept["min"].bytes
assert kept["full"].packed == 0 < kept["min"].packed
print(f"\nmin keeps {8 * kept['min'].bytes / steps:.2f} bits per neuron-step")
assert kept["auto"].bytes == kept["packed"].bytes   # 8 images keep far less than 256 MiB
assert 8 * kept["min"].bytes / steps < 1       # under one bit: only the blocks' inputs

# %% [markdown]
# ## The same gradients at every level
#
# The levels change what is kept, never a number: the loss, every gradient and the
# BatchNorm running statistics (which a recomputed block must not update twice) are
# bit-for-bit those of `full`.

# %%
loss_full, grads_full, buffers_full = first["full"]
for level, (loss, grads, buffers) in first.items():
    assert torch.equal(loss, loss_full), level
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_full, strict=True)), level
    assert all(torch.equal(a, b) for a, b in zip(buffers, buffers_full, strict=True)), level
print(f"loss {loss_full.item():.6f} at every level; {len(grads_full)} gradients and "
      f"{len(buffers_full)} BatchNorm buffers bit-for-bit equal to full's")

# %% [markdown]
# ## How long a step takes at each level
#
# A training step here is forward, cross-entropy, backward and an SGD update. Each level's
# network gets its own optimizer; the levels take turns, round after round, after one
# untimed round, so that load from other programs affects all of them alike, and the table
# reports the median. The absolute times depend on your machine; compare the levels.

# %%
optimizers = {level: torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
              for level, net in nets.items()}


def train_step(level):
    net, opt = nets[level], optimizers[level]
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(net(images), labels).backward()
    opt.step()


times = {level: [] for level in memory.LEVELS}
for round_ in range(6):                        # round 0 is the untimed warm-up
    for level in memory.LEVELS:
        t0 = time.perf_counter()
        train_step(level)
        if round_:
            times[level].append((time.perf_counter() - t0) * 1e3)
step_ms = {level: statistics.median(ts) for level, ts in times.items()}

print(f"{'level':<9} {'kept for backward':>18} {'step time':>11} {'vs full':>8}")
for level in memory.LEVELS:
    print(f"{level:<9} {kept[level].bytes / 1e6:>15.2f} MB {step_ms[level]:>8.1f} ms "
          f"{step_ms[level] / step_ms['full']:>8.2f}")
print(f"(median of {len(times['full'])} rounds, {torch.get_num_threads()} threads)")

# %% [markdown]
# The four networks took the same number of steps from the same weights with the same
# gradients, so they must still be the same network, bit for bit. This is why a run may
# switch levels when it resumes (`memory` is one of the settings `--resume` lets you change).

# %%
reference = nets["full"].state_dict()
for level, net in nets.items():
    assert all(torch.equal(v, reference[k]) for k, v in net.state_dict().items()), level
assert "memory" in TrainConfig.resumable()
print(f"after {len(times['full']) + 1} SGD steps at each level: identical weights and statistics")

# %%
colors = ["tab:gray", "tab:blue", "tab:green", "tab:orange", "tab:purple"]
fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(9, 3.6))
levels = list(memory.LEVELS)
bars = ax_mem.bar(levels, [kept[lv].bytes / 1e6 for lv in levels], color=colors)
ax_mem.bar_label(bars, fmt="%.2f MB", fontsize=8)
ax_mem.set_yscale("log")
ax_mem.set_ylim(kept["min"].bytes / 1e6 / 2, kept["full"].bytes / 1e6 * 3)  # room for labels
ax_mem.set_xlabel("memory level")
ax_mem.set_ylabel("kept for backward (MB, log scale)")
ax_mem.set_title("What a step keeps")
ax_time.bar(levels, [step_ms[lv] for lv in levels], color=colors)
for i, lv in enumerate(levels):
    ax_time.plot([i] * len(times[lv]), times[lv], "k.", markersize=3)
ax_time.set_xlabel("memory level")
ax_time.set_ylabel("training step (ms)")
ax_time.set_title("Time per step (bar: median, dots: rounds)")
fig.suptitle(f"resnet20 SNN, T={T}, batch {B}, CPU float32, {torch.get_num_threads()} threads")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## How it grows with the batch and with T
#
# What is kept grows in proportion to the batch at every level: each image has its own
# spikes and charges. It grows almost in proportion to `T`: a zoo network runs its stem
# (the first conv and BatchNorm) once per image and repeats its output over the `T` steps,
# so what the stem keeps does not grow with `T`; that shows most at `min`, where little
# else is kept. So halving `--batch-size` halves what is kept, halving `--T` nearly does,
# and the table above, measured at a small batch, tells you what a larger one keeps.

# %%
def kept_bytes(level, t, b):
    net = copy.deepcopy(base)
    net.T, net.memory = t, level
    with memory.count_saved() as count:
        net(torch.rand(b, 3, 32, 32))
    return count.bytes


sizes = [(T, 2), (T, 4), (2 * T, 2)]
print(f"{'level':<9}" + "".join(f"{f'T={t}, B={b}':>14}" for t, b in sizes))
for level in memory.LEVELS:
    row = [kept_bytes(level, t, b) for t, b in sizes]
    print(f"{level:<9}" + "".join(f"{n / 1e6:>11.2f} MB" for n in row))
    assert 1.95 < row[1] / row[0] < 2.05, level       # twice the batch: twice the bytes
    assert 1.75 < row[2] / row[0] <= 2.0, level        # twice T: nearly twice

# %% [markdown]
# This growth is what `auto` reads. For each image shape it measures once what 8 images keep
# at `packed` (a forward that changes nothing in the network: BatchNorm statistics, neuron
# states and the random state are left as they were), scales that to the batch, and runs the
# step at `balanced` when the result passes `memory.AUTO_BUDGET` (256 MiB), else at `packed`.

# %%
net = copy.deepcopy(base).train()
chosen = {b: net.auto_level(torch.rand(b, 3, 32, 32)) for b in (8, 64, 512)}
for b, level in chosen.items():
    print(f"batch {b:>3}, T={T}: auto runs at {level}")
assert chosen[8] == "packed" and chosen[512] == "balanced"

# %% [markdown]
# ## Your own network
#
# The levels are built from two pieces you can use in any network of snnrs neurons (for
# example a SpikingJelly model after `snnrs.nn.replace_neurons`, see
# [tutorial 1](01_spikingjelly.html)):
#
# - `with memory.saving(level):` around the forward packs every spike tensor that a later
#   layer saves, at every level but `full`;
# - `memory.recompute(run, x, modules)` keeps only `x` (packed when it is a neuron's spikes)
#   and runs `run(x)` again in the backward pass; `modules` are those whose parameters and
#   BatchNorm statistics `run` uses.
#
# An `snnrs.nn` neuron keeps its membrane between calls until it is reset; a recomputed block
# starts again from the state its neurons began the forward in, so the training loop stays as
# it is: reset the network before each batch, as with any stateful SNN.

# %%
def make_own_net():
    torch.manual_seed(2)
    return nn.ModuleList([
        nn.Sequential(TimeDistributed(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)),
                      LIF(tau=2.0, step_mode="m")),
        nn.Sequential(TimeDistributed(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)),
                      LIF(tau=2.0, step_mode="m")),
        TimeDistributed(nn.Flatten(), nn.Linear(16 * 32 * 32, 10)),
    ])


def own_step(blocks, level):
    """One forward and backward of the blocks at ``level`` ("full", "packed" or "min")."""
    snnrs.nn.reset(blocks)                                    # a new batch starts from rest
    x_seq = images.unsqueeze(0).repeat(T, 1, 1, 1, 1) * 2    # [T, B, 3, 32, 32]
    with memory.count_saved() as count, memory.saving(level):
        h = x_seq
        for block in blocks:
            h = memory.recompute(block, h, [block]) if level == "min" else block(h)
    F.cross_entropy(h.mean(0), labels).backward()
    return count.bytes, [p.grad for p in blocks.parameters()]


own = {level: own_step(make_own_net(), level) for level in ("full", "packed", "min")}
print(f"{'level':<8} {'kept for backward':>18}")
for level, (nbytes, grads) in own.items():
    print(f"{level:<8} {nbytes / 1e6:>15.2f} MB")
    assert all(torch.equal(a, b) for a, b in zip(grads, own["full"][1], strict=True)), level
assert own["full"][0] > own["packed"][0] > own["min"][0]

# %% [markdown]
# ## What `snnrs distill` does when memory runs out
#
# When a training step runs out of memory, `snnrs distill` stops with one line that names
# the level it ran at and what to change. This is the text it prints (from
# `snnrs.train.loop.out_of_memory_advice`), for a run at the default level and for one
# already at `min`:

# %%
oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
for level in ("packed", "min"):
    advice = out_of_memory_advice(TrainConfig(memory=level), oom)
    print(f"at --memory {level}:\n  {advice}\n")
    assert ("try --memory min" in advice) == (level != "min")
    assert "a smaller --batch-size or --T" in advice

# %% [markdown]
# ## The settings, as you would write them
#
# The settings are flags of `snnrs distill` and keys of a `--config` file (YAML or TOML);
# flags win over the file. The cell below writes a config file in a temporary folder and
# reads a few command lines with snnrs's own parser, so that each line of the guide that
# follows is checked to mean what it says.

# %%
tmp = tempfile.TemporaryDirectory()           # nothing is written in the repository
workdir = tmp.name
config_file = os.path.join(workdir, "gpu.yaml")
with open(config_file, "w") as f:
    f.write("memory: min\nbatch_size: 128\nT: 4\namp: bf16\n")

command_lines = {
    "GPU out of memory": ["--memory", "min"],
    "middle ground": ["--memory", "balanced"],
    "from a config file": ["--config", config_file],
    "config, then a flag": ["--config", config_file, "--memory", "balanced"],
    "CPU": ["--device", "cpu"],
}
print(f"{'case':<20} {'memory':<9} {'batch':>5} {'T':>2} {'amp':<5} {'device':<6}  command")
for case, flags in command_lines.items():
    argv = ["distill", *flags, "--out", os.path.join(workdir, "run")]
    cfg = training_config(build_parser().parse_args(argv), "distill")
    shown = " ".join(flags).replace(workdir + os.sep, "")
    print(f"{case:<20} {cfg.memory:<9} {cfg.batch_size:>5} {cfg.T:>2} {cfg.amp:<5} "
          f"{cfg.device:<6}  snnrs distill {shown}")
    if case == "from a config file":
        assert (cfg.memory, cfg.batch_size, cfg.amp) == ("min", 128, "bf16")
    if case == "config, then a flag":
        assert cfg.memory == "balanced"
    if case == "CPU":
        assert (cfg.memory, cfg.amp, cfg.device) == ("auto", "auto", "cpu")
assert os.listdir(workdir) == ["gpu.yaml"]    # reading the settings wrote nothing
tmp.cleanup()

# %% [markdown]
# ## The guide
#
# **The level does not change the result.** Every level gives the same gradients (checked
# above), so choose it for memory and speed alone; a run may even change it when it resumes.
#
# **On a GPU that runs out of memory**
#
# 1. Start at the default, `auto`: it packs spikes, and recomputes (`balanced`) when a step
#    would keep more than 256 MiB at `packed`. If a step does not fit, `snnrs distill` stops,
#    says so and suggests `--memory min` (config key `memory: min`): it keeps only the
#    spikes entering each block, under one bit per neuron-step (measured above), for one
#    more forward of every block in each step.
# 2. `--memory balanced` sits between the two: it recomputes every stage but the last, so it
#    does less extra forward work than `min` and keeps more (compare the tables). It is
#    worth a try when `min` fits with room to spare. The stage split is the zoo's: in a
#    network of your own, `memory.saving("balanced")` only packs spikes, as `packed` does.
# 3. Only then lower `--batch-size` or `--T`: what is kept grows in proportion to the batch
#    and nearly in proportion to `T`. Under `torchrun --nproc_per_node=N -m snnrs distill`,
#    `--batch-size` is the global batch and each GPU takes 1/N of it.
# 4. If testing rather than training runs out of memory, lower `--eval-batch-size` (500 by
#    default): testing runs without grad, keeps nothing for backward, and no level applies.
# 5. `--amp auto` (the default) trains in bfloat16 autocast on CUDA; `--amp fp16` is float16
#    with a gradient scaler and needs CUDA.
# 6. On CUDA, checking that a tensor is all 0s and 1s before packing it costs one
#    synchronisation per packed tensor (`snnrs.ops.pack_spikes`).
# 7. Under `torch.compile` the compiler plans what is saved, so a compiled network runs as
#    `full` whatever its level; the levels are for eager runs, and `snnrs distill` runs
#    eagerly.
#
# **On a CPU**
#
# 1. When the step fits in RAM, keep `auto` (the default), `packed` or `full`, and read the
#    step-time column above for the difference on your machine. `balanced` and `min` trade time
#    for memory: on the main job's small convnet, [Training memory](../memory.html) reports
#    `balanced` 20 to 30% slower than `packed`, which is why `auto` packs below 256 MiB.
# 2. `--amp auto` means full precision on the CPU; `--amp bf16` is allowed, `--amp fp16` is
#    refused.
# 3. The CPU kernels run on `torch.get_num_threads()` threads: set it with
#    `torch.set_num_threads(n)`, or with `OMP_NUM_THREADS=n` before starting
#    `snnrs distill`, whose first line shows the count. The README reports that two runs
#    with the same number of threads give bit-identical weights, and that another number
#    changes torch's own reductions (snnrs's kernels give the same bits for any count).
#    On cores shared with other jobs, give the run only the cores that are free: OpenMP
#    threads that wait for a busy core can make every operation many times slower, torch's
#    and snnrs's alike (compare the step times of this notebook with `torch.set_num_threads(1)`
#    in its first cell).
# 4. glibc returns freed memory to the system and pays page faults to get it back at every
#    step. The README measures a faster ResNet-19 step with
#    `MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296` in the environment
#    (or jemalloc / tcmalloc). snnrs recycles its own outputs of 32 MiB and more, up to
#    `snnrs.ops.set_cache_limit(nbytes)` (1 GiB by default); `snnrs.ops.empty_cache()` lets
#    them go.
#
# **In Python**, set `net.memory = "min"` on a zoo network, or use `memory.saving(level)` and
# `memory.recompute(...)` in your own, and measure with `memory.count_saved()` as above:
# run this notebook with your own model, batch and `T` to see what each level keeps.
