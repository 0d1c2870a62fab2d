# %% [markdown]
# # Your own neuron, method and dataset
#
# snnrs's neuron kinds, distillation methods and datasets are registries that a decorator
# fills, so your own are one small file each, and `snnrs distill --import FILE` brings them to
# the command line next to the built-in ones. This page writes three such files (a leaky
# integrate-and-fire neuron with a refractory period, logit-matching distillation, and a dataset
# read from NumPy files), checks each one in Python, then trains with all three from the command
# line. It runs in under a minute on a laptop CPU.

# %% [markdown]
# ## Setup
#
# The files, the data and the run all go into one temporary folder, which is also where the
# command line runs, so the commands below are what you would type in your own project folder.

# %%
import atexit
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from snnrs import models
from snnrs.distill import create_method
from snnrs.train.checkpoint import load_model

work = Path(tempfile.mkdtemp(prefix="snnrs-extend-"))
atexit.register(shutil.rmtree, work, ignore_errors=True)   # removed when Python exits
sys.path.insert(0, str(work))                              # to import the files here too


def write(name, text):
    """Writes one of this page's files into the work folder."""
    (work / name).write_text(text)
    print(f"wrote {name} ({len(text.splitlines())} lines)")


def snnrs(*args):
    """Runs `snnrs ARGS` in the work folder, prints the command and its output; raises if it
    fails."""
    print("$ snnrs", *args)
    run = subprocess.run([sys.executable, "-m", "snnrs", *map(str, args)], cwd=work,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(run.stdout)
    if run.returncode:
        raise RuntimeError(f"snnrs {args[0]} failed with exit status {run.returncode}")


# %% [markdown]
# ## A neuron: LIF with a refractory period
#
# A neuron *family* ([Neuron families](../families.html)) is a `snnrs.nn.BaseNode` subclass that
# declares its parameters (`Params`), what it keeps between steps (`State`), one time step
# (`step`) and the state it starts from (`rest`). snnrs builds the rest from these: single- and
# multi-step modes, the kept state and `reset()`, and backpropagation through time by autograd.
# Spikes come from `snnrs.surrogate.heaviside`: a step function forward, a surrogate derivative
# backward.
#
# This one is a leaky integrate-and-fire neuron (the membrane keeps `beta` of itself each step,
# snnTorch's `beta`; hard reset to 0) that ignores its input for `refractory` steps after each
# spike.
# `@register_family("refractory-lif")` makes it a neuron kind: `--neuron refractory-lif`, with
# its own parameters set by `--model-opt beta=...` and `--model-opt refractory=...`.

# %%
write("my_neuron.py", '''\
"""LIF with an absolute refractory period:

    H[t] = beta * V[t-1] + X[t]   if no refractory steps are left, else 0
    S[t] = 1 if H[t] >= v_threshold else 0
    V[t] = H[t] * (1 - S[t])      (hard reset to 0)

and each spike makes the neuron ignore its input for the next `refractory` steps.
"""
from typing import NamedTuple

import torch
from snnrs import surrogate
from snnrs.nn import BaseNode, register_family


class RefractoryParams(NamedTuple):
    beta: float
    v_threshold: float
    refractory: int


class RefractoryState(NamedTuple):
    v: torch.Tensor
    wait: torch.Tensor  # refractory steps left


@register_family("refractory-lif")
class RefractoryLIF(BaseNode):
    Params, State = RefractoryParams, RefractoryState

    def __init__(self, beta=0.5, v_threshold=1.0, refractory=2, step_mode="s"):
        if not (0 <= beta <= 1 and v_threshold > 0 and refractory >= 0):
            raise ValueError("need 0 <= beta <= 1, v_threshold > 0 and refractory >= 0, got "
                             f"{beta}, {v_threshold} and {refractory}")
        super().__init__(RefractoryParams(float(beta), float(v_threshold), int(refractory)),
                         step_mode)

    @staticmethod
    def step(x, state, p):
        free = (state.wait == 0).to(x.dtype)
        h = free * (p.beta * state.v + x)
        s = surrogate.heaviside(h - p.v_threshold, "sigmoid", 4.0)
        wait = (state.wait - 1).clamp(min=0) + p.refractory * s.detach()
        return s, RefractoryState(h * (1 - s), wait)

    @staticmethod
    def rest(x, p):
        return RefractoryState(torch.zeros_like(x), torch.zeros_like(x))
''')

# %% [markdown]
# Before training with it, check it against the equation by hand. With `beta = 0.5`, threshold
# 1 and 2 refractory steps, a steady input of 0.6 charges the membrane to 0.6, then
# 0.5 * 0.6 + 0.6 = 0.9, then 0.5 * 0.9 + 0.6 = 1.05, which fires and resets. The strong
# input (5) at the next step falls in the refractory period and is ignored, and so gets no
# gradient either (nor does the next step's input); the same input later fires at once.
# Without a refractory period the neuron is a plain LIF and fires on both strong inputs.

# %%
my_neuron = importlib.import_module("my_neuron")
x = torch.tensor([0.6, 0.6, 0.6, 5.0, 0.6, 0.6, 5.0], requires_grad=True)

neuron = my_neuron.RefractoryLIF(beta=0.5, v_threshold=1.0, refractory=2)  # one step per call
print(" t  input  membrane  wait  spike")
rows = []
for t, x_t in enumerate(x):
    spike = neuron(x_t.reshape(1))
    rows.append((neuron.state.v.item(), neuron.state.wait.item(), spike.item()))
    print(f"{t:2}  {x_t.item():5.1f}  {rows[-1][0]:8.2f}  {rows[-1][1]:4.0f}  {rows[-1][2]:5.0f}")
membrane, wait, spikes = (list(column) for column in zip(*rows, strict=True))
assert spikes == [0, 0, 1, 0, 0, 0, 1]
assert wait == [0, 0, 2, 1, 0, 0, 2]
torch.testing.assert_close(torch.tensor(membrane), torch.tensor([0.6, 0.9, 0, 0, 0, 0.6, 0]))

# The same inputs as one sequence [T, batch]: inputs in refractory steps get no gradient.
out, _ = neuron.simulate(x.reshape(7, 1))
assert out.flatten().tolist() == spikes
out.sum().backward()
assert x.grad[3] == x.grad[4] == 0 and (x.grad[:3] != 0).all()

plain = my_neuron.RefractoryLIF(beta=0.5, v_threshold=1.0, refractory=0)
assert plain.simulate(x.detach().reshape(7, 1))[0].flatten().tolist() == [0, 0, 1, 1, 0, 0, 1]

# %% [markdown]
# ## A distillation method: logit matching
#
# A method ([Distillation methods](../methods.html)) is a `snnrs.distill.Method` subclass. Its
# constructor takes the student, the teacher and its own options (here `weight`), which
# `--method-opt KEY=VALUE` sets and snnrs checks against the constructor's signature before
# anything trains. `forward` takes a batch and returns the loss to minimise under `"loss"`, plus
# any parts worth logging. The base class keeps the teacher frozen (in eval mode, no gradients,
# outside the optimiser and the checkpoints).
#
# This one is logit matching (Ba & Caruana, 2014): cross-entropy plus `weight` times the mean
# squared error between the student's and the teacher's logits.

# %%
write("my_method.py", '''\
"""Logit matching: cross-entropy plus `weight` times the mean squared error between the
student's logits and the frozen teacher's."""
import torch
import torch.nn.functional as F
from snnrs.distill import Method, register_method


@register_method("logit-mse")
class LogitMSE(Method):
    def __init__(self, student, teacher, weight: float = 0.1):
        super().__init__(student, teacher)
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self.weight = weight

    def forward(self, images, labels):
        logits = self.student(images)
        with torch.no_grad():
            target = self.teacher(images)
        ce = F.cross_entropy(logits, labels)
        mse = F.mse_loss(logits, target)
        return {"loss": ce + self.weight * mse, "ce": ce, "mse": mse}
''')

# %% [markdown]
# Try it on a student and teacher from the model zoo: one call gives the loss and its parts,
# and the gradient reaches the student only.

# %%
importlib.import_module("my_method")
torch.manual_seed(0)
student = models.create("convnet", kind="snn", T=2, num_classes=3)
teacher = models.create("convnet", kind="ann", num_classes=3)
method = create_method("logit-mse", student, teacher, weight=0.5)
images, labels = torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 0])
parts = method(images, labels)
print({name: round(value.item(), 4) for name, value in parts.items()})
torch.testing.assert_close(parts["loss"], parts["ce"] + 0.5 * parts["mse"])
parts["loss"].backward()
assert all(p.grad is not None for p in student.parameters())
assert all(p.grad is None for p in teacher.parameters())
assert not method.train().teacher.training                        # frozen in eval mode
assert not any(key.startswith("teacher") for key in method.state_dict())  # not checkpointed

