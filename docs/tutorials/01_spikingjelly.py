# %% [markdown]
# # From SpikingJelly to snnrs: swap the neurons, keep the numbers
#
# You have a SpikingJelly network and want snnrs's fused neuron kernels under it without
# rewriting it. This tutorial builds a small SpikingJelly conv net (Conv-BN-LIFNode blocks in
# multi-step mode), swaps its neurons for snnrs's with `snnrs.nn.replace_neurons`, checks
# that spikes, outputs and gradients are the same, shows when they are bit-for-bit equal and
# when equal only to float32 rounding, and times a training step of both. It runs in about
# 15 s on a 2-core CPU.

# %%
import copy
import statistics
import time
import warnings

import matplotlib.pyplot as plt
import snnrs
import torch
import torch.nn.functional as F
from snnrs.data.mnist import load_mnist
from snnrs.nn import memory
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

torch.manual_seed(0)
T, B = 4, 32  # time steps, images per batch

# %% [markdown]
# ## The SpikingJelly model, as you have it
#
# Two blocks of SpikingJelly's `layer.Conv2d` / `layer.BatchNorm2d` / `neuron.LIFNode` /
# `layer.MaxPool2d`, then a linear readout, all switched to multi-step mode: each layer takes
# the whole sequence `[T, B, ...]` at once. The neuron is the one of SpikingJelly's DVS128
# Gesture example (`classify_dvsg.py`): `LIFNode` with `tau=2`, the `ATan` surrogate and
# `detach_reset=True`.

# %%
def sj_lif():
    return neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True)


def make_sj_net(make_neuron=sj_lif):
    net = nn.Sequential(
        layer.Conv2d(1, 32, 3, padding=1, bias=False), layer.BatchNorm2d(32), make_neuron(),
        layer.MaxPool2d(2),                                               # 28 -> 14
        layer.Conv2d(32, 64, 3, padding=1, bias=False), layer.BatchNorm2d(64), make_neuron(),
        layer.MaxPool2d(2),                                               # 14 -> 7
        layer.Flatten(), layer.Linear(64 * 7 * 7, 10),
    )
    functional.set_step_mode(net, "m")
    return net


sj_net = make_sj_net()

# %% [markdown]
# The input is a batch of real digits from the 5,000-image MNIST subset that ships inside
# snnrs (nothing is downloaded), scaled to [0, 1] and repeated over the `T` steps (direct
# encoding).

# %%
digits = load_mnist(seed=0).train
images = digits.images[:B].float() / 255                  # [B, 1, 28, 28]
labels = digits.labels[:B]
x_seq = images.unsqueeze(0).repeat(T, 1, 1, 1, 1)         # [T, B, 1, 28, 28]
print(f"input {tuple(x_seq.shape)}, labels {labels.tolist()[:10]} ...")

# %% [markdown]
# ## The swap: one call
#
# `snnrs.nn.replace_neurons(model)` walks the model and replaces every SpikingJelly
# `IFNode`, `LIFNode` and `ParametricLIFNode` (and snnTorch `Leaky`, where it maps exactly)
# by the snnrs neuron with the same parameters. It works in place and returns the model, so
# we swap a deep copy and keep the original to compare against. Everything else (convs,
# BatchNorms, pooling, SpikingJelly's layer wrappers, the weights) is left as it was.

# %%
rs_net = snnrs.nn.replace_neurons(copy.deepcopy(sj_net))

print(f"{'index':>5}  {'SpikingJelly':<12}  snnrs")
for (i, old), new in zip(sj_net.named_children(), rs_net.children(), strict=True):
    if type(old) is not type(new):
        print(f"{i:>5}  {type(old).__name__:<12}  {new}")
