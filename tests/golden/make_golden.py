"""Writes ``trajectories.json``: golden membrane trajectories from the float64 oracle.

Usage: ``python tests/golden/make_golden.py`` (re)writes the file next to this script;
``--check`` writes nothing and exits 0 when the file equals what would be written now, else 1.

Everything comes from :func:`snnrs.reference.multistep` in float64. The inputs are normal draws
of one ``torch.Generator`` seeded with :data:`SEED`, rounded to 4 decimals, so the file stores
them exactly and the test starts from the very same numbers. The gradients are those of the
linear loss ``L = sum(spikes * g) + sum(v_T * gv)``.

File format (JSON; every ``[T, N]`` array is a list of ``T`` rows of ``N`` numbers)::

    {
      "format": "snnrs-golden-trajectories/1",
      "generator": "tests/golden/make_golden.py",
      "T": 16, "N": 4,
      "cases": [
        {
          "name": "lif_tau2_decay_hard0",            # unique, used as the test id
          "config": {
            "kind": "if" | "lif" | "plif",
            "leak": float | null,                      # 1/tau (LIF), 0.0 (IF), null (PLIF)
            "w": float | null,                         # PLIF: leak = sigmoid(w)
            "decay_input": bool, "v_threshold": float,
            "v_reset": float | null,                   # null: soft reset
            "detach_reset": bool, "surrogate": str, "alpha": float
          },
          "inputs": {"x": [T, N], "v0": [N], "g": [T, N], "gv": [N]},
          "outputs": {
            "spikes": [T, N] of 0 / 1,
            "h": [T, N],          # the charge H_t before firing
            "v": [T, N],          # the membrane V_t after reset; v[T-1] is the final state
            "v_T": [N],
            "grad_x": [T, N], "grad_v0": [N],
            "grad_w": float | null  # PLIF only
          }
        }, ...
      ]
    }

Outputs are rounded to 12 significant digits (``-0`` written as ``0``); config and inputs are
exact. The script refuses inputs that put any ``H`` within :data:`MARGIN` of the threshold (or,
for the rectangle surrogate, of its jumps) or that give all-0 or all-1 spikes, so the golden
spikes and gradients do not hinge on rounding.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import torch
from snnrs import reference

PATH = Path(__file__).with_name("trajectories.json")
FORMAT = "snnrs-golden-trajectories/1"
SEED, T, N = 2024, 16, 4
MARGIN = 1e-4
# (surrogate, alpha, detach_reset), cycled over the cases for the gradient part.
GRAD_SETTINGS = [("sigmoid", 4.0, False), ("atan", 2.0, True), ("triangle", 1.0, False),
                 ("fast_sigmoid", 25.0, True), ("rectangle", 1.0, False)]


def configs() -> list[tuple[str, dict[str, Any]]]:
    """The named neuron configurations, in file order: each neuron with each reset (IF: two)."""
    neurons: list[tuple[str, float | None, float | None, bool]] = [("if", 0.0, None, False)]
    neurons += [(f"lif_tau{tau}_{'decay' if decay else 'nodecay'}", 1.0 / tau, None, decay)
                for tau in (2, 3) for decay in (True, False)]
    neurons += [("plif_w0.3", None, 0.3, True)]
    resets = {"hard0": 0.0, "hard-0.2": -0.2, "soft": None}
    out: list[tuple[str, dict[str, Any]]] = []
    for prefix, leak, w, decay_input in neurons:
        for reset_name, v_reset in resets.items():
            if prefix == "if" and reset_name == "hard-0.2":
                continue
            surrogate, alpha, detach = GRAD_SETTINGS[len(out) % len(GRAD_SETTINGS)]
            out.append((f"{prefix}_{reset_name}", {
                "kind": prefix.split("_")[0], "leak": leak, "w": w, "decay_input": decay_input,
                "v_threshold": 1.0, "v_reset": v_reset, "detach_reset": detach,
                "surrogate": surrogate, "alpha": alpha}))
    return out


def _round(t: torch.Tensor, digits: int = 12) -> Any:
    """A tensor as nested lists of floats rounded to ``digits`` significant digits."""
    if t.dim() == 0:
        return float(f"{float(t):.{digits}g}") + 0.0  # + 0.0 turns -0.0 into 0.0
    return [_round(r, digits) for r in t]


def _margin(h: torch.Tensor, cfg: dict[str, Any]) -> float:
    """The distance of the charges to the threshold and to the surrogate's jumps, if any."""
    u = h - cfg["v_threshold"]
    d = u.abs().min()
    if cfg["surrogate"] == "rectangle":
        d = torch.minimum(d, (u.abs() - cfg["alpha"] / 2).abs().min())
    return float(d)