# %% [markdown]
# ## A dataset: images from NumPy files
#
# A dataset is a function `(data_dir, seed, **options) -> snnrs.data.DataSplits` registered
# with `@snnrs.data.register_dataset`, which also says how to augment it for training (here: a
# random crop after padding 2 pixels, no flips). Images are uint8 tensors `[N, C, H, W]`,
# labels int64 `[N]`; snnrs scales, normalises (by the training split's mean and std, unless
# the dataset registers its own) and batches them.
#
# This one reads `train.npz` and `test.npz` (arrays `images` and `labels`) and the class
# names from `classes.txt` in `--data-dir`: a way in for data you already hold as arrays.

# %%
write("my_dataset.py", '''\
"""Images from DIR/train.npz and DIR/test.npz (uint8 `images` [N, H, W] or [N, C, H, W], and
integer `labels`), class names from DIR/classes.txt, one per line."""
import numpy as np
import torch
from snnrs.data import DataSplits, ImageSet, register_dataset


def read_split(path):
    with np.load(path) as arrays:
        images = torch.from_numpy(arrays["images"])
        labels = torch.from_numpy(arrays["labels"]).long()
    return ImageSet(images[:, None] if images.dim() == 3 else images, labels)


@register_dataset("npz", augment={"crop_padding": 2, "flip": False})
def npz(data_dir, seed):
    classes = tuple((data_dir / "classes.txt").read_text().split())
    return DataSplits("npz", read_split(data_dir / "train.npz"),
                      read_split(data_dir / "test.npz"), classes)
''')