swapped = [m for m in rs_net.modules() if isinstance(m, snnrs.nn.BaseNode)]
assert len(swapped) == 2 and not any(isinstance(m, neuron.LIFNode) for m in rs_net.modules())
assert all(m.step_mode == "m" and m.surrogate == "atan" and m.alpha == 2.0 for m in swapped)
rs_state = rs_net.state_dict()                 # the same weights and BatchNorm statistics
assert all(torch.equal(v, rs_state[k]) for k, v in sj_net.state_dict().items())

# %% [markdown]
# What is carried over, argument by argument (`python/snnrs/nn/replace.py`):
#
# | SpikingJelly | snnrs |
# |---|---|
# | `IFNode` / `LIFNode` / `ParametricLIFNode` | `snnrs.nn.IF` / `LIF` / `PLIF` |
# | `tau`, `decay_input` | the same names (`LIF`) |
# | `ParametricLIFNode`'s learnt `w` | copied into `PLIF.w` (same `1/tau = sigmoid(w)`) |
# | `v_threshold`, `v_reset` (`None`: soft reset), `detach_reset`, `step_mode` | the same names |
# | `surrogate.Sigmoid(alpha)` | `surrogate="sigmoid"`, same `alpha` |
# | `surrogate.ATan(alpha)` | `surrogate="atan"`, same `alpha` |
# | `surrogate.PiecewiseQuadratic(alpha)` | `surrogate="triangle"`, `alpha = 1 / alpha` |
# | `surrogate.Rect(alpha)` | `surrogate="rectangle"`, `alpha = 1 / alpha` |
#
# The new neurons start with a fresh membrane state and the old ones' `train()` / `eval()`
# mode. Anything without an exact equivalent, such as another surrogate or `store_v_seq=True`,
# is refused with `snnrs.nn.Unsupported` naming the module; `strict=False` keeps such a neuron
# as it is and warns instead:

# %%
other = nn.Sequential(layer.Linear(8, 8), neuron.LIFNode(surrogate_function=surrogate.Erf()))
try:
    snnrs.nn.replace_neurons(other)
    raise AssertionError("an Erf surrogate has no snnrs equivalent and should be refused")
except snnrs.nn.Unsupported as e:
    print("strict=True (the default) refuses:", e)
assert isinstance(other[1], neuron.LIFNode)  # nothing was changed

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    snnrs.nn.replace_neurons(other, strict=False)
print("strict=False keeps it and warns:", caught[0].message)
assert isinstance(other[1], neuron.LIFNode) and "Erf" in str(caught[0].message)
assert snnrs.nn.replace_neurons(nn.Sequential(sj_lif().eval()))[0].training is False

# %% [markdown]
# ## Same spikes, same outputs, same gradients
#
# One training step is a forward pass over the sequence, the cross-entropy of the
# time-averaged output, and a backward pass. Both networks start from the same weights and
# the same BatchNorm statistics (the copy), see the same batch, and are reset before each
# step. SpikingJelly's `functional.reset_net` resets snnrs neurons too (it calls every
# module's `reset()`), so existing training loops keep working; `snnrs.nn.reset(net)` does
# the same for snnrs neurons only.

# %%
def train_step(net):
    functional.reset_net(net)
    net.zero_grad(set_to_none=True)
    out = net(x_seq)                                   # [T, B, 10]
    loss = F.cross_entropy(out.mean(0), labels)
    loss.backward()
    return out.detach(), loss.detach()


def neuron_outputs(net):
    """Each neuron's spikes [T, B, C, H, W] in one forward, without grad."""
    record = []
    hooks = [m.register_forward_hook(lambda m, i, o: record.append(o))
             for m in net.modules() if isinstance(m, neuron.BaseNode | snnrs.nn.BaseNode)]
    functional.reset_net(net)
    with torch.no_grad():
        net(x_seq)
    for h in hooks:
        h.remove()
    return record


out_sj, loss_sj = train_step(sj_net)
out_rs, loss_rs = train_step(rs_net)
functional.reset_net(rs_net)
assert all(m.state is None for m in swapped)      # reset_net reached the snnrs neurons