def case(name: str, cfg: dict[str, Any], gen: torch.Generator) -> dict[str, Any]:
    """One case: inputs drawn from ``gen`` and the oracle's trajectory and gradients."""
    f64 = {"dtype": torch.float64}

    def draw(*shape: int, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
        return torch.round((torch.randn(shape, generator=gen, **f64) * std + mean) * 1e4) / 1e4

    # decay_input scales the input by the leak: centre it nearer the threshold
    x, v0 = draw(T, N, mean=1.0 if cfg["decay_input"] else 0.6), draw(N, std=0.5)
    g, gv = draw(T, N), draw(N)
    xr, v0r = x.clone().requires_grad_(), v0.clone().requires_grad_()
    w = None if cfg["w"] is None else torch.tensor(cfg["w"], **f64, requires_grad=True)
    leak = cfg["leak"] if w is None else torch.sigmoid(w)
    opts = {k: cfg[k] for k in ("decay_input", "v_threshold", "v_reset", "detach_reset",
                                "surrogate", "alpha")}
    spikes, v_T = reference.multistep(xr, v0r, leak, **opts)
    ((spikes * g).sum() + (v_T * gv).sum()).backward()

    # The per-step trajectory, replayed with the oracle's own charge and reset.
    v_rest = 0.0 if cfg["v_reset"] is None else cfg["v_reset"]
    hs, vs, v = [], [], v0
    with torch.no_grad():
        for x_t, s_t in zip(x, spikes, strict=True):
            hs.append(reference.charge(v, x_t, leak, cfg["decay_input"], v_rest))
            v = reference.reset(hs[-1], s_t, cfg["v_threshold"], cfg["v_reset"])
            vs.append(v)
    h = torch.stack(hs)
    assert torch.equal(v, v_T) and torch.equal((h >= cfg["v_threshold"]).double(), spikes)
    assert _margin(h, cfg) > MARGIN, f"{name}: a charge is within {MARGIN} of a jump"
    assert 0 < float(spikes.detach().mean()) < 1, f"{name}: spikes are not mixed"
    return {
        "name": name, "config": cfg,
        "inputs": {"x": x.tolist(), "v0": v0.tolist(), "g": g.tolist(), "gv": gv.tolist()},
        "outputs": {
            "spikes": spikes.detach().to(torch.int64).tolist(), "h": _round(h),
            "v": _round(torch.stack(vs)), "v_T": _round(v_T.detach()),
            "grad_x": _round(xr.grad), "grad_v0": _round(v0r.grad),
            "grad_w": None if w is None else _round(w.grad)},
    }


def render() -> str:
    """The file's text: indented JSON with each innermost list of numbers on one line."""
    gen = torch.Generator().manual_seed(SEED)
    doc = {"format": FORMAT, "generator": "tests/golden/make_golden.py", "T": T, "N": N,
           "cases": [case(name, cfg, gen) for name, cfg in configs()]}
    return compact_json(doc)


def compact_json(doc: dict[str, Any]) -> str:
    """Indented JSON with each innermost list of numbers on one line."""
    text = json.dumps(doc, indent=1)
    return re.sub(r"\[([^\[\]{}\"]*)\]", lambda m: "[" + " ".join(m.group(1).split()) + "]",
                  text) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Writes the file, or with ``--check`` compares it; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed file differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        same = PATH.exists() and PATH.read_text() == text
        print(f"{PATH.name} is {'up to date' if same else 'OUT OF DATE: rerun make_golden.py'}")
        return 0 if same else 1
    PATH.write_text(text)
    print(f"wrote {PATH} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
