#!/usr/bin/env python
"""Memory levels: what one training step keeps for backward, snnrs vs SpikingJelly.

One training step (forward, cross-entropy, backward, SGD step, lr 1e-3, momentum 0.9) of the
spiking ``--model`` (``models.create(name, kind="snn", T=--T)``) on ``--batch`` random 3 x 32 x 32
images, the same seed, weights and inputs for every variant: snnrs at each memory level
(``net.memory``, see ``snnrs.nn.memory``); SpikingJelly, every neuron swapped for its multi-step
``LIFNode`` (``bench_training.to_spikingjelly``, ``net.memory = "full"``); SpikingJelly memopt,
that network after ``memopt.optimize_memory(net, <block classes>, level=1,
checkpoint_budget="memory", compress=True)``: every block in torch's non-reentrant checkpoint,
its input kept bit-packed (levels >= 2 search by CUDA peak memory). A variant that fails says
why in its row. SpikingJelly's networks are reset (``functional.reset_net``) after every step,
as its training loops do.

Saved MB: ``count_saved`` over one forward and loss (distinct storages, parameters excluded),
plus memopt's packed block inputs, which it keeps out of reach of saved-tensor hooks. Step ms,
interleaved: median of ``--repeats`` rounds in one process, each round one step of every
variant in turn, after a warm-up step each (CUDA synchronised); the variants then share one
allocator, whose churn costs the variants that allocate most. Step ms, alone: median of
``--repeats`` steps after a warm-up in a fresh process per variant, as a run trains, repeated
for ``--alone-rounds`` rounds in alternating order: the median over rounds, and the median of
each round's ratio to SpikingJelly's; peak MB: one more step there (the last round), the rise
of the resident high-water mark (CUDA: of the allocated memory), as in ``bench_rate.py``.
First loss: every level computes the same network; grads: each level's
after the first step, ``torch.equal`` to full's. The floor: what a step must keep when each
recompute unit (the stem, then each of ``stage_units``) runs once more in backward: the image
at its float size plus 1 bit per element of each unit's input. A second table gives saved MB
(one forward and loss, a fresh process per cell) for each T of ``--growth-T``.

Example:
    python benches/bench_memory.py --repeats 3
    python benches/bench_memory.py --model resnet20 --batch 2 --repeats 1 --growth-T 1 2 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_neurons import machine, versions
from bench_rate import _peak_cpu_bytes, _peak_cuda_bytes, _sync
from bench_training import to_spikingjelly
from results import publish, table_head
from snnrs import models
from snnrs.models.network import stage_units
from snnrs.nn.memory import DEFAULT, LEVELS, count_saved
from torch import nn

START, END = "<!-- memory-bench:start -->", "<!-- memory-bench:end -->"
VARIANTS = {**{level: f"snnrs {level}" + (" (default)" if level == DEFAULT else "")
               for level in LEVELS}, "sj": "SpikingJelly",
            "sj-memopt": "SpikingJelly memopt level 1"}
MB = 2.0**20
_OPEN: list = []  # the counts saved_bytes has open, for memopt's packed inputs


def build(variant: str, args: argparse.Namespace, T: int, x: torch.Tensor) -> nn.Module:
    """The network of ``variant`` at ``T``, from seed 0, on ``args.device``, in train mode."""
    torch.manual_seed(0)
    net = models.create(args.model, kind="snn", T=T)
    if variant in LEVELS:
        net.memory = variant
        return net.to(args.device).train()
    blocks = tuple({type(unit[0]) for stage in net.stages for _, unit in stage_units(stage)
                    if len(unit) == 1 and len(list(unit[0].children())) > 1})
    net = to_spikingjelly(net).to(args.device).train()
    net.memory = "full"  # snnrs's hooks leave it alone
    if variant == "sj-memopt":
        from spikingjelly.activation_based.memopt import optimize_memory

        if not blocks:
            raise ValueError(f"{args.model} has no block modules for memopt to checkpoint")
        optimize_memory(net, blocks, lambda m: m(x), level=1, checkpoint_budget="memory",
                        compress=True)
        for m in net.modules():  # a packed input is kept in a tuple, unseen by count_saved
            compressor = getattr(m, "checkpoint_fn", None) and m.checkpoint_fn.keywords.get(
                "compressor")
            if compressor is not None:
                compressor.compress = _counted(compressor.compress)
    return net


def _counted(compress):
    """``BitSpikeCompressor.compress``, adding its bits (``payload[0]``) to the open counts."""
    def run(x: torch.Tensor):
        payload = compress(x)
        for kept in _OPEN:
            kept.add(payload[0])
        return payload
    return run


def stepper(variant: str, args: argparse.Namespace, T: int, x: torch.Tensor, y: torch.Tensor):
    """``step(forward_only=False, grads=None)``: one training step of ``variant``'s network,
    returning the loss; ``grads`` (a list) receives copies of the parameters' gradients. A
    SpikingJelly network is reset after each call, as its training loops do (memopt would
    otherwise keep the neurons' stale states with each block's input)."""
    net = build(variant, args, T, x)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    reset = variant.startswith("sj")
    if reset:
        from spikingjelly.activation_based.functional import reset_net

    def step(forward_only: bool = False, grads: list | None = None) -> float:
        loss = nn.functional.cross_entropy(net(x), y)
        if not forward_only:
            loss.backward()
            if grads is not None:
                grads.extend(p.grad.clone() for p in net.parameters())
            opt.step()
            opt.zero_grad(set_to_none=True)
        if reset:
            reset_net(net)
        return loss.item()

    return step


def saved_bytes(step) -> int:
    with count_saved() as kept:
        _OPEN.append(kept)
        try:
            step(forward_only=True)
        finally:
            _OPEN.remove(kept)
    return kept.bytes


@torch.no_grad()
def floor_bytes(args: argparse.Namespace, T: int, x: torch.Tensor) -> int:
    """The image's bytes plus 1 bit per element of each recompute unit's input."""
    net = models.create(args.model, kind="snn", T=T).to(args.device).eval()
    sizes: list[int] = []
    hooks = [unit[0].register_forward_pre_hook(lambda _, a: sizes.append(a[0].numel()))
             for stage in net.stages for _, unit in stage_units(stage)]
    net(x)
    for hook in hooks:
        hook.remove()
    return x.numel() * x.element_size() + sum(-(-n // 8) for n in sizes)


def inputs(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(args.batch, 3, 32, 32, generator=gen)
    return x.to(args.device), torch.randint(0, 10, (args.batch,), generator=gen).to(args.device)


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def interleaved(args: argparse.Namespace, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Every variant in this process: saved bytes, the first step's loss and gradients (equal
    to full's?), then the median step time of rounds that step every variant in turn."""
    out: dict[str, dict] = {}
    steps, grads = {}, {}
    for v in VARIANTS:
        try:
            step, grads[v] = stepper(v, args, args.T, x, y), []
            out[v] = {"saved": saved_bytes(step), "loss": step(grads=grads[v]), "ms": []}
            steps[v] = step
        except Exception as e:  # SpikingJelly's memopt may refuse this network or device
            out[v] = {"error": _error(e)}
    for v in LEVELS:
        mine, full = grads.get(v, []), grads.get("full", [])
        out[v]["same"] = len(mine) == len(full) > 0 and all(map(torch.equal, mine, full))
    del grads
    dev = torch.device(args.device)
    for _ in range(args.repeats):
        for v, step in steps.items():
            _sync(dev)
            t0 = time.perf_counter()
            step()
            _sync(dev)
            out[v]["ms"].append(1e3 * (time.perf_counter() - t0))
    for v in steps:
        out[v]["ms"] = statistics.median(out[v]["ms"])
    return out