print(f"{'layer':<10} {'firing rate':>12} {'spikes equal':>13}")
for k, (s_sj, s_rs) in enumerate(zip(neuron_outputs(sj_net), neuron_outputs(rs_net),
                                     strict=True)):
    print(f"neuron {k:<3} {s_sj.mean().item():>12.4f} {torch.equal(s_sj, s_rs)!s:>13}")
    assert torch.equal(s_sj, s_rs)

print(f"\nloss: SpikingJelly {loss_sj.item():.8f}, snnrs {loss_rs.item():.8f}")
print(f"outputs bit-for-bit equal: {torch.equal(out_sj, out_rs)}")
print(f"\n{'parameter':<10} {'shape':<16} {'gradients bit-for-bit equal':>28}")
for (name, p_sj), p_rs in zip(sj_net.named_parameters(), rs_net.parameters(), strict=True):
    print(f"{name:<10} {tuple(p_sj.shape)!s:<16} {torch.equal(p_sj.grad, p_rs.grad)!s:>28}")
assert torch.equal(out_sj, out_rs) and torch.equal(loss_sj, loss_rs)
assert all(torch.equal(a.grad, b.grad)
           for a, b in zip(sj_net.parameters(), rs_net.parameters(), strict=True))

# %% [markdown]
# For this neuron everything is bit-for-bit equal, in float32: spikes, outputs, loss and
# every gradient. That is not luck, and it does not hold for every configuration. The two
# libraries compute the same formulas ([Neurons](../neurons.html)), but not always with the same
# rounding:
#
# - SpikingJelly divides by `tau`, in the forward and in the backward pass, where snnrs
#   multiplies by `1/tau`. With `tau=2` both are exact; with `tau=3` a charge or a gradient
#   can differ in its last bit.
# - Other parts of the backward arithmetic round differently too: with the `Sigmoid`
#   surrogate, or without `detach_reset`, the gradients differ in their last bits.
# - PLIF's gradient of `w` is a sum over every neuron and step, which snnrs accumulates in
#   float64 ([Neurons](../neurons.html)).
#
# So in general the forward gives the same spikes, except that a spike may flip where the
# charge is within float32 rounding of the threshold, and the gradients agree to float32
# rounding. The loop below checks six configurations on the same network in float32 and in
# float64 (four images, to keep it quick):

# %%
CONFIGS = {
    "LIF tau=2, ATan, detach_reset": sj_lif,
    "LIF defaults (Sigmoid)": lambda: neuron.LIFNode(),
    "LIF tau=3, ATan, detach_reset": lambda: neuron.LIFNode(
        tau=3.0, surrogate_function=surrogate.ATan(), detach_reset=True),
    "LIF soft reset": lambda: neuron.LIFNode(v_reset=None),
    "IF, Rect, detach_reset": lambda: neuron.IFNode(
        surrogate_function=surrogate.Rect(), detach_reset=True),
    "PLIF init_tau=3": lambda: neuron.ParametricLIFNode(init_tau=3.0),
}


def compare(make_neuron, dtype):
    """(outputs equal, gradients bit-equal, largest gradient difference relative to the
    largest gradient of its tensor) for one step of the SpikingJelly net and its swap."""
    torch.manual_seed(1)
    theirs = make_sj_net(make_neuron).to(dtype)
    ours = snnrs.nn.replace_neurons(copy.deepcopy(theirs))
    x = (x_seq[:, :4] * 2).to(dtype)          # brighter input: more spikes to compare
    results = []
    for net in (theirs, ours):
        functional.reset_net(net)
        out = net(x)
        F.cross_entropy(out.mean(0), labels[:4]).backward()
        results.append((out.detach(), [p.grad for p in net.parameters()]))
    (out_t, grads_t), (out_o, grads_o) = results
    pairs = list(zip(grads_t, grads_o, strict=True))
    rel = max(((a - b).abs().max() / a.abs().max()).item() for a, b in pairs)
    return torch.equal(out_t, out_o), all(torch.equal(a, b) for a, b in pairs), rel


