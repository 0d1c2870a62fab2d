#!/usr/bin/env python
"""Training benchmark: one step of a spiking network, snnrs vs SpikingJelly (docs/benchmarks.md).

Both libraries train the same network from the same seed on the same ``--batch`` random
CIFAR-sized images (3 x 32 x 32, float32). By default that is ``models.create(--model,
kind="snn", T=--T)`` (LIF tau 2, sigmoid surrogate alpha 4, hard reset to 0, train-mode BN)
trained by cross-entropy; with ``--recipe NAME`` it is that paper recipe's training step: its
student (network, neuron, T), its method with its teacher (random weights: the cost is the
same), its optimiser and, unless ``--batch`` is given, its batch size. For SpikingJelly every
snnrs neuron is swapped for ``spikingjelly.activation_based.neuron.LIFNode(step_mode="m")``
(``IFNode`` for IF) with the same parameters and surrogate, in the implementation SpikingJelly
picks itself (its fastest available): only the neurons differ. A step is forward, loss,
backward and an optimiser step. Recipes trained by rate-based backprop, with a surrogate
SpikingJelly lacks (fast_sigmoid) or on event frames are refused with the reason.

Per library and allocator setting (glibc's default, or one that keeps freed memory, as in
``bench_headline.py``), in a fresh subprocess: step ms (median of ``--repeats`` after a
warm-up; CUDA synchronised), steps per second, the bytes autograd saves in the forward
(parameters excluded), and the peak memory of one step (CPU: rise of the resident high-water
mark over the resident size before it; CUDA: ``max_memory_allocated`` minus the allocation
before it), measured as in ``bench_rate.py``. The first step's losses are compared as a check
that the two compute the same network. Writes the training-bench section of RESULTS.md (with
``--recipe``, the recipe-step section).

Example:
    python benches/bench_training.py --batch 16 --repeats 3
    python benches/bench_training.py --recipe kdsnn-cifar10 --repeats 5      # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_headline import KEEP_FREED
from bench_neurons import machine, versions
from bench_rate import profile_step
from results import publish, table_head
from snnrs import data, models
from snnrs.distill import Method, create_method
from snnrs.models.layers import Spiking, unflatten_time
from snnrs.nn.replace import spikingjelly_surrogate
from snnrs.surrogate import resolve
from snnrs.train import TrainConfig
from snnrs.train.jobs import dataset_shape, needs_teacher, network_spec
from snnrs.train.loop import make_optimizer
from torch import nn

START, END = "<!-- training-bench:start -->", "<!-- training-bench:end -->"
RECIPE_START, RECIPE_END = "<!-- recipe-step-bench:start -->", "<!-- recipe-step-bench:end -->"
LIBS = ("snnrs", "spikingjelly")
ALLOCATORS = {"default": {}, "freed memory kept": KEEP_FREED}
MB = 2.0**20


class SpikingJellyAct(nn.Module):
    """A :class:`Spiking` activation computed by SpikingJelly's multi-step ``LIFNode`` (or
    ``IFNode``) with the same parameters and surrogate."""

    def __init__(self, ours: Spiking) -> None:
        from spikingjelly.activation_based import neuron

        super().__init__()
        p = ours.neuron.params
        if ours.neuron._w() is not None:
            raise ValueError("PLIF is not mapped: this network cannot be compared neuron for "
                             "neuron")
        self.T = ours.T
        common = dict(v_threshold=p.v_threshold, v_reset=p.v_reset, detach_reset=p.detach_reset,
                      surrogate_function=spikingjelly_surrogate(*resolve(p.surrogate, p.alpha)),
                      step_mode="m")
        self.node = (neuron.IFNode(**common) if p.leak == 0 else
                     neuron.LIFNode(tau=1.0 / p.leak, decay_input=p.decay_input, **common))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.node.reset()  # every call starts at rest, as Spiking does
        return self.node(unflatten_time(x, self.T)).flatten(0, 1)


def to_spikingjelly(net: nn.Module) -> nn.Module:
    """Swaps every :class:`Spiking` activation of ``net`` for SpikingJelly's, in place."""
    for name, child in list(net.named_children()):
        if isinstance(child, Spiking):
            setattr(net, name, SpikingJellyAct(child))
        else:
            to_spikingjelly(child)
    return net


def step_config(recipe: str | None, model: str, T: int) -> TrainConfig:
    """What one step trains: ``recipe``'s settings, or ``model`` at ``T`` by cross-entropy
    (SGD lr 1e-3, momentum 0.9, no weight decay)."""
    if recipe is None:
        return TrainConfig(dataset="cifar10", model=model, T=T, method="none", lr=1e-3,
                           momentum=0.9, nesterov=False, weight_decay=0.0).validate()
    cfg = TrainConfig.from_sources(overrides={"recipe": recipe})
    if cfg.method == "hybrid" or cfg.method_options.get("backprop") == "rate":
        raise ValueError(f"recipe {recipe} trains by rate-based backprop, which SpikingJelly "
                         "does not do: compare a BPTT recipe")
    if data.DATASETS[cfg.dataset].time_steps:
        raise ValueError(f"recipe {recipe} trains on event frames ({cfg.dataset}); this "
                         "benchmark feeds CIFAR-sized images")
    with torch.device("meta"):  # every neuron maps to SpikingJelly's, or say why now
        to_spikingjelly(network_spec(cfg, "snn", *dataset_shape(cfg)).build())
    return cfg