def child(args: argparse.Namespace) -> dict:
    """In this (fresh) process, ``args.child`` alone: with ``--saved-only`` the saved bytes of
    one forward; else one warm-up step, the median ms of ``--repeats`` steps, one step's peak."""
    x, y = inputs(args)
    try:
        step = stepper(args.child, args, args.T, x, y)
        if args.saved_only:
            return {"saved": saved_bytes(step)}
        step()
    except Exception as e:
        return {"error": _error(e)}
    dev = torch.device(args.device)
    times = []
    for _ in range(args.repeats):
        _sync(dev)
        t0 = time.perf_counter()
        step()
        _sync(dev)
        times.append(1e3 * (time.perf_counter() - t0))
    peak = _peak_cuda_bytes(step, dev) if dev.type == "cuda" else _peak_cpu_bytes(step)
    return {"peak": peak, "ms": statistics.median(times)}


def run_child(args: argparse.Namespace, variant: str, T: int | None = None,
              saved_only: bool = False) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--model",
           args.model, "--T", str(args.T if T is None else T), "--batch", str(args.batch),
           "--repeats", str(args.repeats), "--device", args.device,
           *(["--saved-only"] if saved_only else [])]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def alone(args: argparse.Namespace) -> dict[str, dict]:
    """Each variant in a fresh process, ``--alone-rounds`` times, the order reversed every other
    round (the VM drifts between processes): the median ms, the median of each round's ratio to
    SpikingJelly's, and the last round's peak."""
    rounds: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for r in range(args.alone_rounds):
        for v in (list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]):
            rounds[v].append(run_child(args, v))
    out = {}
    for v, runs in rounds.items():
        if any("error" in run for run in runs):
            out[v] = next(run for run in runs if "error" in run)
            continue
        ratios = [run["ms"] / sj["ms"] for run, sj in zip(runs, rounds["sj"], strict=True)
                  if "ms" in sj]
        out[v] = {"ms": statistics.median(run["ms"] for run in runs), "peak": runs[-1]["peak"],
                  "ratio": statistics.median(ratios) if ratios else None}
    return out


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:.{2 if value < 10 * MB else 1}f}"