BIT_EQUAL = ("LIF tau=2, ATan, detach_reset", "IF, Rect, detach_reset")

print(f"{'configuration':<31} {'outputs equal':>13} {'grads bit-equal':>16} "
      f"{'max rel. grad diff, float32':>28} {'float64':>9}")
for name, make_neuron in CONFIGS.items():
    eq32, bit32, rel32 = compare(make_neuron, torch.float32)
    eq64, bit64, rel64 = compare(make_neuron, torch.float64)
    print(f"{name:<31} {eq32!s:>13} {bit32!s:>16} {rel32:>28.1e} {rel64:>9.1e}")
    assert eq32 and eq64              # no spike landed within rounding of the threshold
    assert rel32 < 1e-5 and rel64 < 1e-12  # float32 / float64 rounding, nothing more
    if name in BIT_EQUAL:
        assert bit32 and bit64, name

# %% [markdown]
# ## What autograd keeps, and how long a step takes
#
# The swap changes what the neurons keep for the backward pass: snnrs keeps only the charge
# `H` (4 bytes per float32 neuron-step) and recomputes the spikes from it, while
# SpikingJelly's `LIFNode` keeps more. `snnrs.nn.memory.count_saved()` counts the bytes
# autograd keeps during a forward, for any network. Inside `memory.saving("packed")`,
# snnrs's spikes that a later layer saves (here, the max-pooling's input) are kept at one bit
# each; the gradients stay bit-for-bit the same
# ([the memory tutorial](07_memory_speed.html) goes further).

# %%
def saved_mb(net, level="full"):
    functional.reset_net(net)
    net.zero_grad(set_to_none=True)
    with memory.count_saved() as kept, memory.saving(level):
        out = net(x_seq)
    F.cross_entropy(out.mean(0), labels).backward()
    return kept.bytes / 1e6


kept = {"SpikingJelly": saved_mb(sj_net), "snnrs": saved_mb(rs_net),
        "snnrs, packed": saved_mb(rs_net, "packed")}
grads_packed = [p.grad for p in rs_net.parameters()]
train_step(rs_net)
assert all(torch.equal(a, p.grad) for a, p in zip(grads_packed, rs_net.parameters(), strict=True))
print(f"{'network':<14} {'kept for backward':>18}")
for name, mb in kept.items():
    print(f"{name:<14} {mb:>15.1f} MB")
assert kept["snnrs, packed"] < kept["snnrs"] < kept["SpikingJelly"]

# %% [markdown]
# Per neuron, counted on one neuron layer alone (its input is the leaf, so it is not counted):
# how many bytes each keeps per neuron and time step. SpikingJelly's depends on its settings.

# %%
def bytes_per_neuron_step(node):
    x = torch.randn(T, B, 1000).requires_grad_()
    with memory.count_saved() as kept:
        node(x)
    return kept.bytes / x.numel()


sj_model_lif = sj_lif()
sj_model_lif.step_mode = "m"
per_step = {
    "SpikingJelly, this model's LIFNode": bytes_per_neuron_step(sj_model_lif),
    "SpikingJelly, LIFNode() defaults": bytes_per_neuron_step(neuron.LIFNode(step_mode="m")),
    "snnrs, the swapped LIF": bytes_per_neuron_step(snnrs.nn.replace_neurons(
        nn.Sequential(sj_model_lif))[0]),
    "snnrs, LIF() defaults": bytes_per_neuron_step(snnrs.nn.LIF(step_mode="m")),
}
print(f"{'neuron':<36} {'kept per neuron-step':>21}")
for name, nbytes in per_step.items():
    print(f"{name:<36} {nbytes:>15.0f} bytes")
