# %% [markdown]
# # Export a trained student to NIR and run it in Norse
#
# [NIR](https://neuroir.org), the Neuromorphic Intermediate Representation, is how SNN
# libraries and neuromorphic chips exchange networks. This page trains a small spiking student
# with `snnrs distill`, exports it as a NIR graph (from the command line and from Python),
# looks at the graph's nodes, runs the same images through snnrs and through Norse and checks
# that both give the same spikes and the same outputs, then loads the graph back into snnrs.
# It runs in about half a minute on a laptop CPU.

# %% [markdown]
# ## Setup
#
# Everything this page writes goes into one temporary folder. The small `snnrs()` helper runs
# the command line as you would in a shell and prints what it printed. The page needs the
# optional `nir` package (`pip install ".[nir]"` in a clone of snnrs) and Norse
# (`pip install norse`).

# %%
import logging
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import nir
import numpy as np
import snnrs.nir as snir  # snnrs.nir: NIR export and import
import torch
from snnrs import data
from snnrs.train import checkpoint

work = Path(tempfile.mkdtemp(prefix="snnrs-nir-"))


def snnrs(*args):
    """Runs `snnrs ARGS`, prints the command and its output; raises if it fails."""
    print("$ snnrs", *args)
    run = subprocess.run([sys.executable, "-m", "snnrs", *map(str, args)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(run.stdout)
    if run.returncode:
        raise RuntimeError(f"snnrs {args[0]} failed with exit status {run.returncode}")


# %% [markdown]
# ## A student to export
#
# A smoke run of the main job (`--quick`, with a few more epochs and images than its default
# budget, and no baseline) gives a trained spiking convnet quickly: T=4 steps, LIF neurons
# with `tau=2`, hard reset to 0. Its accuracy is from a tiny budget; what matters here is that
# its neurons fire, so that the comparison below compares real spikes.

# %%
run_dir = work / "run"
snnrs("distill", "--quick", "--teacher-epochs", 5, "--epochs", 2, "--train-limit", 2000,
      "--test-limit", 200, "--no-baseline", "--out", run_dir)
student_ckpt = run_dir / "checkpoints" / "student.pt"

# %% [markdown]
# ## Export from the command line
#
# `snnrs export` writes a checkpoint's spiking network as a NIR file. `--dt` is the length of
# one time step in seconds: NIR's neurons are written in continuous time, and `dt` turns the
# network's per-step leak into NIR's time constants (`tau = 2` steps becomes `2 * dt` seconds).
# A reader must run the graph at the same `dt`. Any `dt` works; a power of two (here
# 2^-10 s, about 1 ms) makes `dt / tau` exact in float arithmetic, so that two libraries
# compute the very same numbers (at other values they may round it differently by one ulp,
# which could move a spike whose membrane lies within that of the threshold).

# %%
DT = 2.0 ** -10
graph_file = work / "student.nir"
snnrs("export", student_ckpt, "--nir", graph_file, "--dt", DT)

# %% [markdown]
# ## What the graph holds
#
# A NIR graph describes **one time step**: its input is one image `(C, H, W)`, without batch
# or time, and its output is that step's logits. The stem's convolution sees the same image at
# every step (direct encoding), so a reader feeds the image again at each step. BatchNorm is
# folded into the convolution before it, and average pooling becomes sum pooling with its
# `1 / k` folded into a neighbouring convolution or linear layer, since most NIR readers and
# chips have only sum pooling.

# %%
graph = nir.read(graph_file)
for name, node in graph.nodes.items():
    shape_in = tuple(int(n) for n in next(iter(node.input_type.values())))
    shape_out = tuple(int(n) for n in next(iter(node.output_type.values())))
    print(f"{name:14} {type(node).__name__:10} {shape_in!s:>14} -> {shape_out}")
print("edges:", " -> ".join([graph.edges[0][0]] + [dst for _, dst in graph.edges]))
kinds = Counter(type(node).__name__ for node in graph.nodes.values())
assert kinds["LIF"] == 3 and kinds["Conv2d"] == 3 and kinds["SumPool2d"] == 3
assert not any("BatchNorm" in kind or kind == "AvgPool2d" for kind in kinds)

# %% [markdown]
# Each LIF node holds one value per neuron: `tau` in seconds, `r`, `v_leak`, `v_threshold` and
# `v_reset` (the mapping from snnrs's parameters is tabled in the NIR guide, [NIR export and
# import](../nir.html)). The metadata records `dt`, the trained `T`, the readout (the mean of
# the per-step logits over `T`, left to the reader) and the normalisation the network expects of
# its input images.

# %%
lif = graph.nodes["stem_act"]
print({field: float(np.unique(getattr(lif, field))[0])
       for field in ("tau", "r", "v_leak", "v_threshold", "v_reset")})
print({k: v.tolist() if hasattr(v, "tolist") else v for k, v in graph.metadata.items()})
assert lif.tau.shape == tuple(lif.output_type["output"])     # one value per neuron
assert np.all(lif.tau == 2 * DT) and np.all(lif.r == 1) and np.all(lif.v_reset == 0)
assert graph.metadata["dt"] == DT and graph.metadata["snnrs_T"] == 4

# %% [markdown]
# ## Export from Python
#
# The command is a front end to `snnrs.nir.export(model, input_shape, dt)`, which takes a
# spiking zoo network or your own `nn.Sequential` of layers and neurons (the NIR guide lists
# what it can express and what it refuses, naming the layer). It reads the network by walking
# its modules, and before returning it checks itself: it exports a float64 copy, loads it back
# and compares the outputs. The graph is the same; the command adds the dataset and the input
# normalisation to the metadata.

# %%
student, ckpt = checkpoint.load_model(student_ckpt)
graph_py = snir.export(student, (1, 28, 28), dt=DT)
assert graph_py.nodes.keys() == graph.nodes.keys() and graph_py.edges == graph.edges
for name, node in graph.nodes.items():
    if hasattr(node, "weight"):
        np.testing.assert_array_equal(graph_py.nodes[name].weight, node.weight)
added = sorted(set(graph.metadata) - set(graph_py.metadata))
print("added by the command:", added)
assert added == ["snnrs_dataset", "snnrs_input_mean", "snnrs_input_std"]

# %% [markdown]
# ## The same images through snnrs and Norse
#
# The inputs: eight test images of the built-in MNIST subset, normalised as the graph's
# metadata says. snnrs's `forward_steps` gives the per-step logits `[T, B, 10]`; the network's
# prediction is their mean over the `T` steps.

# %%
T = int(graph.metadata["snnrs_T"])
images = data.load("mnist", seed=0).test.images[:8]
normalize = data.Normalize(graph.metadata["snnrs_input_mean"].tolist(),
                           graph.metadata["snnrs_input_std"].tolist())
x = normalize(data.to_float(images))                      # [8, 1, 28, 28]


def count_spikes(module, layer_type, node_name=str):
    """Hooks each ``layer_type`` layer of ``module`` to count its spikes, by NIR node name."""
    counts = Counter()

    def counter(node):
        def hook(layer, inputs, out):
            counts[node] += int((out[0] if isinstance(out, tuple) else out).sum())
        return hook

    for name, layer in module.named_modules():
        if type(layer).__name__ == layer_type:
            layer.register_forward_hook(counter(node_name(name)))
    return counts


ours_spikes = count_spikes(student, "Spiking")
with torch.no_grad():
    ours = student.forward_steps(x)                       # [T, 8, 10]
print("snnrs per-step logits:", tuple(ours.shape))

# %% [markdown]
# Norse reads the graph with `norse.torch.from_nir` (run at the same `dt`) into a module that
# takes one step and its state, `(x_t, state) -> (y_t, state)`, so the loop over time is written
# out. Norse treats NIR's `Flatten` dimensions, which count within one sample, as torch
# dimensions of the whole batch, so a graph with a `Flatten` runs in Norse one image at a time
# ([NIR export and import](../nir.html) tables what Norse and SpikingJelly do with each field).
# Norse warns when it is imported, and logs each NIR field it ignores as it reads the graph:
# here `r`, which is 1 in every LIF node (what Norse assumes), and `v_reset`, which is 0 (what
# Norse resets to), so neither changes what Norse computes. This cell silences both.

# %%
lifs = [node for node in graph.nodes.values() if isinstance(node, nir.LIF)]
assert all(np.all(n.r == 1) and np.all(n.v_reset == 0) and np.all(n.v_leak == 0) for n in lifs)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import norse.torch as norse

    logging.getLogger().setLevel(logging.ERROR)   # Norse logs each ignored field
    norse_net = norse.from_nir(graph, dt=DT, ignore_warnings=True)
# Norse names its modules after the nodes, with "_" for ".": stem_act, stages_0_3, ...
node_of = {name.replace(".", "_"): name for name in graph.nodes}
theirs_spikes = count_spikes(norse_net, "LIFBoxCell", node_of.get)

per_image = []
with torch.no_grad():
    for image in x:
        state, steps = None, []
        for _ in range(T):
            y, state = norse_net(image[None], state)      # one step, a batch of one
            steps.append(y.reshape(-1))
        per_image.append(torch.stack(steps))
theirs = torch.stack(per_image, 1)                         # [T, 8, 10]
print("Norse per-step logits:", tuple(theirs.shape))

# %% [markdown]
# Both libraries fired the very same number of spikes in every layer, and their logits agree
# to float32 rounding (the tolerance the tests use), so they predict the same digits.

# %%
print(f"{'layer':12} {'snnrs':>8} {'Norse':>8}")
for layer in ours_spikes:
    print(f"{layer:12} {ours_spikes[layer]:8d} {theirs_spikes[layer]:8d}")
assert dict(ours_spikes) == dict(theirs_spikes)
assert all(count > 0 for count in ours_spikes.values())
torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-6)
print("largest difference of a logit:", float((theirs - ours).abs().max()))
ours_pred, theirs_pred = ours.mean(0).argmax(1), theirs.mean(0).argmax(1)
assert torch.equal(ours_pred, theirs_pred)
print("labels:     ", data.load("mnist", seed=0).test.labels[:8].tolist())
print("predictions:", ours_pred.tolist())

# %%
layers = list(ours_spikes)
fig, (spike_ax, logit_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
where = np.arange(len(layers))
n_neurons = {name: int(np.prod(next(iter(graph.nodes[name].output_type.values()))))
             for name in layers}
for shift, (library, counts) in zip((-0.2, 0.2), (("snnrs", ours_spikes),
                                                   ("Norse", theirs_spikes)), strict=True):
    rates = [counts[name] / (n_neurons[name] * T * len(x)) for name in layers]
    spike_ax.bar(where + shift, rates, width=0.4, label=library)
spike_ax.set(xticks=where, xticklabels=layers, xlabel="spiking layer (NIR node)",
             ylabel="spikes per neuron per step", title=f"Firing rates, {len(x)} images, T={T}")
spike_ax.legend()
logit_ax.plot(ours.mean(0).flatten(), theirs.mean(0).flatten(), "o", alpha=0.6)
low, high = float(ours.mean(0).min()), float(ours.mean(0).max())
logit_ax.plot([low, high], [low, high], "k--", lw=0.8, label="equal")
logit_ax.set(xlabel="snnrs logit (mean over T)", ylabel="Norse logit (mean over T)",
             title="Outputs of the same graph, 8 images x 10 classes")
logit_ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Back into snnrs
#
# `snnrs.nir.load` runs a NIR graph, written by snnrs or by another library, as a PyTorch
# module over whole sequences `[T, B, ...]` (any batch size), with `dt` read from the graph's
# metadata. Its weights are `nn.Parameter`s and its spikes have surrogate gradients, so an
# imported graph can be trained further.

# %%
again = snir.load(graph_file)
x_seq = x.expand(T, *x.shape)                               # the image at every step
with torch.no_grad():
    back = again(x_seq)                                     # [T, 8, 10]
torch.testing.assert_close(back, ours, rtol=1e-5, atol=1e-6)
again(x_seq).sum().backward()                               # gradients reach every weight
assert all(p.grad is not None for p in again.parameters())
print(type(again).__name__, tuple(back.shape), "largest difference:",
      float((back - ours).abs().max()))

# %% [markdown]
# With `--readout` the graph ends in an integrator node (`nir.I`) whose output at the last
# step is the network's own readout, the mean of the per-step logits. snnrs reads it;
# Norse and SpikingJelly cannot read an `I` node, which is why it is not the default.

# %%
readout_file = work / "student-readout.nir"
snnrs("export", student_ckpt, "--nir", readout_file, "--dt", DT, "--readout")
with torch.no_grad():
    logits = snir.load(readout_file)(x_seq)[-1]        # [8, 10], at step T
    readout = student(x)                                # snnrs's readout: the mean over T
assert torch.equal(readout, ours.mean(0))
torch.testing.assert_close(logits, readout, rtol=1e-5, atol=1e-5)
assert type(nir.read(readout_file).nodes["readout"]).__name__ == "I"

# %% [markdown]
# ## Where to go from here
#
# - The NIR guide ([NIR export and import](../nir.html)): the mapping of every neuron, the
#   firing rule (snnrs fires at `v >= v_threshold`, NIR at `v > v_threshold`), what is refused
#   and why, and what Norse and SpikingJelly do with each field.
# - `snnrs export --help`: `--T`, `--input-shape`, `--readout`.
