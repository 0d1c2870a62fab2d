"""Random calls across the op boundary, run in a child process by ``test_contract.py``.

A crash (a segfault, an abort on heap corruption) ends only this process; the test sees its
exit status, and the last case printed names the call. Three parts:

1. the calls that once read and wrote out of bounds;
2. raw calls of the Rust entry points (``_core.forward`` / ``backward`` / ``rate_forward``) with
   real tensors whose lengths, element types and aliasing are drawn at random: each must run
   exactly when the buffers fit together (judged here from the layout rules, independently of
   the Rust code) and raise ValueError or TypeError otherwise;
3. wrong calls of the public ops (``contract_cases``).

Usage: python tests/boundary_fuzz.py --seed 7 --cases 400
"""

from __future__ import annotations

import argparse
import random
import sys

import torch
from contract_cases import check, make_case
from snnrs import _core, ops
from snnrs.backends._native import buf, record

P = record(ops.make_params(0.5, surrogate="atan"))
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16"}
# buffer: (kind, optional) where kind is "seq" ([T, N]) or "state" ([N])
LAYOUTS = {
    "forward": {"x": "seq", "v0": "state", "spikes": "seq", "h_seq": "seq", "v": "state"},
    "backward": {"grad_spikes": "seq", "grad_v": "state?", "h_seq": "seq", "v0": "state?",
                 "grad_x": "seq", "grad_v0": "state"},
    "rate_forward": {"x": "seq", "v0": "state", "spikes": "seq", "v": "state", "rate": "state",
                     "eligibility": "state"},
}
# the buffers each op writes (h_seq is the forward's output and the backward's input)
OUTPUTS = {"forward": {"spikes", "h_seq", "v"}, "backward": {"grad_x", "grad_v0"},
           "rate_forward": {"spikes", "v", "rate", "eligibility"}}
N_FROM = {"forward": "v0", "backward": "grad_v0", "rate_forward": "v0"}


def reported_calls() -> None:
    for call in (
        lambda: torch.ops.snnrs.neuron_backward(torch.randn(1, 8), None, torch.randn(4, 200000),
                                                None, None, 0.5, True, 1.0, 0.0, False,
                                                "sigmoid", 4.0),
        lambda: torch.ops.snnrs.neuron_forward(torch.randn(4, 20000), torch.zeros(8), None, 0.5,
                                               True, 1.0, 0.0, False, "sigmoid", 4.0),
    ):
        try:
            call()
        except ValueError:
            continue
        raise SystemExit("a reported call was not refused")


def raw_case(rng: random.Random) -> tuple[str, int, dict, torch.Tensor | None, bool]:
    """A raw call: op, steps, tensors by name (None: absent), leak, and whether it must run."""
    op = rng.choice(list(LAYOUTS))
    steps, n = rng.choice([0, 1, 2, 3, 3]), rng.randint(0, 5)
    dtype = rng.choice([torch.float32, torch.float64])
    fits = steps >= 1
    tensors: dict[str, torch.Tensor | None] = {}
    for name, kind in LAYOUTS[op].items():
        if kind.endswith("?") and rng.random() < 0.3:
            tensors[name] = None
            continue
        length = steps * n if kind.startswith("seq") else n
        if rng.random() < 0.06:
            length = max(0, length + rng.choice([-2, -1, 1, 3]))
        t_dtype = rng.choice(list(DTYPES)) if rng.random() < 0.04 else dtype
        tensors[name] = torch.randn(length).to(t_dtype)
    aliased = None
    if rng.random() < 0.1:  # an output written over an input
        aliased = rng.choice([k for k in tensors if k in OUTPUTS[op]])
        src = rng.choice([k for k in tensors if k not in OUTPUTS[op] and tensors[k] is not None])
        tensors[aliased] = tensors[src]
    # N comes from the state buffer the op sizes by: judge every other buffer against it
    n = tensors[N_FROM[op]].numel()
    for name, kind in LAYOUTS[op].items():
        t = tensors[name]
        if t is None:
            continue
        fits &= t.numel() == (steps * n if kind.startswith("seq") else n)
        fits &= t.dtype == dtype
    if aliased is not None:
        fits &= tensors[aliased].numel() == 0  # an empty buffer overlaps nothing
    leak = None
    if rng.random() < 0.3:
        leak = torch.tensor([0.3] * rng.choice([1, 1, 2]),
                            dtype=rng.choice([torch.float64, torch.float32, torch.float16]))
        fits &= leak.numel() == 1 and leak.dtype in (torch.float32, torch.float64)
    fits &= dtype in (torch.float32, torch.float64)
    return op, steps, tensors, leak, fits


def run_raw(op: str, steps: int, tensors: dict, leak: torch.Tensor | None) -> None:
    bufs = {k: None if t is None else buf(t) for k, t in tensors.items()}
    getattr(_core, op)(_core.Cpu(2), P, steps, **bufs, leak=None if leak is None else buf(leak))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=400)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    reported_calls()
    bad = 0
    for i in range(args.cases):
        op, steps, tensors, leak, fits = raw_case(rng)
        desc = {k: None if t is None else (t.numel(), DTYPES.get(t.dtype)) for k, t in
                tensors.items()}
        print(f"raw {i}: {op} T={steps} {desc} leak={None if leak is None else leak.numel()}",
              flush=True)
        try:
            run_raw(op, steps, tensors, leak)
            ran = True
        except (ValueError, TypeError) as e:
            ran, why = False, e
        if ran != fits:
            bad += 1
            print(f"  MISBEHAVED: ran={ran}, expected {fits}" + ("" if ran else f" ({why})"))
    for i in range(args.cases):
        case = make_case(rng)
        print(f"op {i}: {case}", flush=True)
        failure = check(case)
        if failure is not None:
            bad += 1
            print(f"  MISBEHAVED: {failure}")
    print("all behaved" if bad == 0 else f"{bad} misbehaved", flush=True)
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
