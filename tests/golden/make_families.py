"""Writes ``families.json``: golden trajectories of the neuron families beyond IF / LIF / PLIF.

Usage: ``python tests/golden/make_families.py`` (re)writes the file next to this script;
``--check`` writes nothing and exits 0 when the file equals what would be written now, else 1.

Each case builds a neuron from a :class:`snnrs.nn.NeuronSpec` (``kind`` and ``params``) and runs
its float64 reference step (:meth:`snnrs.nn.BaseNode.reference`) on inputs drawn from one seeded
``torch.Generator``, rounded to 4 decimals so the file stores them exactly. The gradients are
those of the linear loss ``L = sum(out * g) + sum(v_T * gv)``. The script refuses inputs that
bring any firing decision within :data:`MARGIN` of its threshold, or give all-0 or all-1 spikes.

File format (JSON)::

    {"format": "snnrs-golden-families/1", "T": 12, "N": 4,
     "cases": [{"name": str, "kind": str, "params": {...},
                "inputs": {"x": [T, N], "g": [T, N], "gv": [N]},
                "outputs": {"out": [T, N], "state": {field: [N]}, "grad_x": [T, N]}}, ...]}

Outputs are rounded to 12 significant digits.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from make_golden import _round, compact_json
from snnrs import surrogate
from snnrs.nn import NeuronSpec

PATH = Path(__file__).with_name("families.json")
FORMAT = "snnrs-golden-families/1"
SEED, T, N, MARGIN = 2026, 12, 4, 1e-4
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("cubalif_tau3_syn2_hard0", "cubalif", {"tau": 3.0, "tau_syn": 2.0}),
    ("cubalif_nodecay_soft_atan", "cubalif", {"tau": 2.0, "tau_syn": 4.0, "decay_input": False,
                                              "v_reset": None, "surrogate": "atan"}),
    ("alif_tau2_adapt4_hard0", "alif", {"tau": 2.0, "tau_adapt": 4.0, "beta": 0.8}),
    ("alif_soft_detach_triangle", "alif", {"tau": 3.0, "tau_adapt": 8.0, "beta": 1.5,
                                           "v_reset": None, "detach_reset": True,
                                           "surrogate": "triangle"}),
    ("li_tau3_rest0.2", "li", {"tau": 3.0, "v_rest": 0.2}),
    ("li_tau4_nodecay", "li", {"tau": 4.0, "decay_input": False}),
]


def case(name: str, kind: str, params: dict[str, Any], gen: torch.Generator) -> dict[str, Any]:
    """One case: inputs drawn from ``gen``, the reference's outputs, state and gradient."""
    def draw(*shape: int, mean: float = 0.0) -> torch.Tensor:
        x = torch.randn(shape, generator=gen, dtype=torch.float64) + mean
        return torch.round(x * 1e4) / 1e4

    node = NeuronSpec.make(kind, **params).build()
    x, g, gv = draw(T, N, mean=1.2), draw(T, N), draw(N)
    xr = x.clone().requires_grad_()
    decisions: list[torch.Tensor] = []
    heaviside = surrogate.heaviside
    surrogate.heaviside = lambda u, *a: decisions.append(u.detach()) or heaviside(u, *a)
    try:
        out, state = node.reference(xr)
    finally:
        surrogate.heaviside = heaviside
    ((out * g).sum() + (state.v * gv).sum()).backward()
    if node.fires:
        margin = float(torch.stack(decisions).abs().min())
        assert margin > MARGIN, f"{name}: a charge is within {MARGIN} of its threshold"
        assert 0 < float(out.detach().mean()) < 1, f"{name}: spikes are not mixed"
    return {"name": name, "kind": kind, "params": params,
            "inputs": {"x": x.tolist(), "g": g.tolist(), "gv": gv.tolist()},
            "outputs": {"out": _round(out.detach()),
                        "state": {k: _round(v.detach()) for k, v in state._asdict().items()},
                        "grad_x": _round(xr.grad)}}


def render() -> str:
    gen = torch.Generator().manual_seed(SEED)
    doc = {"format": FORMAT, "generator": "tests/golden/make_families.py", "T": T, "N": N,
           "cases": [case(*c, gen) for c in CASES]}
    return compact_json(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed file differs from what would be written")
    text = render()
    if parser.parse_args(argv).check:
        same = PATH.exists() and PATH.read_text() == text
        print(f"{PATH.name} is {'up to date' if same else 'OUT OF DATE: rerun the script'}")
        return 0 if same else 1
    PATH.write_text(text)
    print(f"wrote {PATH} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
