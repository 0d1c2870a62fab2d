"""How sparse the spikes entering each convolution are, and how fast the dense convolution runs on
them: the measurements an event-driven convolution has to beat (issue "spikes as events").

For each network it runs a batch of real images once (eval mode, no grad) and, for every
convolution and linear layer, records the density of its input (the fraction of non-zero
elements; whether the input is spikes, i.e. only 0 and 1), its multiply-adds, and the time of
the dense layer alone on that same input: forward, and forward + backward (input and weight
gradients), median of ``--repeats``, from which its achieved GFLOP/s. The networks:

- ``--checkpoint CKPT`` (repeatable): a trained network and its own test images (the main job's
  student: ``runs/distill/checkpoints/student.pt``);
- ``--recipe NAME`` (repeatable) with ``--cifar DIR``: a recipe's student as built, untrained
  (seeded; its BatchNorms on batch statistics, as in training), on CIFAR-10 test images read
  from ``DIR/test/<class>/*`` (a ``cifar10-folder``).

    python benches/bench_event_density.py --checkpoint runs/distill/checkpoints/student.pt \\
        --recipe samd-nld-cifar10 --cifar /tmp/cifar --write
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from snnrs import data
from snnrs.data.events.datasets import CIFAR10_CLASSES
from snnrs.models.measure import _macs_per_output
from snnrs.train import TrainConfig, checkpoint
from snnrs.train.jobs import network_spec
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_augment import median_seconds
from results import write_section

START, END = "<!-- event-density:start -->", "<!-- event-density:end -->"


@dataclass
class Layer:
    """One synaptic layer as the batch saw it."""

    name: str
    shape: tuple[int, ...]  # its input
    density: float          # non-zero fraction of its input
    spikes: bool            # its input holds only 0 and 1
    macs: int               # multiply-adds of one call on that input
    forward_ms: float
    step_ms: float          # forward + backward (input and weight gradients)

    @property
    def gflops(self) -> float:
        return 2 * self.macs / (self.forward_ms * 1e6)


def layers_of(net: nn.Module, images: Tensor, repeats: int) -> list[Layer]:
    """Every convolution and linear layer of ``net`` on ``images``, in the order they ran."""
    seen: dict[str, tuple[nn.Module, Tensor, Tensor]] = {}

    def hook(name):
        def record(module, args, out):
            seen.setdefault(name, (module, args[0].detach().clone(), out))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(images)
    for h in handles:
        h.remove()
    found = []
    for name, (module, x, y) in seen.items():
        with torch.no_grad():
            forward = 1e3 * median_seconds(lambda m=module, x=x: m(x), repeats)
        x_grad = x.clone().requires_grad_()

        def step(m=module, x=x_grad):
            m.zero_grad(set_to_none=True)
            x.grad = None
            m(x).sum().backward()

        found.append(Layer(name, tuple(x.shape), float((x != 0).float().mean()),
                           bool(((x == 0) | (x == 1)).all()), y.numel() * _macs_per_output(module),
                           forward, 1e3 * median_seconds(step, repeats)))
    return found


def cifar_images(folder: Path, per_class: int) -> Tensor:
    """The first ``per_class`` test images of each CIFAR-10 class, uint8 ``[N, 3, 32, 32]``."""
    images = []
    for name in CIFAR10_CLASSES:
        files = sorted((folder / "test" / name).iterdir())[:per_class]
        images += [np.asarray(Image.open(f).convert("RGB")) for f in files]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def recipe_network(name: str, seed: int) -> tuple[nn.Module, data.Normalize]:
    cfg = TrainConfig.from_sources(overrides={"recipe": name})
    torch.manual_seed(seed)
    # BatchNorm on batch statistics, as in training: an untrained network's running statistics
    # would silence every layer after the first few in eval mode
    net = network_spec(cfg, "snn", 10, 3).build().train()
    mean = cfg.normalize_mean or (0.4914, 0.4822, 0.4465)
    std = cfg.normalize_std or (0.2470, 0.2435, 0.2616)
    return net, data.Normalize(mean, std)


def table(title: str, layers: list[Layer]) -> str:
    rows = [f"**{title}**", "",
            "| layer | input | density | spikes | MMACs | fwd ms | GFLOP/s | fwd+bwd ms |",
            "|---|---|---|---|---|---|---|---|"]
    for s in layers:
        rows.append(f"| {s.name} | {'x'.join(map(str, s.shape))} | {s.density:.3f} | "
                    f"{'yes' if s.spikes else 'no'} | {s.macs / 1e6:.1f} | {s.forward_ms:.2f} | "
                    f"{s.gflops:.1f} | {s.step_ms:.2f} |")
    spiking = [s for s in layers if s.spikes]
    macs = sum(s.macs for s in layers)
    spike_macs = sum(s.macs for s in spiking)
    fwd = sum(s.forward_ms for s in layers)
    mean = sum(s.density * s.macs for s in spiking) / max(spike_macs, 1)
    rows += ["", f"Layers with spiking input: {len(spiking)} of {len(layers)}, "
             f"{100 * spike_macs / max(macs, 1):.1f}% of the multiply-adds and "
             f"{100 * sum(s.forward_ms for s in spiking) / max(fwd, 1e-9):.1f}% of the dense "
             f"forward time; their input density, weighted by multiply-adds: {mean:.3f} "
             f"(min {min((s.density for s in spiking), default=0):.3f}, max "
             f"{max((s.density for s in spiking), default=0):.3f}).", ""]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", action="append", default=[], type=Path)
    p.add_argument("--recipe", action="append", default=[])
    p.add_argument("--cifar", type=Path, help="a cifar10-folder (DIR/test/<class>/*)")
    p.add_argument("--images", type=int, default=16, help="images per network (default 16)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--write", action="store_true", help="write the benches/RESULTS.md section")
    args = p.parse_args(argv)
    if args.recipe and args.cifar is None:
        p.error("--recipe needs --cifar DIR (real CIFAR-10 images)")
    torch.manual_seed(0)
    sections = []
    for path in args.checkpoint:
        net, ckpt = checkpoint.load_model(path)
        test = checkpoint.evaluation_set(ckpt, path, None, net.T)
        normalize = data.Normalize(ckpt["data"]["mean"], ckpt["data"]["std"])
        images = normalize(test.images[:args.images].float() / 255)
        spec = checkpoint.model_spec(ckpt, path)
        title = (f"{path} ({spec.name}, T={net.T}, trained {ckpt['epoch']} epochs on "
                 f"{ckpt['data']['dataset']}; {len(images)} test images)")
        sections.append(table(title, layers_of(net, images, args.repeats)))
        print(sections[-1], flush=True)
    if args.recipe:
        raw = cifar_images(args.cifar, max(1, args.images // 10))
    for name in args.recipe:
        net, normalize = recipe_network(name, seed=0)
        images = normalize(raw.float() / 255)
        title = (f"recipe {name}: its student untrained (seed 0, BatchNorm on batch statistics "
                 f"as in training), T={net.T}; {len(images)} real CIFAR-10 test images")
        sections.append(table(title, layers_of(net, images, args.repeats)))
        print(sections[-1], flush=True)
    if args.write:
        command = " ".join(["python benches/bench_event_density.py", *(argv or sys.argv[1:])])
        head = [
            "## Spike density at each convolution, and the dense convolution's speed (CPU)", "",
            f"- Command: `{command}`",
            f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch.get_num_threads() = {torch.get_num_threads()}; load average "
            f"{os.getloadavg()[0]:.2f}",
            f"- Versions: torch {torch.__version__}",
            "- One batch of real images per network (a trained one in eval mode); per layer: "
            "the density of its input (non-zero fraction; `spikes`: only 0 and 1), "
            "multiply-adds of one call, "
            "the dense layer alone on that input (median of --repeats after a warm-up): forward "
            "ms, its GFLOP/s (2 x MACs / time), forward + backward ms.", ""]
        write_section(START, END, "\n".join(head + sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