# %% [markdown]
# Some data for it: 16 x 16 images of a ring, a cross or a disc at a random place, with noise.

# %%
CLASSES = ("ring", "cross", "disc")


def shapes(n, rng):
    """`n` noisy 16 x 16 uint8 images of the CLASSES, and their labels."""
    rows, cols = np.mgrid[:16, :16]
    labels = rng.integers(0, len(CLASSES), n)
    images = np.empty((n, 16, 16), dtype=np.uint8)
    for i, label in enumerate(labels):
        dy, dx = rows - rng.uniform(5, 11), cols - rng.uniform(5, 11)
        r = np.hypot(dy, dx)
        ring = np.abs(r - 4) < 1
        cross = (np.abs(dy) < 1) & (np.abs(dx) < 5) | (np.abs(dx) < 1) & (np.abs(dy) < 5)
        disc = r < 3
        shape = (ring, cross, disc)[label]
        images[i] = np.clip(200 * shape + rng.normal(40, 25, (16, 16)), 0, 255)
    return images, labels


rng = np.random.default_rng(0)
data_dir = work / "shapes"
data_dir.mkdir()
for split, n in (("train", 384), ("test", 192)):
    images, labels = shapes(n, rng)
    np.savez(data_dir / f"{split}.npz", images=images, labels=labels)
