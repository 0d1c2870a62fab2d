# %% [markdown]
# # Event-camera data: from N-MNIST recordings to a trained SNN
#
# An event camera does not take pictures: each pixel reports, on its own, when its brightness
# changes. This page reads N-MNIST recordings with snnrs's reader, looks at what an event stream
# holds, integrates it into frames (by number of events and by time), plots the frames, and
# trains a spiking network on them with `snnrs distill`. It runs in under a minute on a laptop
# CPU, on generated recordings or on the real N-MNIST if you have it.

# %% [markdown]
# ## Setup
#
# Everything this page writes goes into one temporary folder, including snnrs's on-disk cache
# of integrated frames (`SNNRS_CACHE`, by default `~/.cache/snnrs`). The small `snnrs()`
# helper runs the command line as you would in a shell and prints what it printed.

# %%
import atexit
import inspect
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from snnrs import data
from snnrs.data.events import read_atis_bin, to_frames, to_frames_by_duration

work = Path(tempfile.mkdtemp(prefix="snnrs-events-"))
atexit.register(shutil.rmtree, work, ignore_errors=True)   # removed when Python exits
os.environ["SNNRS_CACHE"] = str(work / "cache")


def snnrs(*args):
    """Runs `snnrs ARGS`, prints the command and its output; raises if it fails."""
    print("$ snnrs", *args)
    run = subprocess.run([sys.executable, "-m", "snnrs", *map(str, args)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(run.stdout)
    if run.returncode:
        raise RuntimeError(f"snnrs {args[0]} failed with exit status {run.returncode}")


# %% [markdown]
# ## The recordings
#
# [N-MNIST](https://www.garrickorchard.com/datasets/n-mnist) (Orchard et al., 2015) was made by
# moving an ATIS event camera in three quick saccades in front of each MNIST digit. The release
# unpacks to `Train/<digit>/NNNNN.bin` and `Test/<digit>/NNNNN.bin`, one file per recording of
# a 34 x 34 pixel sensor, and that folder is what `snnrs distill --dataset n-mnist --data-dir`
# reads.
#
# If the environment variable `SNNRS_NMNIST_DIR` names such a folder, this page copies a few
# recordings of each digit from it. Otherwise it **generates** recordings in the same file
# format, so that it runs anywhere without a download: the page's numbers then describe those
# generated recordings, not N-MNIST. To run it on the real data:
#
# ```bash
# SNNRS_NMNIST_DIR=~/data/N-MNIST python 04_events.py
# ```

# %%
PER_DIGIT = {"Train": 19, "Test": 9}   # recordings of each digit per split on this page
data_dir = work / "n-mnist"
source = os.environ.get("SNNRS_NMNIST_DIR")
print("recordings from:", source or "generated below (set SNNRS_NMNIST_DIR for real N-MNIST)")

# %% [markdown]
# ### Writing recordings in N-MNIST's format
#
# Each event is 5 bytes (40 bits): x (8 bits), y (8 bits), the polarity (1 bit: 1 for ON, a
# pixel getting brighter, 0 for OFF) and the timestamp in microseconds (23 bits), stored
# big-endian. `atis_bytes` packs events that way.
#
# The generated recordings come from a toy event camera. It takes a digit of the MNIST subset
# that ships with snnrs, moves it by up to 6 pixels along a triangle in three 100 ms saccades
# (as N-MNIST's camera moved, slowing down at each turn), samples the 34 x 34 view every
# millisecond, and makes a pixel fire an event each time its log brightness crosses one of a
# ladder of levels: ON going up, OFF going down. Real sensors add noise, jitter and a
# refractory period; this one only adds jitter to the time stamps.

# %%
def atis_bytes(x, y, p, t):
    """N-MNIST's 5-byte records: x, y, then polarity (top bit) and the 23-bit timestamp."""
    x, y, p, t = (np.asarray(a, dtype=np.int64) for a in (x, y, p, t))
    assert t.max() < 2**23, "23 bits of microseconds: about 8.4 s"
    records = np.stack([x, y, p << 7 | t >> 16, t >> 8 & 0xFF, t & 0xFF], axis=1)
    return records.astype(np.uint8).tobytes()


SIZE, SHIFT, STEP_US, LEVEL = 34, 6, 1000, 0.5
corners = np.array([[0, 0], [SHIFT / 2, SHIFT], [SHIFT, 0], [0, 0]])      # (dx, dy), pixels
# 100 ms per saccade, slowing down into each turn: (1 - cos(pi s)) / 2 for s from 0 to 1
along = (1 - np.cos(np.pi * np.linspace(0, 1, 100, endpoint=False)[:, None])) / 2
trajectory = np.concatenate([a + (b - a) * along for a, b in itertools.pairwise(corners)]
                            + [corners[-1:]])
# Bilinear sampling of the moving digit: the same four source pixels and weights for every digit.
sx = np.arange(SIZE)[None, None, :] - trajectory[:, 0, None, None]
sy = np.arange(SIZE)[None, :, None] - trajectory[:, 1, None, None]
x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
fx, fy = sx - x0, sy - y0
taps = [(np.clip(y0 + dy + 1, 0, 29) * 30 + np.clip(x0 + dx + 1, 0, 29), wy * wx)
        for dy, wy in ((0, 1 - fy), (1, fy)) for dx, wx in ((0, 1 - fx), (1, fx))]


def record(digit, rng):
    """Events of the toy camera watching a 28 x 28 uint8 digit: x, y, p, t (microseconds)."""
    padded = np.zeros((30, 30))
    padded[1:29, 1:29] = digit / 255
    view = sum(weight * padded.ravel()[index] for index, weight in taps)   # [time, 34, 34]
    level = np.floor(np.log(0.1 + view) / LEVEL)
    crossed = np.diff(level, axis=0).astype(np.int64)       # level crossings per pixel and ms
    k, y, x = np.nonzero(crossed)
    n = np.abs(crossed[k, y, x])                            # one event per level crossed
    p = (crossed[k, y, x] > 0).astype(np.int64)
    k, y, x, p = (np.repeat(a, n) for a in (k, y, x, p))
    t = (k + 1) * STEP_US + rng.integers(0, STEP_US, k.size)
    order = np.argsort(t, kind="stable")
    return x[order], y[order], p[order], t[order]


# %% [markdown]
# Now fill `data_dir` in the release layout: copied recordings, or generated ones made from
# the built-in MNIST subset's training and test digits.

# %%
if source:
    for split, count in PER_DIGIT.items():
        for digit in range(10):
            folder = data_dir / split / str(digit)
            folder.mkdir(parents=True)
            for recording in sorted(Path(source, split, str(digit)).glob("*.bin"))[:count]:
                shutil.copy(recording, folder)
else:
    rng = np.random.default_rng(0)
    mnist = data.load("mnist")
    for split, images in (("Train", mnist.train), ("Test", mnist.test)):
        for digit in range(10):
            folder = data_dir / split / str(digit)
            folder.mkdir(parents=True)
            chosen = images.images[images.labels == digit][:PER_DIGIT[split], 0].numpy()
            for i, image in enumerate(chosen):
                (folder / f"{i:05d}.bin").write_bytes(atis_bytes(*record(image, rng)))

counts = {split: len(list((data_dir / split).glob("*/*.bin"))) for split in PER_DIGIT}
print("recordings:", counts)
assert all(counts[split] > 0 for split in PER_DIGIT)

# %% [markdown]
# ## One recording: an event stream
#
# `snnrs.data.events.read_atis_bin` reads one file into a dict of four equally long arrays,
# with the values (and uint32 dtype) that SpikingJelly's reader gives: `x` and `y` (the pixel:
# column and row), `p` (polarity: 1 ON, 0 OFF) and `t` (microseconds).

# %%
first = sorted((data_dir / "Train" / "0").glob("*.bin"))[0]
events = read_atis_bin(first)
x, y, p, t = events["x"], events["y"], events["p"], events["t"]
assert sorted(events) == ["p", "t", "x", "y"]
assert all(a.dtype == np.uint32 and a.shape == t.shape for a in (x, y, p, t))
assert first.stat().st_size == 5 * t.size                     # 5 bytes per event
assert x.max() < 34 and y.max() < 34 and set(np.unique(p)) <= {0, 1}

duration_ms = (int(t[-1]) - int(t[0])) / 1000
print(f"{first.relative_to(data_dir)}: {t.size} events over {duration_ms:.1f} ms, "
      f"{p.mean():.0%} ON, x in [{x.min()}, {x.max()}], y in [{y.min()}, {y.max()}]")
print("the first 5 events:\n    t (us)   x   y  p")
for i in range(5):
    print(f"{t[i]:>10} {x[i]:>3} {y[i]:>3}  {p[i]}")

# %% [markdown]
# 23 bits of microseconds last 8.4 s. For longer recordings, the loader of N-MNIST's authors
# knows a marker record, one with `y == 240`, that adds `2**13` microseconds to its own and every
# later timestamp; `read_atis_bin` does the same and drops the markers (`overflow=False` keeps
# them as events, as SpikingJelly's reader does). N-MNIST's recordings of about 300 ms hold
# none.

# %%
marked = work / "overflow.bin"
marked.write_bytes(atis_bytes(x=[1, 0, 2], y=[2, 240, 3], p=[1, 0, 0], t=[5, 0, 7]))
assert read_atis_bin(marked)["t"].tolist() == [5, 7 + 2**13]
assert read_atis_bin(marked, overflow=False)["y"].tolist() == [2, 240, 3]
assert read_atis_bin(first, overflow=False)["y"].max() < 240   # no markers in this recording

# %% [markdown]
# An event stream has no frames: it is a list of changes in time order. Counting the events of
# each pixel shows the digit's edges; counting them per 5 ms shows how fast the scene changed.

# %%
assert np.all(np.diff(t.astype(np.int64)) >= 0)              # sorted by time

fig, (ax_xy, ax_t) = plt.subplots(1, 2, figsize=(11, 3.8), width_ratios=[1, 2])
per_pixel = np.zeros((34, 34))
np.add.at(per_pixel, (y, x), 1)
shown = ax_xy.imshow(per_pixel, cmap="magma")
fig.colorbar(shown, ax=ax_xy, label="events")
ax_xy.set(title="events per pixel", xlabel="x (pixel)", ylabel="y (pixel)")
bins = np.arange(int(t[0]), int(t[-1]) + 5000, 5000)
for polarity, colour, name in ((1, "tab:red", "ON"), (0, "tab:blue", "OFF")):
    ax_t.hist(t[p == polarity] / 1000, bins=bins / 1000, color=colour, alpha=0.6, label=name)
ax_t.set(title="events per 5 ms", xlabel="time (ms)", ylabel="events")
ax_t.legend()
fig.suptitle(f"one recording: {first.relative_to(data_dir)}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## From events to frames
#
# A network built for frames needs the stream cut into `T` frames `[T, 2, H, W]`: channel 0
# counts each pixel's OFF events in that slice, channel 1 its ON events. snnrs integrates
# exactly as SpikingJelly does, in two ways (`split_by`):
#
# - `"number"`: every frame gets the same number of events, `N // T` (the last one the rest);
#   frames are short when the scene moves fast and long when it is still;
# - `"time"`: every frame covers the same time, `(t[-1] - t[0]) // T` (the last one up to the
#   end); the number of events varies.
#
# `to_frames_by_duration` instead fixes the duration of a frame and lets `T` follow from the
# recording's length.

# %%
T = 10
by_number = to_frames(events, H=34, W=34, frames_number=T, split_by="number")
by_time = to_frames(events, H=34, W=34, frames_number=T, split_by="time")
assert by_number.shape == by_time.shape == (T, 2, 34, 34) and by_number.dtype == np.float32
assert by_number.sum() == by_time.sum() == t.size            # every event counted once

per_frame_number = by_number.sum(axis=(1, 2, 3)).astype(int)
per_frame_time = by_time.sum(axis=(1, 2, 3)).astype(int)
assert (per_frame_number[:-1] == t.size // T).all()
assert per_frame_time.min() < t.size // T < per_frame_time.max()   # time slices: counts vary
dt = (int(t[-1]) - int(t[0])) // T                             # the time split's slice
edges = np.searchsorted(t, int(t[0]) + dt * np.arange(1, T))
assert (per_frame_time == np.diff(edges, prepend=0, append=t.size)).all()
assert (by_number[:, 1].sum() == (p == 1).sum())              # channel 1 holds the ON events
print("events per frame, split_by='number':", per_frame_number.tolist())
print("events per frame, split_by='time':  ", per_frame_time.tolist())

fifty_ms = to_frames_by_duration(events, H=34, W=34, duration=50_000)
assert len(fifty_ms) == -(-(int(t[-1]) - int(t[0])) // 50_000)
print(f"frames of 50 ms each: {len(fifty_ms)} for {duration_ms:.1f} ms")

# %% [markdown]
# Each frame below shows ON events in red and OFF events in blue (brighter: more events). With
# `split_by="number"` the frames look alike but cover different stretches of time; with
# `split_by="time"` each covers the same stretch and the quiet moments, when the camera turns
# between saccades, give faint frames.

# %%
def colour(frame, top):
    """An RGB image of one frame [2, H, W]: ON in red, OFF in blue, scaled by `top`."""
    rgb = np.zeros((*frame.shape[1:], 3))
    rgb[..., 0] = frame[1] / top
    rgb[..., 2] = frame[0] / top
    return rgb.clip(0, 1)


def frame_spans(per_frame):
    """(start, end) in ms of the events that each frame holds."""
    ends = np.cumsum(per_frame)
    return [(t[e - n] / 1000, t[e - 1] / 1000) if n else (np.nan, np.nan)
            for n, e in zip(per_frame, ends, strict=True)]


fig, axes = plt.subplots(2, T, figsize=(1.6 * T, 4.2), sharex=True, sharey=True)
for row, (frames, per_frame, name) in enumerate(
        ((by_number, per_frame_number, "number"), (by_time, per_frame_time, "time"))):
    top = np.percentile(frames[frames > 0], 95)
    for i, (ax, (start, end)) in enumerate(zip(axes[row], frame_spans(per_frame), strict=True)):
        ax.imshow(colour(frames[i], top))
        ax.set_title(f"{start:.0f}-{end:.0f} ms\n{per_frame[i]} ev", fontsize=8)
        ax.set_xticks([0, 33])
        ax.set_yticks([0, 33])
    axes[row, 0].set_ylabel(f"split_by='{name}'\ny (pixel)")
for ax in axes[1]:
    ax.set_xlabel("x (pixel)")
fig.suptitle(f"{T} frames of one recording (red: ON events, blue: OFF events)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What the command line trains on
#
# The `n-mnist` dataset does the same for every recording: `data.load("n-mnist", DIR, T=T)`
# returns frames `[N, T, 2, 34, 34]`, stored as uint8 counts (a count above 255 would be kept
# as 255), and caches them on disk, keyed on `T`, `split_by` and each file's content. Its
# option `split_by` (`"number"` by default; `--dataset-opt split_by=time` on the command line)
# picks the integration. A spiking network then takes one frame per time step; an ANN teacher
# sees the frames' mean over time.

# %%
splits = data.load("n-mnist", data_dir, T=T)
images = splits.train.images
print("train:", tuple(images.shape), images.dtype, "  test:", tuple(splits.test.images.shape))
assert tuple(images.shape) == (counts["Train"], T, 2, 34, 34) and images.dtype == torch.uint8
assert len(splits.test) == counts["Test"] and splits.classes == tuple("0123456789")
same = torch.from_numpy(to_frames(events, 34, 34, T, split_by="number")).clamp(max=255)
assert torch.equal(images[0].float(), same)                  # its first sample is `first`
assert any((work / "cache").iterdir())                        # the frames are cached
options = inspect.signature(data.DATASETS["n-mnist"].loader).parameters
assert options["split_by"].default == "number"

# %% [markdown]
# ## Training on frames
#
# `snnrs distill --dataset n-mnist --data-dir DIR --T 10` trains an ANN teacher, distils a
# spiking student from it (SAMD + NLD by default) and trains a plain SNN baseline, here with
# the smoke-run budget of `--quick`: one epoch each. `--quick` also limits the data to 256
# training and 128 test recordings, more than this page holds, so `--train-limit` and
# `--test-limit` say how many to use (all of them). Its accuracies show that the run works, not
# what an SNN reaches on N-MNIST.

# %%
run_dir = work / "run"
snnrs("distill", "--dataset", "n-mnist", "--data-dir", data_dir, "--T", T, "--quick",
      "--train-limit", counts["Train"], "--test-limit", counts["Test"], "--out", run_dir)

# %% [markdown]
# The run folder holds the checkpoints, metrics, plots and report ([The run
# folder](../run-folder.html)), and its `summary.json` records what ran. Accuracy under pixel
# noise is not measured for event counts (`noise_accuracy` is `null`).

# %%
summary = json.loads((run_dir / "summary.json").read_text())
assert summary["dataset"] == "n-mnist" and summary["T"] == T and summary["smoke_run"]
assert summary["train_images"] == counts["Train"] and summary["test_images"] == counts["Test"]
assert summary["noise_accuracy"] is None
assert (run_dir / "checkpoints" / "student.pt").is_file() and (run_dir / "report.md").is_file()
print("run folder:", ", ".join(sorted(path.name for path in run_dir.iterdir())))
print(f"student: T={summary['T']}, firing rate {summary['firing_rate']:.4f} "
      f"(spikes per neuron and time step)")

# %% [markdown]
# ## Next steps
#
# - A real run on the full N-MNIST: `snnrs distill --dataset n-mnist --data-dir ~/data/N-MNIST
#   --T 10` (drop `--quick`). The first run integrates and caches all 70,000 recordings; later
#   runs with the same `T` and `split_by` read the cache.
# - Frames by time instead of by number: `--dataset-opt split_by=time`.
# - CIFAR10-DVS and DVS128 Gesture take the same flags: `--dataset cifar10-dvs` (the ten class
#   folders of `.aedat` files, frames resized to `--dataset-opt size=48`) and `--dataset
#   dvs128-gesture` (the `DvsGesture` folder). [The command line](../cli.html) lists their
#   options.