assert per_step["snnrs, the swapped LIF"] == per_step["snnrs, LIF() defaults"] == 4  # H only
assert min(per_step["SpikingJelly, this model's LIFNode"],
           per_step["SpikingJelly, LIFNode() defaults"]) > 4

# %% [markdown]
# Now the time of a training step (forward and backward), and of the neurons alone: the
# first neuron layer's input, `[T, B, 32, 28, 28]`, through SpikingJelly's `LIFNode` and
# through snnrs's `LIF`, with a fixed upstream gradient. Every variant runs once untimed,
# then the variants take turns for a few rounds so that load from other processes affects
# them alike; the table reports the median. The absolute numbers depend on your machine and
# its load, so read the ratio.

# %%
with torch.no_grad():
    v_in = sj_net[1](sj_net[0](x_seq)).clone()        # the first neuron's input
grad_out = torch.randn_like(v_in)


def neurons_only(node):
    def step():
        node.reset()
        x = v_in.detach().requires_grad_()
        (node(x) * grad_out).sum().backward()
    return step


variants = {
    ("network step", "SpikingJelly"): lambda: train_step(sj_net),
    ("network step", "snnrs"): lambda: train_step(rs_net),
    ("neurons only", "SpikingJelly"): neurons_only(sj_net[2]),
    ("neurons only", "snnrs"): neurons_only(rs_net[2]),
}
times = {key: [] for key in variants}
for round_ in range(10):                      # round 0 is the untimed warm-up
    for key, run in variants.items():
        t0 = time.perf_counter()
        run()
        if round_:
            times[key].append((time.perf_counter() - t0) * 1e3)
median = {key: statistics.median(ts) for key, ts in times.items()}

print(f"{'what':<14} {'SpikingJelly':>14} {'snnrs':>11} {'speed-up':>9}")
for what in ("network step", "neurons only"):
    sj_ms, rs_ms = median[(what, "SpikingJelly")], median[(what, "snnrs")]
    print(f"{what:<14} {sj_ms:>11.1f} ms {rs_ms:>8.1f} ms {sj_ms / rs_ms:>8.2f}x")
print(f"(median of {len(times[key])} rounds, {torch.get_num_threads()} threads)")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
groups = ("network step", "neurons only")
for k, (lib, color) in enumerate((("SpikingJelly", "tab:gray"), ("snnrs", "tab:orange"))):
    xs = [g + (k - 0.5) * 0.38 for g in range(len(groups))]
    ax.bar(xs, [median[(g, lib)] for g in groups], width=0.38, color=color, label=lib)
    for x, g in zip(xs, groups, strict=True):
        ax.plot([x] * len(times[(g, lib)]), times[(g, lib)], "k.", markersize=3)
ax.set_xticks(range(len(groups)), [f"{g}\n(forward + backward)" for g in groups])
ax.set_ylabel("time per step (ms)")
ax.set_title(f"SpikingJelly vs snnrs, T={T}, batch {B}, float32 CPU\n"
             "bars: median; dots: each timed round")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What to take away
#
# - `snnrs.nn.replace_neurons(model)` swaps SpikingJelly's `IFNode`, `LIFNode` and
#   `ParametricLIFNode` in place, with their parameters; anything it cannot map exactly is
#   refused by name (or kept with `strict=False`).
# - The swapped model computes the same spikes and outputs. In the two configurations above
#   with `tau=2` or IF, the `ATan` or `Rect` surrogate and `detach_reset=True`, the gradients
#   are bit-for-bit equal too; in the others they agree to float32 rounding (float64
#   rounding in double precision), and a spike may flip where the charge lies within
#   rounding of the threshold.
# - Your training loop does not change: `functional.reset_net` still resets the neurons. The
#   speed-up is in the neurons; in a whole step it depends on how much of the time the
#   convolutions take.
# - `memory.saving(...)` and `count_saved()` work on the swapped model as on any other; the
#   memory levels are the subject of [tutorial 7](07_memory_speed.html).
