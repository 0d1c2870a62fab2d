#!/usr/bin/env python
"""Does augmentation bottleneck a training step? The recipes' per-image policies against one
training step of their networks, per image, on the CPU.

For each recipe with a policy, the trainer's transform (crop and flip, AutoAugment, normalise,
Cutout or RandomErasing, drawn per image) runs on a batch of CIFAR-shaped ``uint8`` images, and
one training step (forward and backward of the recipe's method at its T) runs on a smaller
batch of the same images. Both are reported per image; the transform runs on the training
device in the same process, so its share of a step is what it costs.

Example:
    python benches/bench_augment.py
    python benches/bench_augment.py --recipes rate-bp-cifar10 --step-batch 4 --no-write
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time

import torch
from bench_neurons import machine, versions
from results import publish, table_head
from snnrs import data
from snnrs.distill import create_method
from snnrs.train import TrainConfig, jobs

START, END = "<!-- augment-bench:start -->", "<!-- augment-bench:end -->"
COLUMNS = ("recipe", "transform", "transform ms / image", "training step ms / image",
           "transform share of a step")


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(name: str, args: argparse.Namespace) -> tuple[str, float, float]:
    cfg = TrainConfig.from_sources(overrides={"recipe": name})
    images = torch.randint(0, 256, (args.batch, 3, 32, 32), dtype=torch.uint8)
    normalize = data.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
    transform = jobs.train_transform(cfg, cfg.dataset, normalize)
    g = torch.Generator().manual_seed(0)
    augment = median_seconds(lambda: transform(data.to_float(images), g), args.repeats)
    student = jobs.network_spec(cfg, "snn", 10, 3).build()
    teacher = (jobs.network_spec(cfg, "ann", 10, 3).build().eval()
               if jobs.needs_teacher(cfg.method) else None)
    method = create_method(cfg.method, student, teacher, **cfg.method_options).train()
    x = transform(data.to_float(images[:args.step_batch]), g)
    y = torch.randint(0, 10, (args.step_batch,))

    def step() -> None:
        method.zero_grad(set_to_none=True)
        method(x, y)["loss"].backward()

    train = median_seconds(step, max(1, args.repeats // 5))
    parts = [p for p in ("autoaugment", "cutout", "random_erasing") if getattr(cfg, p)]
    return ", ".join(parts), augment / args.batch, train / args.step_batch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", nargs="+",
                   default=["samd-nld-cifar10", "rate-bp-cifar10", "joint-asnn-cifar10"])
    p.add_argument("--batch", type=int, default=128, help="images per transform call")
    p.add_argument("--step-batch", type=int, default=8, help="images per training step")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = p.parse_args(argv)
    load_start = os.getloadavg()[0]
    rows = []
    for name in args.recipes:
        what, aug, step = measure(name, args)
        rows.append(f"| {name} | {what} | {1e3 * aug:.3f} | {1e3 * step:.1f} | "
                    f"{aug / step:.2%} |")
        print(rows[-1], file=sys.stderr, flush=True)
    command = "python benches/bench_augment.py " + shlex.join(argv or sys.argv[1:])
    section = "\n".join([
        "## Augmentation cost against a training step (recipes, CPU)", "",
        f"`{command.strip()}` on {machine()}; {versions([])}.", "",
        f"The trainer's transform of each recipe on batches of {args.batch} CIFAR-shaped uint8 "
        "images (crop and flip, then the recipe's per-image policies and normalisation), "
        f"median of {args.repeats} calls; one training step (forward and backward of the "
        f"recipe's method and networks at its T) on {args.step_batch} images, median of "
        f"{max(1, args.repeats // 5)}; both per image. The policies are drawn per image and "
        "applied to the images that drew the same operation together; RandomErasing runs image "
        f"by image. Load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the "
        "end (the ratio is measured in one process, under the same load).",
        "", table_head(COLUMNS), *rows])
    publish(START, END, section, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