def _ratio(r: float) -> str:
    return f"{r:.{2 if r < 10 else 1}f}x"


def main_rows(res: dict, peaks: dict, floor: int) -> list[str]:
    sj = res["sj"]
    rows = [table_head(("variant", "saved MB", "SJ / this", "step ms, interleaved",
                        "ms / SJ's", "step ms, alone", "ms / SJ's", "peak MB", "saved / floor",
                        "first loss", "grads = full's"))]
    for v, name in VARIANTS.items():
        r, alone = res[v], peaks[v]
        if "error" in r:
            rows.append(f"| {name} | failed: {r['error']} |" + " — |" * 9)
            continue
        same = ("(reference)" if v == "full" else "—" if v not in LEVELS else
                "yes" if r["same"] else "NO")
        alone_ms = (f"{alone['ms']:.0f} | {alone['ratio']:.2f}x" if alone.get("ratio") else
                    f"{alone.get('error', 'n/a')} | —")
        rows.append(f"| {name} | {_mb(r['saved'])} | {sj['saved'] / r['saved']:.1f}x | "
                    f"{r['ms']:.0f} | {r['ms'] / sj['ms']:.2f}x | {alone_ms} | "
                    f"{alone.get('error') or _mb(alone.get('peak'))} | "
                    f"{_ratio(r['saved'] / floor)} | {r['loss']:.6f} | {same} |")
    return rows


def growth_rows(args: argparse.Namespace, x: torch.Tensor, y: torch.Tensor) -> list[str]:
    rows = [table_head(("T", "floor MB", *(f"{n} MB" for n in VARIANTS.values()),
                        "min / floor"))]
    for T in args.growth_T:
        floor, cells = floor_bytes(args, T, x), {}
        for v in VARIANTS:  # a fresh process each: T=16 keeps gigabytes
            r = run_child(args, v, T, saved_only=True)
            cells[v] = r["saved"] if "saved" in r else f"failed: {r['error']}"
        text = " | ".join(c if isinstance(c, str) else _mb(c) for c in cells.values())
        ratio = "n/a" if isinstance(cells["min"], str) else _ratio(cells["min"] / floor)
        rows.append(f"| {T} | {_mb(floor)} | {text} | {ratio} |")
        print(rows[-1], flush=True)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet19",
                   choices=[n for n in models.list_models() if not n.startswith("joint_")])
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--alone-rounds", type=int, default=3,
                   help="rounds of fresh processes per variant, alternating the order")
    p.add_argument("--growth-T", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--saved-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.batch, args.repeats, args.alone_rounds, args.T, *args.growth_T) < 1:
        p.error("--batch, --repeats, --alone-rounds, --T and every --growth-T must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    peaks = alone(args)
    x, y = inputs(args)
    floor, res = floor_bytes(args, args.T, x), interleaved(args, x, y)
    if "error" in res["full"] or "error" in res["sj"]:
        raise SystemExit(f"snnrs full: {res['full']}; SpikingJelly: {res['sj']}")
    rows = main_rows(res, peaks, floor)
    print("\n".join(rows), flush=True)
    growth = growth_rows(args, x, y)
    command = shlex.join(["python", "benches/bench_memory.py", *sys.argv[1:]])
    how = [" ".join(part.split()).replace("``", "`") for part in __doc__.split("\n\n")[1:3]]
    section = "\n".join([
        f"## Memory levels: what a training step keeps, snnrs vs SpikingJelly ({args.device}, "
        "float32)", "",
        f"- Command: `{command}`",
        f"- Machine: {machine()}",
        f"- Load average {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
        f"{time.perf_counter() - t0:.0f} s in all",
        f"- Versions: {versions(['spikingjelly'])}",
        *(f"- {part}" for part in how),
        f"- Spiking {args.model} at T={args.T}, batch {args.batch}: floor {_mb(floor)} MB.", "",
        *rows, "",
        f"Saved MB over T (batch {args.batch}, one forward and loss each):", "",
        *growth,
    ])
    publish(START, END, section, write=not args.no_write)


if __name__ == "__main__":
    main()