def measure(lib: str, cfg: TrainConfig, batch: int, repeats: int, device: str) -> dict:
    """One library, in this process: step ms, first loss, saved and peak bytes."""
    dev = torch.device(device)
    classes, channels = dataset_shape(cfg)
    torch.manual_seed(0)
    student = network_spec(cfg, "snn", classes, channels).build()
    teacher = (network_spec(cfg, "ann", classes, channels).build()
               if needs_teacher(cfg.method) else None)
    if lib == "spikingjelly":
        to_spikingjelly(student)
        student.memory = "full"  # snnrs's levels leave SpikingJelly's neurons alone
    method: Method = create_method(cfg.method, student, teacher, **cfg.method_options)
    if cfg.teacher_norm == "train":
        method.use_teacher_batch_stats()
    method = method.to(dev).train()
    opt = make_optimizer(method.parameters_to_train(), cfg)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(batch, channels, 32, 32, generator=gen).to(dev)
    y = torch.randint(0, classes, (batch,), generator=gen).to(dev)
    losses = []

    def step(forward_only: bool = False) -> None:
        loss = method(x, y)["loss"]
        losses.append(loss.item())
        if forward_only:
            return
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return {**profile_step(step, dev, repeats), "loss": losses[0]}


def run_child(args: argparse.Namespace, lib: str, env: dict[str, str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", lib, "--batch",
           str(args.batch), "--repeats", str(args.repeats), "--device", args.device,
           *(["--recipe", args.recipe] if args.recipe else
             ["--model", args.model, "--T", str(args.T)])]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    if out.returncode != 0:
        raise SystemExit(f"{lib} failed:\n{out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:.0f}"


COLUMNS = ("allocator", "library", "step ms", "steps/s", "speed-up", "saved MB", "peak MB",
           "first loss")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=[n for n in models.list_models()
                                       if not n.startswith("joint_")],
                   help="the zoo network (default resnet19)")
    p.add_argument("--T", type=int, help="time steps (default 4)")
    p.add_argument("--recipe", help="a recipe's training step instead (snnrs recipes lists "
                   "them); it sets the network, T, method, optimiser and batch")
    p.add_argument("--batch", type=int, help="images per step (default 16, or the recipe's)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--child", choices=LIBS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.recipe and (args.model or args.T):
        p.error("--recipe sets the network and T; drop --model and --T")
    args.model, args.T = args.model or "resnet19", args.T or 4
    try:
        args.cfg = step_config(args.recipe, args.model, args.T)
    except ValueError as e:
        p.error(str(e))
    args.batch = args.batch or (args.cfg.batch_size if args.recipe else 16)
    if args.batch < 1 or args.repeats < 1 or args.T < 1:
        p.error("--batch, --repeats and --T must be >= 1")
    return args


def describe(args: argparse.Namespace) -> tuple[str, str]:
    """The section's title and what one step trains."""
    cfg = args.cfg
    if args.recipe is None:
        return (f"Training step, snnrs vs SpikingJelly ({args.device}, float32)",
                f"Spiking {cfg.model} at T={cfg.T}, {args.batch} random 3 x 32 x 32 images, "
                "the same weights and inputs for both; SpikingJelly's `LIFNode(step_mode=\"m\")` "
                "replaces each snnrs LIF, nothing else changes. Step = forward, cross-entropy, "
                "backward, SGD step")
    options = ", ".join(f"{k}={v}" for k, v in cfg.model_options.items()) or "defaults"
    return (f"Recipe {args.recipe}: one training step, snnrs vs SpikingJelly ({args.device}, "
            "float32)",
            f"The recipe's student (spiking {cfg.model}, {options}) at T={cfg.T}, method "
            f"`{cfg.method}`" + (f" with an ANN {cfg.teacher_model or cfg.model} teacher"
                                 if needs_teacher(cfg.method) else "")
            + f", {cfg.optimizer} (lr {cfg.lr}, momentum {cfg.momentum}, weight decay "
            f"{cfg.weight_decay} on {cfg.weight_decay_on}) at the recipe's batch of "
            f"{args.batch} random 3 x 32 x 32 images, the same weights and inputs for both; "
            "SpikingJelly's multi-step neuron with the same parameters and surrogate replaces "
            "each snnrs neuron, nothing else changes. Step = forward (teacher and student), "
            "the method's loss, backward, optimiser step")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.cfg, args.batch, args.repeats, args.device)))
        return
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    rows = [table_head(COLUMNS)]
    # glibc's allocator settings matter on the CPU only.
    allocators = ALLOCATORS if args.device == "cpu" else {"default": {}}
    for allocator, env in allocators.items():
        results = {lib: run_child(args, lib, env) for lib in LIBS}
        theirs = results["spikingjelly"]
        for lib, r in results.items():
            rows.append(f"| {allocator} | {lib} | {r['ms']:.0f} | {1e3 / r['ms']:.2f} | "
                        f"{theirs['ms'] / r['ms']:.2f}x | {_mb(r['saved'])} | {_mb(r['peak'])} | "
                        f"{r['loss']:.6f} |")
            print(rows[-1], flush=True)
    command = shlex.join(["python", "benches/bench_training.py", *sys.argv[1:]])
    title, what = describe(args)
    section = "\n".join([
        f"## {title}",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine()}",
        f"- Load average {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
        f"{time.perf_counter() - t0:.0f} s in all",
        f"- Versions: {versions(['spikingjelly'])}",
        f"- {what}; median of {args.repeats} after a warm-up, a fresh process per library. "
        "Saved MB: what autograd keeps from the forward (parameters excluded); peak MB: one "
        "step's rise of the resident high-water mark (CUDA: of the allocated memory). \"Freed "
        "memory kept\": `MALLOC_MMAP_THRESHOLD_=MALLOC_TRIM_THRESHOLD_=2^32` (see the "
        "headline section).",
        "",
        *rows,
    ])
    start, end = (RECIPE_START, RECIPE_END) if args.recipe else (START, END)
    publish(start, end, section, write=not args.no_write)


if __name__ == "__main__":
    main()
