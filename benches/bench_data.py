#!/usr/bin/env python
"""Does the real-CIFAR-10 pipeline keep a CPU training step fed?

Reads the extracted CIFAR-10 JPEG set (``cifar10-jpeg.tar.gz`` of the shared data folder,
``train/<class>/*.jpg`` and ``test/<class>/*.jpg``) with ``--dataset cifar10-folder``'s loader
and measures, in one process:

- decode: ``data.load("cifar10-folder", DIR)``, all 60,000 JPEGs into uint8 tensors: wall and
  CPU seconds, images per second, the tensors' size and the rise of the process's resident
  high-water mark (``ru_maxrss``) over its value before the load;
- the train split's per-channel statistics (the normalisation, computed once per run);
- feeding: one shuffled epoch of ``data.batches`` (index gathers of ``--batch`` images), each
  batch through ``to_float`` and the trainer's transform for the dataset (random crop with
  padding 4, flip, normalisation: ``jobs.train_transform``), as the training loop does, with
  torch's threads and with one (its small ops suffer most when other processes share the
  cores);
- a training step (forward, loss, backward) of each ``--models`` teacher (ANN) and of its
  spiking student (SAMD + NLD, T=4) on ``--batch`` random images: the step that is fed.

Feeding and steps are the fastest of ``--repeats`` after a warm-up (the least disturbed by
other processes on a shared machine). Rates are in images per second; a CPU epoch of the
50,000 training images takes about 50,000 divided by the feeding rate plus 50,000 divided by
the step's. Without ``--data`` the archive is extracted to a temporary folder first (not
timed).

Example:
    python benches/bench_data.py
    python benches/bench_data.py --data /tmp/cifar10-jpeg --no-write
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from bench_neurons import machine, versions
from results import publish, table_head
from snnrs import data
from snnrs.distill import create_method
from snnrs.train import TrainConfig, jobs

START, END = "<!-- data-bench:start -->", "<!-- data-bench:end -->"
ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"
COLUMNS = ("stage", "work", "wall s", "CPU s", "images / s", "epoch of 50,000 (s)")
MB = 2.0**20


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """``fn()``'s result, wall seconds and CPU seconds (all threads of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """The fastest of ``repeats`` calls of ``fn`` after a warm-up: wall and CPU seconds (the
    fastest is the least disturbed by other processes on a shared machine)."""
    fn()
    return min((timed(fn)[1:] for _ in range(repeats)), key=lambda t: t[0])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass
class Stage:
    """One measured stage: ``images`` processed in ``wall`` (and ``cpu``) seconds, once per
    run or once per epoch of the 50,000 training images."""

    name: str
    work: str
    images: int
    wall: float
    cpu: float
    per_epoch: bool = True

    @property
    def epoch_seconds(self) -> float:
        return 50_000 * self.wall / self.images

    def row(self) -> str:
        epoch = f"{self.epoch_seconds:,.1f}" if self.per_epoch else "once per run"
        return (f"| {self.name} | {self.work} | {self.wall:.3f} | {self.cpu:.3f} | "
                f"{self.images / self.wall:,.0f} | {epoch} |")


def training_step(cfg: TrainConfig, kind: str, batch: int) -> Callable[[], None]:
    """One training step (forward, loss, backward) of ``cfg``'s teacher (``kind="ann"``,
    cross-entropy) or its student (``"snn"``, ``cfg.method``) on a random CIFAR batch."""
    torch.manual_seed(0)
    teacher = jobs.network_spec(cfg, "ann", 10, 3).build()
    if kind == "ann":
        method = create_method("none", teacher).train()
    else:
        student = jobs.network_spec(cfg, "snn", 10, 3).build()
        method = create_method(cfg.method, student, teacher.eval(), **cfg.method_options).train()
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

    def step() -> None:
        method.zero_grad(set_to_none=True)
        method(x, y)["loss"].backward()

    return step


def measure(root: Path, args: argparse.Namespace) -> tuple[dict[str, Stage], dict[str, float]]:
    stages, facts = {}, {}
    before = peak_rss_mb()
    splits, wall, cpu = timed(lambda: data.load("cifar10-folder", root))
    n = len(splits.train) + len(splits.test)
    facts["tensor_mb"] = (splits.train.images.numel() + splits.test.images.numel()) / MB
    facts["rss_rise_mb"] = peak_rss_mb() - before
    stages["decode"] = Stage("decode (load)", f"{n:,} JPEGs -> uint8 [N, 3, 32, 32]", n, wall,
                             cpu, per_epoch=False)
    stats, wall, cpu = timed(lambda: data.normalization(splits))
    stages["stats"] = Stage("normalisation statistics", "per channel, train split",
                            len(splits.train), wall, cpu, per_epoch=False)

    transform = jobs.train_transform(TrainConfig(dataset="cifar10-folder"), "cifar10-folder",
                                     data.Normalize(*stats))
    g = torch.Generator().manual_seed(0)

    def feed_epoch() -> None:
        for images, _ in data.batches(splits.train, args.batch, shuffle=True):
            transform(data.to_float(images), g)

    threads = torch.get_num_threads()
    for n in sorted({threads, 1}, reverse=True):  # 1: free of other processes' contention
        torch.set_num_threads(n)
        stages[f"feed{n}"] = Stage(f"feeding: batches + crop 4 + flip + normalise, {n} "
                                   "thread(s)", f"one shuffled epoch, batch {args.batch}",
                                   len(splits.train), *best_of(feed_epoch, args.repeats))
    torch.set_num_threads(threads)
    for model in args.models:
        cfg = TrainConfig(dataset="cifar10-folder", model=model)
        for kind, what in (("ann", f"{model} teacher (ANN) step"),
                           ("snn", f"{model} student step ({cfg.method}, T={cfg.T})")):
            stages[f"{model}-{kind}"] = Stage(
                what, f"batch {args.batch}, forward + backward", args.batch,
                *best_of(training_step(cfg, kind, args.batch), args.repeats))
    return stages, facts


def conclusion(stages: dict[str, Stage]) -> str:
    """What bounds a CPU epoch, and whether decoding is worth a cache, from the measurements."""
    feed = min((s for k, s in stages.items() if k.startswith("feed")),
               key=lambda s: s.epoch_seconds)
    fastest = min((s for k, s in stages.items() if k.endswith(("-ann", "-snn"))),
                  key=lambda s: s.epoch_seconds)
    decode = stages["decode"]
    cache = ("below the 20 s at which caching the decoded array on disk would pay, so nothing "
             "is cached" if decode.cpu < 20 else "over 20 s: caching the decoded array would pay")
    return (f"Feeding an epoch takes {feed.epoch_seconds:.1f} s at best, "
            f"{feed.epoch_seconds / fastest.epoch_seconds:.1%} of the fastest training step's "
            f"epoch ({fastest.name}: {fastest.epoch_seconds:,.0f} s): the training step bounds "
            "a CPU epoch, and the batches are gathered and augmented in the training process "
            f"with no loader worker. Decoding is paid once per run: {decode.wall:.0f} s "
            f"({decode.cpu:.0f} s of CPU), {cache}. Other processes shared the two cores (the "
            "load average above), and torch's small ops on two threads suffer most from that: "
            "hence the feeding row with one thread.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="extracted cifar10-jpeg folder (default: extract "
                   f"{ARCHIVE} to a temporary folder)")
    p.add_argument("--batch", type=int, default=64, help="images per batch (default: the "
                   "trainer's)")
    p.add_argument("--repeats", type=int, default=3, help="epochs of feeding and training "
                   "steps timed; the fastest counts")
    p.add_argument("--models", nargs="+", default=["convnet", "resnet20"],
                   help="the networks of the training steps")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = p.parse_args(argv)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            if not ARCHIVE.is_file():
                p.error(f"no --data and no {ARCHIVE}")
            with tarfile.open(ARCHIVE) as tar:
                tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter")
                                       else {}))
            root = Path(tmp)
        stages, facts = measure(root, args)
    command = "python benches/bench_data.py " + shlex.join(argv or sys.argv[1:])
    section = "\n".join([
        "## Real CIFAR-10 data pipeline (CPU)", "",
        f"`{command.strip()}` on {machine()}; {versions([])}. Load average "
        f"{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.", "",
        "All of CIFAR-10 as JPEG (the shared data folder's `cifar10-jpeg.tar.gz`, extracted) "
        "read by `--dataset cifar10-folder`: decoded once at load into uint8 tensors "
        f"({facts['tensor_mb']:.0f} MB for 60,000 images; the process's resident high-water "
        f"mark rose {facts['rss_rise_mb']:.0f} MB during the load). Feeding: one epoch of "
        "shuffled index-gathered batches through the trainer's transform for the dataset, "
        "with torch's threads and with one; "
        "training steps on random CIFAR-shaped batches; both the fastest of "
        f"{args.repeats} after a warm-up. CPU s: all threads of the process.", "",
        table_head(COLUMNS), *(s.row() for s in stages.values()), "",
        conclusion(stages)])
    publish(START, END, section, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