(data_dir / "classes.txt").write_text("\n".join(CLASSES) + "\n")

my_dataset = importlib.import_module("my_dataset")
splits = my_dataset.npz(data_dir, seed=0)
print(f"train {tuple(splits.train.images.shape)}, test {tuple(splits.test.images.shape)}, "
      f"classes {splits.classes}")
assert splits.classes == CLASSES and splits.train.images.dtype == torch.uint8

fig, axes = plt.subplots(1, 8, figsize=(12, 2))
for ax, image, label in zip(axes, splits.train.images[:8, 0], splits.train.labels[:8],
                            strict=True):
    ax.imshow(image, cmap="gray", vmin=0, vmax=255)
    ax.set(title=CLASSES[label], xlabel="x (pixel)", xticks=[0, 15], yticks=[0, 15])
axes[0].set_ylabel("y (pixel)")
fig.suptitle("training images of the npz dataset (16 x 16, grey levels 0 to 255)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Training with all three from the command line
#
# `--import FILE` (repeatable) imports a file before the flags are read, so its registrations
# are valid choices of `--neuron`, `--method` and `--dataset`. This smoke run (`--quick`: one
# epoch of each network on 256 training and 128 test images) trains an ANN teacher on the npz
# dataset, distils a student of refractory LIF neurons from it by logit matching, and trains a
# plain SNN baseline of the same neurons. Its accuracies show that the run works, not what
# the method achieves.

# %%
snnrs("distill", "--import", "my_neuron.py", "--import", "my_method.py",
      "--import", "my_dataset.py", "--dataset", "npz", "--data-dir", "shapes",
      "--neuron", "refractory-lif", "--model-opt", "refractory=1",
      "--method", "logit-mse", "--method-opt", "weight=0.5", "--quick", "--out", "run")

# %% [markdown]
# The run folder says what ran: `summary.json` names the method and the dataset, the metrics
# log the method's own loss parts (`train_mse`), and the student's checkpoint rebuilds a network
# of the new neurons, with the option given on the command line.

# %%
run_dir = work / "run"
summary = json.loads((run_dir / "summary.json").read_text())
assert summary["method"] == "logit-mse" and summary["dataset"] == "npz"
assert summary["smoke_run"] and (summary["train_images"], summary["test_images"]) == (256, 128)
header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
assert {"train_ce", "train_mse"} <= set(header)

network, checkpoint = load_model(run_dir / "checkpoints" / "student.pt")
neurons = [m for m in network.modules() if isinstance(m, my_neuron.RefractoryLIF)]
assert neurons and all(n.params.refractory == 1 for n in neurons)
assert checkpoint["model"]["neuron"] == "refractory-lif"
baseline, _ = load_model(run_dir / "checkpoints" / "baseline.pt")
assert any(isinstance(m, my_neuron.RefractoryLIF) for m in baseline.modules())
print(f"method {summary['method']}, dataset {summary['dataset']}: "
      f"{len(neurons)} layers of {type(neurons[0]).__name__}, {neurons[0].params}")
print(f"student accuracy {summary['student_accuracy']:.1%}, "
      f"firing rate {summary['firing_rate']:.3f}")

# %% [markdown]
# ## Next steps
#
# - Train for real by dropping `--quick` and setting the budget (`--epochs`, `--teacher-epochs`);
#   put the flags in a config file (`--config run.yaml`) to keep them with the project.
# - A file can register several things, and a package can register them for every run through
#   the `snnrs.plugins` entry point instead of `--import`.
# - A family can get a fused kernel for speed (`@snnrs.nn.register_kernel`, held to the family's
#   `step`) and NIR export (`to_nir`): [Neuron families](../families.html).
#   [Architecture](../architecture.html) lists every extension point and the file that shows it.
