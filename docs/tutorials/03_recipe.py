# %% [markdown]
# # A paper recipe on your own CIFAR-10
#
# A recipe is one paper's experiment as data: the network, the neuron, the method, the
# optimiser, the schedule and the augmentation that the authors' code runs, with every known
# way snnrs departs from that code. This page reads what `snnrs recipe show` says about the
# SAMD + NLD recipe, explains its "known differences" section, and runs the recipe on a folder
# of images, the way you would run it on CIFAR-10 stored as image files. To run anywhere, it
# generates a tiny image folder and trains on a smoke-run budget; it prints (but does not run)
# the command for the real data. It takes under a minute on a laptop CPU.

# %% [markdown]
# ## Setup
#
# Everything this page writes goes into one temporary folder. The small `snnrs()` helper runs
# the command line as you would in a shell and prints what it printed.

# %%
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import yaml
from PIL import Image
from snnrs import data
from snnrs.recipes import RECIPES
from snnrs.train import TrainConfig
from snnrs.train.config import QUICK, run_folder  # the smoke run's budget; default folders

work = Path(tempfile.mkdtemp(prefix="snnrs-recipe-"))


def snnrs(*args):
    """Runs `snnrs ARGS`, prints the command and its output; raises if it fails.
    Returns the output."""
    print("$ snnrs", *args)
    run = subprocess.run([sys.executable, "-m", "snnrs", *map(str, args)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(run.stdout)
    if run.returncode:
        raise RuntimeError(f"snnrs {args[0]} failed with exit status {run.returncode}")
    return run.stdout


# %% [markdown]
# ## The recipes
#
# `snnrs recipes` lists them, one line each: the method, the networks and the data.

# %%
listing = snnrs("recipes")
assert sorted(line.split()[0] for line in listing.splitlines()) == sorted(RECIPES)

# %% [markdown]
# ## What a recipe says
#
# `snnrs recipe show NAME` prints everything about one recipe. This page follows
# `samd-nld-cifar10`: SAMD + NLD (Liu et al., AAAI 2026), a spiking ResNet-19 distilled from
# an ANN ResNet-19 on CIFAR-10.

# %%
NAME = "samd-nld-cifar10"
shown = snnrs("recipe", "show", NAME)

# %% [markdown]
# It has five parts:
#
# 1. **The title**: method, networks, time steps and data.
# 2. **source**: the paper and, where the authors published code, the repository and the
#    files each setting was read from. A recipe without code says so and follows the paper.
# 3. **known differences from the source**: every way the run departs from that code, as far
#    as anyone has found (next section).
# 4. **student parameters, teacher parameters**: the sizes of the networks it builds.
# 5. **settings**: every setting the run will use, resolved: the recipe's own values over
#    snnrs's defaults. These are the keys of a `--config` file and, with `-` for `_`, the
#    flags of `snnrs distill`; `--json` prints the same as JSON.
#
# The same is available in Python: `snnrs.recipes.RECIPES` holds each recipe, and
# `TrainConfig.from_sources` resolves its settings as the command does.

# %%
recipe = RECIPES[NAME]
cfg = TrainConfig.from_sources(overrides={"recipe": NAME})
flat = " ".join(shown.split())                       # the printed text, unwrapped
assert all(" ".join(d.split()) in flat for d in recipe.differences)
assert "student parameters" in shown and "teacher parameters" in shown
assert any("no public code" in r.source for r in RECIPES.values())
assert (cfg.model, cfg.teacher_model, cfg.T, cfg.method) == ("resnet19", "resnet19", 4, "samd-nld")
assert cfg.init_from_teacher is False           # the student trains from scratch, as in the code
print(f"{len(recipe.differences)} known differences; budget: {cfg.teacher_epochs} teacher and "
      f"{cfg.epochs} student epochs at batch {cfg.batch_size}")

# %% [markdown]
# ## What the differences mean
#
# A recipe reproduces a reference, so the question a reader has is "how close?". The
# differences answer it, one departure at a time, and each tells you what to do when you
# compare your run's accuracy with the paper's:
#
# - **Choices the paper and code disagree on** (here `T`: the code's config sets `T=1`, the
#   paper's headline result uses `T=4`). The recipe follows the paper's headline result and
#   says so; a flag gives the other (`--T 1`).
# - **What the code did outside the experiment** (here the teacher: the code loads a
#   pre-trained file, the best test epoch of a separate run; the recipe trains its teacher in
#   the same run and distils from its last epoch). To come closer, train a teacher first
#   (`snnrs train-teacher --recipe NAME`) and pass it with `--teacher CKPT`.
# - **Conventions that change a number's meaning** (here the batch: the reference's 128 is per
#   GPU under DDP, snnrs's `--batch-size` is global). To match a run on 4 GPUs, pass
#   `--batch-size 512`.
# - **Small mechanical departures** (the learning rate decays per step rather than per epoch;
#   the last incomplete batch of an epoch is dropped; the teacher's BatchNorm running
#   statistics are left as trained). They are listed so that nothing is hidden.
#
# Flags and `--config` override any setting, and an option flag updates the recipe's options
# instead of replacing them: `--T 2 --model-opt leak=0.25` keeps the rest of the recipe's
# network. A setting you change that way is a difference of your own, which the list does not
# know about (the run's `config.yaml` records it).

# %%
mine = TrainConfig.from_sources(overrides={"recipe": NAME, "T": 2,
                                           "model_options": {"leak": 0.25}})
assert mine.T == 2 and mine.model_options["leak"] == 0.25
assert {k: v for k, v in mine.model_options.items() if k != "leak"} == \
       {k: v for k, v in cfg.model_options.items() if k != "leak"}
print("recipe:", cfg.model_options)
print("yours: ", mine.model_options)

# %% [markdown]
# ## Your CIFAR-10 as a folder of images
#
# The recipe's own dataset is `cifar10`, the python-pickle batches
# (`--data-dir ~/data/cifar-10-batches-py`). Images stored as files are read from a folder with
# one sub-folder per class in each split:
#
# ```text
# DIR/train/<class>/*.png   (or .jpg, .bmp, .webp)
# DIR/test/<class>/*.png    (or DIR/val/...)
# ```
#
# Two datasets read that layout:
#
# - `cifar10-folder` is CIFAR-10 itself stored as files: the class folders are named as
#   CIFAR-10 names its classes (`airplane` ... `truck`) and labelled in its order, every image
#   is 32x32 RGB, and it trains like `cifar10` (random crops with padding 4, flips). Use it for
#   a JPEG or PNG copy of CIFAR-10.
# - `folder` is any image folder: the classes are the sorted folder names, all images must
#   have one size unless `--dataset-opt image_size=32` resizes them, and its augmentation is
#   flips only.
#
# Either way the recipe's other settings (network, neuron, method, optimiser, AutoAugment,
# RandomErasing, its normalisation constants) still apply.

# %%
augment = {name: dict(data.DATASETS[name].augment) for name in ("cifar10-folder", "folder")}
print(augment)
assert augment["cifar10-folder"] == dict(data.DATASETS["cifar10"].augment)
assert augment["cifar10-folder"] == {"crop_padding": 4, "flip": True}
assert augment["folder"] == {"crop_padding": 0, "flip": True}
as_files = TrainConfig.from_sources(overrides={"recipe": NAME, "dataset": "cifar10-folder"})
assert as_files.normalize_mean == cfg.normalize_mean and as_files.autoaugment == cfg.autoaugment

# %% [markdown]
# ## A folder to run on
#
# If the environment variable `SNNRS_CIFAR10_DIR` names a CIFAR-10 image folder (in the layout
# above), this page copies 2 training images and 1 test image of each class from it and runs
# on them as `cifar10-folder`. Otherwise it writes a tiny dataset in the same layout: two
# classes, `stripes` (a sinusoidal grating at a random angle, in a random colour) and `spots`
# (a few blurred dots), 20 training and 8 test images each, at 16x16 pixels to keep the page
# fast (CIFAR-10's are 32x32), read as `folder`.

# %%
source = os.environ.get("SNNRS_CIFAR10_DIR")
rng = np.random.default_rng(0)


def stripes(size):
    angle, freq = rng.uniform(0, np.pi), rng.uniform(0.4, 0.9)
    y, x = np.mgrid[:size, :size]
    wave = 0.5 + 0.5 * np.sin(freq * (x * np.cos(angle) + y * np.sin(angle)))
    return wave[..., None] * rng.uniform(0.3, 1.0, 3)


def spots(size):
    y, x = np.mgrid[:size, :size]
    image = np.zeros((size, size))
    for cy, cx in rng.uniform(2, size - 2, (rng.integers(2, 5), 2)):
        image += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 4.0)
    return np.clip(image, 0, 1)[..., None] * rng.uniform(0.3, 1.0, 3)


if source:   # a few images of each class, copied in the same layout
    data_dir, dataset = work / "cifar10", "cifar10-folder"
    for split, count in (("train", 2), ("test", 1)):
        split_dir = Path(source, split if Path(source, split).is_dir() else "val")
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            (data_dir / split / class_dir.name).mkdir(parents=True)
            for file in sorted(class_dir.iterdir())[:count]:
                shutil.copy(file, data_dir / split / class_dir.name / file.name)
    limits = ["--train-limit", 20, "--test-limit", 10, "--batch-size", 10]
else:
    data_dir, dataset = work / "images", "folder"
    for split, count in (("train", 20), ("test", 8)):
        for name, draw in (("stripes", stripes), ("spots", spots)):
            (data_dir / split / name).mkdir(parents=True)
            for i in range(count):
                noisy = draw(16) + rng.normal(0, 0.05, (16, 16, 3))
                pixels = (255 * np.clip(noisy, 0, 1)).astype(np.uint8)
                Image.fromarray(pixels).save(data_dir / split / name / f"{i:03d}.png")
    limits = ["--train-limit", 32, "--test-limit", 16, "--batch-size", 16]
print("images from:", data_dir, f"(read as {dataset})")

# %% [markdown]
# snnrs's reader gives the images as `uint8` tensors; here are some of each class.

# %%
splits = data.load(dataset, data_dir, seed=0)
print(f"{len(splits.train)} training and {len(splits.test)} test images, "
      f"classes {splits.classes}, {splits.in_channels} channels, {splits.image_size} pixels")
assert splits.in_channels == 3 and len(splits.classes) >= 2
if not source:
    assert (len(splits.train), len(splits.test)) == (40, 16)

shown_classes = splits.classes[:4]
fig, axes = plt.subplots(len(shown_classes), 6, figsize=(7, 1.3 * len(shown_classes)),
                         squeeze=False)
for row, name in zip(axes, shown_classes, strict=True):
    label = splits.classes.index(name)
    picks = (splits.train.labels == label).nonzero().flatten()[:6]
    for ax, i in zip(row, picks.tolist(), strict=False):
        ax.imshow(splits.train.images[i].permute(1, 2, 0).numpy())
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(name)
fig.suptitle(f"Training images ({splits.image_size[0]}x{splits.image_size[1]} pixels)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The recipe on the folder, as a smoke run
#
# `--quick` replaces the recipe's budget (its 300 teacher and 400 student epochs) with a smoke
# run's: 1 epoch each, at most 256 training and 128 test images, batch 64, no noise
# evaluation. It checks that the recipe, the data and the machine work together before a long
# run. The flags after it still win: this folder holds fewer images than a smoke run takes, so
# `--train-limit` and `--test-limit` ask for fewer (class-balanced subsets), and a smaller
# `--batch-size` gives two training steps per epoch (snnrs drops an epoch's last incomplete
# batch).

# %%
assert (cfg.teacher_epochs, cfg.epochs) == (300, 400)
assert QUICK == {"teacher_epochs": 1, "epochs": 1, "train_limit": 256, "test_limit": 128,
                 "batch_size": 64, "noise": False}
assert limits[1] // limits[5] == 2                     # training images / batch: two steps
run_dir = work / "run"
output = snnrs("distill", "--recipe", NAME, "--dataset", dataset, "--data-dir", data_dir,
               "--quick", *limits, "--out", run_dir)

# %% [markdown]
# The accuracies of a smoke run are not results (its last line says so): one epoch of a
# ResNet-19 on a few dozen images. What to check is that the run used the recipe. Its
# `config.yaml` holds every resolved setting: the recipe's network, neuron, method, optimiser,
# augmentation and normalisation, with the smoke run's budget and the flags on top.

# %%
assert output.rstrip().splitlines()[-1].startswith("Smoke run (--quick)")
config = yaml.safe_load((run_dir / "config.yaml").read_text())
summary = json.loads((run_dir / "summary.json").read_text())
for key in ("recipe", "dataset", "model", "T", "method", "method_options", "init_from_teacher",
            "teacher_norm", "autoaugment", "random_erasing", "normalize_mean", "epochs",
            "teacher_epochs", "batch_size", "quick"):
    print(f"{key:18} {config[key]}")
assert config["recipe"] == summary["recipe"] == NAME and config["dataset"] == dataset
for key in ("model", "model_options", "method", "method_options", "teacher_norm",
            "autoaugment", "random_erasing", "normalize_mean", "normalize_std", "momentum",
            "nesterov", "weight_decay", "weight_decay_on"):
    assert config[key] == getattr(cfg, key), key
assert (config["epochs"], config["teacher_epochs"], config["quick"]) == (1, 1, True)
assert summary["smoke_run"] is True

# %% [markdown]
# The report names the recipe in its first paragraph.

# %%
report = (run_dir / "report.md").read_text()
assert f"recipe `{NAME}`" in report
print(textwrap.fill(report.split("\n\n")[2], 100))

# %% [markdown]
# ## On the real CIFAR-10
#
# These are the commands to run on your copy of CIFAR-10 (printed here, not run: the recipe's
# full budget is meant for a GPU). First a smoke run, which checks your folder, then the
# recipe itself.

# %%
commands = [
    f"snnrs distill --recipe {NAME} --dataset cifar10-folder --data-dir ~/data/cifar10 --quick",
    f"snnrs distill --recipe {NAME} --dataset cifar10-folder --data-dir ~/data/cifar10",
    f"snnrs distill --recipe {NAME} --data-dir ~/data/cifar-10-batches-py   # the pickles",
    "snnrs distill --dataset folder --data-dir ~/data/my-images --dataset-opt image_size=32 "
    f"--recipe {NAME}   # any image folder",
]
print("\n".join(commands))
assert run_folder("distill", {"recipe": NAME}) == Path("runs", NAME)
print(f"\nThe recipe's budget: {cfg.teacher_epochs} teacher epochs, then {cfg.epochs} epochs "
      f"each for the student and the baseline, at batch {cfg.batch_size}; its run folder is "
      f"runs/{NAME} unless --out names another.")

# %% [markdown]
# A few things to know before the long run:
#
# - The run writes a checkpoint after every epoch; `--resume` (with the same `--out`)
#   continues a stopped run exactly.
# - `--teacher CKPT` skips the teacher's training, e.g. with a teacher from
#   `snnrs train-teacher --recipe samd-nld-cifar10`, as the reference code loads a
#   pre-trained one.
# - The fp16 recipes (`joint-asnn-cifar10`, `joint-asnn-cifar100`, `samd-nld-cifar100`:
#   float16 autocast with a gradient scaler, as their code trains) need CUDA; on a CPU pass
#   `--amp off`.
# - `report.md` gives each network's last and best epoch. The papers report the best test
#   epoch, which is optimistic; the last is the fair figure. The recipes guide
#   ([Paper recipes](../recipes.html)) says what each recipe is built from.

# %%
fp16 = {n for n in RECIPES if TrainConfig.from_sources(overrides={"recipe": n}).amp == "fp16"}
assert fp16 == {"joint-asnn-cifar10", "joint-asnn-cifar100", "samd-nld-cifar100"}
