# %% [markdown]
# # Distil a spiking student from an ANN teacher
#
# This page trains an ANN teacher on the MNIST subset that ships inside snnrs, distils a
# spiking student from it with SAMD + NLD, and trains a plain SNN baseline next to it, first
# with one `snnrs distill` command and then with the Python API (the model zoo, the method
# registry and a training loop of your own). You will read the run folder's files, plot the
# training curves and look at the report. On a deliberately tiny budget, the page runs in
# about half a minute to a minute on a laptop CPU.

# %% [markdown]
# ## Setup
#
# Everything this page writes goes into one temporary folder. The small `snnrs()` helper runs
# the command line as you would in a shell (`python -m snnrs` is the same program as
# `snnrs`) and prints what it printed.

# %%
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import yaml
from snnrs import data, evaluate, models
from snnrs.distill import METHODS, create_method
from snnrs.train import TrainConfig, WarmupCosine, checkpoint
from snnrs.train.config import QUICK  # the smoke run's budget

work = Path(tempfile.mkdtemp(prefix="snnrs-distill-"))


def snnrs(*args):
    """Runs `snnrs ARGS`, prints the command and its output; raises if it fails."""
    print("$ snnrs", *args)
    run = subprocess.run([sys.executable, "-m", "snnrs", *map(str, args)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(run.stdout)
    if run.returncode:
        raise RuntimeError(f"snnrs {args[0]} failed with exit status {run.returncode}")


# %% [markdown]
# ## The budget
#
# `snnrs distill` with no flags is the main job: a convnet teacher trained for 15 epochs on
# the 4,000 training images, then a T=4 spiking student distilled for 10 epochs and a baseline
# trained for 10, tested on all 1,000 test images. Its accuracies and run time are in the
# README's table ("The main job"). This page cuts that budget down so that it runs
# quickly: `--quick` starts from the smoke-run budget (1 epoch each on 256 images) and the
# flags after it win, giving 8 teacher epochs and 5 student and baseline epochs on 2,000
# training images, tested on 500. **The accuracies below come from this tiny budget**: they
# show how the pieces fit, not what the networks or the method reach.

# %%
defaults = TrainConfig()
assert (defaults.teacher_epochs, defaults.epochs, defaults.method) == (15, 10, "samd-nld")
assert defaults.optimizer == "sgd" and defaults.nesterov and defaults.warmup_epochs == 1
splits = data.load("mnist", seed=0)
assert (len(splits.train), len(splits.test)) == (4000, 1000)
assert (QUICK["teacher_epochs"], QUICK["epochs"], QUICK["train_limit"]) == (1, 1, 256)

TEACHER_EPOCHS, EPOCHS, TRAIN, TEST = 8, 5, 2000, 500

# %% [markdown]
# ## From the command line
#
# One command trains all three networks, evaluates them and writes the run folder. With no
# `--method` it distils with `samd-nld`, and the student and the baseline both start from the
# trained teacher's weights (`--no-init-from-teacher` would start them from random ones).

# %%
run_dir = work / "run"
snnrs("distill", "--quick", "--teacher-epochs", TEACHER_EPOCHS, "--epochs", EPOCHS,
      "--train-limit", TRAIN, "--test-limit", TEST, "--out", run_dir)

# %% [markdown]
# The last line says that this was a smoke run: any run started with `--quick` says so in its
# output, its `summary.json`, its `report.md` and its `config.yaml`, so that its numbers are
# never mistaken for results.
#
# ## The run folder
#
# Each file is described in the run-folder guide ([The run folder](../run-folder.html)).
# `config.yaml` holds every resolved setting, so the budget the flags asked for can be read back
# from it.

# %%
for path in sorted(run_dir.rglob("*")):
    if path.is_file() and not path.name.startswith("."):
        print(f"{path.relative_to(run_dir)!s:28} {path.stat().st_size:>9,} bytes")

config = yaml.safe_load((run_dir / "config.yaml").read_text())
assert config["quick"] is True
assert (config["teacher_epochs"], config["epochs"]) == (TEACHER_EPOCHS, EPOCHS)
assert (config["train_limit"], config["test_limit"]) == (TRAIN, TEST)
for phase in ("teacher", "student", "baseline"):
    assert (run_dir / "checkpoints" / f"{phase}.pt").is_file()

# %% [markdown]
# ## Training curves
#
# `metrics.jsonl` has one JSON object per epoch and phase (`teacher`, `student`, `baseline`):
# the training loss and its parts, the test accuracy as a fraction, the learning rate and the
# time taken. That is all a plot of the training needs. (The run also drew its own version of
# these curves, `curves.png`.)

# %%
rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
phases = {p: [r for r in rows if r["phase"] == p] for p in ("teacher", "student", "baseline")}
assert [len(phases[p]) for p in phases] == [TEACHER_EPOCHS, EPOCHS, EPOCHS]
print("columns of a student row:", ", ".join(phases["student"][0]))

fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
styles = {"teacher": "o-", "student": "s-", "baseline": "^--"}
for phase, prows in phases.items():
    epochs = [r["epoch"] for r in prows]
    acc_ax.plot(epochs, [100 * r["test_accuracy"] for r in prows], styles[phase], label=phase)
    loss_ax.plot(epochs, [r["train_ce"] for r in prows], styles[phase], label=phase)
acc_ax.set(xlabel="epoch", ylabel="test accuracy (%)",
           title=f"Test accuracy ({TEST} test images)")
loss_ax.set(xlabel="epoch", ylabel="training cross-entropy (nats)",
            title="Training loss (cross-entropy part)")
for ax in (acc_ax, loss_ax):
    ax.legend()
    ax.grid(alpha=0.3)
fig.suptitle("snnrs distill on a tiny budget (smoke run)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The student's and the baseline's first epoch already score well above chance (10% for ten
# classes): both start from the trained teacher's weights, copied into the spiking network.

# %%
for phase in ("student", "baseline"):
    assert phases[phase][0]["test_accuracy"] > 0.2, phase

# %% [markdown]
# ## The summary
#
# `summary.json` is the evaluation of every network after its last epoch (accuracy as a
# fraction, the mean firing rate, synaptic operations and an energy estimate per image) plus
# each network's last and best epoch. The accuracy after the last epoch is the last row of
# `metrics.jsonl`, not a second measurement.

# %%
summary = json.loads((run_dir / "summary.json").read_text())
assert summary["smoke_run"] is True
for phase, prows in phases.items():
    net = summary["networks"][phase]
    assert summary[f"{phase}_accuracy"] == net["accuracy"] == prows[-1]["test_accuracy"]
    rate = "-" if net["firing_rate"] is None else f"{net['firing_rate']:.3f}"
    print(f"{phase:9} accuracy {100 * net['accuracy']:6.2f}%  firing rate {rate:>5}  "
          f"energy {net['energy_pj'] / 1e6:.3f} uJ per image")
gap = 100 * (summary["student_accuracy"] - summary["baseline_accuracy"])
print(f"student - baseline: {gap:+.2f} points on {summary['test_images']} test images")
assert summary["networks"]["teacher"]["firing_rate"] is None      # an ANN has no spikes
assert 0 < summary["networks"]["student"]["firing_rate"] < 1

# %% [markdown]
# ## The report
#
# `report.md` says the same in prose and tables: what was run, the results with their units,
# how each network started, the student - baseline gap, the plots and the last and best
# epochs. On a few hundred test images a gap of a point or two is within what test-set
# sampling alone produces, so the report gives each accuracy's standard error and how many of
# them the gap is.

# %%
report = (run_dir / "report.md").read_text()
assert "smoke run" in report.splitlines()[0] and "standard error" in report
print(report.split("## Plots")[0].rstrip())

# %% [markdown]
# ## The same in Python
#
# The command is built from public pieces, which you can use in a training loop of your own:
#
# - `snnrs.models` builds an ANN and an SNN from one topology, with the same parameter names,
#   so `models.transfer_weights` copies the teacher into the student;
# - `snnrs.distill.create_method(name, student, teacher, **options)` builds a method from the
#   registry. Calling it on a batch returns the loss and its named parts; it freezes the
#   teacher and gives the optimiser only what it should train (`parameters_to_train()`);
# - `snnrs.data` loads the built-in data as `uint8` tensors and gives batches, augmentation
#   and normalisation; `snnrs.evaluate.accuracy` tests a network.
#
# The registry's methods:

# %%
print(", ".join(METHODS))
assert splits.train.images.dtype == torch.uint8
assert {"none", "kd", "samd-nld"} <= set(METHODS)

# %% [markdown]
# Here the teacher comes from the run above (a checkpoint stores the zoo's description of its
# network, so `checkpoint.load_model` rebuilds it), with the normalisation it was trained
# with. Its accuracy on the same 500 test images, a seeded class-balanced subset, is the one
# the command reported. A zoo network starts every forward pass from rest, so the same input
# gives the same output twice, with no reset between calls.

# %%
teacher, ckpt = checkpoint.load_model(run_dir / "checkpoints" / "teacher.pt")
normalize = data.Normalize(ckpt["data"]["mean"], ckpt["data"]["std"])
augment = data.default_augment("mnist")            # MNIST's: random crops, no mirroring
train = data.balanced_subset(splits.train, TRAIN, seed=0)
test = data.balanced_subset(splits.test, TEST, seed=0)
assert evaluate.accuracy(teacher, test, normalize) == summary["teacher_accuracy"]
teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
print(f"teacher: {100 * summary['teacher_accuracy']:.2f}% on {len(test)} test images")

# %% [markdown]
# Now a student and a baseline: the same spiking convnet, both started from the teacher's
# weights. The student learns with `samd-nld` (cross-entropy plus SAMD and NLD, see the methods
# guide, [Distillation methods](../methods.html)), the baseline with `none` (cross-entropy
# alone), through one loop with the command's default optimiser and schedule: SGD with Nesterov
# momentum, a one-epoch linear warm-up, then a cosine decay to zero. (The command applies weight
# decay to conv and linear weights only; this short loop applies it to every parameter.)

# %%
torch.manual_seed(0)
student = models.transfer_weights(teacher, models.create("convnet", kind="snn", T=4))
baseline = models.transfer_weights(teacher, models.create("convnet", kind="snn", T=4))
assert torch.equal(student.stem[0].weight, teacher.stem[0].weight)
with torch.no_grad():
    x = normalize(data.to_float(test.images[:8]))
    assert torch.equal(student.eval()(x), student(x))         # no state kept between calls

PY_EPOCHS, BATCH = 2, defaults.batch_size


def train_snn(method, network):
    """Trains ``method`` for PY_EPOCHS epochs; returns the test accuracy after each."""
    optimizer = torch.optim.SGD(method.parameters_to_train(), lr=defaults.lr,
                                momentum=defaults.momentum, nesterov=defaults.nesterov,
                                weight_decay=defaults.weight_decay)
    steps = data.num_batches(train, BATCH, drop_last=True)      # per epoch
    warmup = round(defaults.warmup_epochs * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(warmup_steps=warmup, total_steps=PY_EPOCHS * steps))
    accuracies = []
    for epoch in range(PY_EPOCHS):
        method.train()
        method.start_epoch(epoch, PY_EPOCHS)
        for images, labels in data.batches(train, BATCH, shuffle=True, epoch=epoch,
                                           drop_last=True):
            parts = method(normalize(augment(data.to_float(images))), labels)
            optimizer.zero_grad()
            parts["loss"].backward()
            optimizer.step()
            schedule.step()
        accuracies.append(evaluate.accuracy(network, test, normalize))
        print(f"  epoch {epoch + 1}: loss {parts['loss'].item():.3f} "
              f"({', '.join(f'{k} {v.item():.3f}' for k, v in parts.items() if k != 'loss')}),"
              f" test {100 * accuracies[-1]:.2f}%")
    return accuracies


print("student (samd-nld):")
student_acc = train_snn(create_method("samd-nld", student, teacher), student)
print("baseline (none, cross-entropy only):")
baseline_acc = train_snn(create_method("none", baseline), baseline)

# %% [markdown]
# The teacher stayed frozen: not one of its weights or BatchNorm statistics changed.

# %%
assert not any(p.requires_grad for p in teacher.parameters())
assert all(torch.equal(v, teacher_before[k]) for k, v in teacher.state_dict().items())
print(f"student - baseline after {PY_EPOCHS} epochs: "
      f"{100 * (student_acc[-1] - baseline_acc[-1]):+.2f} points")

# %% [markdown]
# ## Where to go from here
#
# - A real run: `snnrs distill` (the main job; the README's table gives its accuracies and
#   time), or a longer budget such as `snnrs distill --teacher-epochs 30 --epochs 20`.
# - Another method or its options: `snnrs distill --method kd --method-opt alpha=0.5`.
# - A paper's setup on your own CIFAR-10: [the recipes tutorial](03_recipe.html) and
#   the recipes guide ([Paper recipes](../recipes.html)).
# - A trained student on neuromorphic software: [NIR export](05_nir.html).
