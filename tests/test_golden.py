"""Every backend against the committed golden trajectories of tests/golden/trajectories.json.

The file (format: tests/golden/make_golden.py) holds float64 oracle results for fixed neuron
configurations and inputs: spikes, the charge ``H`` and the membrane after reset per step, the
final state and the gradients of a fixed linear loss. Regenerate it with
``python tests/golden/make_golden.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import rel_err
from snnrs import ops, reference
from snnrs.backends import cpu

GOLDEN_DIR = Path(__file__).with_name("golden")
CASES: list[dict[str, Any]] = json.loads((GOLDEN_DIR / "trajectories.json").read_text())["cases"]
TOL64, TOL32, MARGIN32 = 1e-10, 1e-5, 1e-4


def _params(cfg: dict[str, Any]) -> ops.NeuronParams:
    return ops.make_params(cfg["leak"] or 0.0, cfg["decay_input"], cfg["v_threshold"],
                           cfg["v_reset"], cfg["detach_reset"], cfg["surrogate"], cfg["alpha"])


def _tensors(case: dict[str, Any], dtype: torch.dtype, device: torch.device | str = "cpu"
             ) -> dict[str, torch.Tensor]:
    """The case's inputs, golden outputs and PLIF ``w`` (if any) as tensors."""
    out = {k: torch.tensor(v, dtype=dtype, device=device)
           for k, v in {**case["inputs"], **case["outputs"]}.items() if v is not None}
    if case["config"]["w"] is not None:
        out["w"] = torch.tensor(case["config"]["w"], dtype=dtype, device=device)
    return out


def _run(case: dict[str, Any], dtype: torch.dtype, device: torch.device | str = "cpu"
         ) -> dict[str, torch.Tensor]:
    """Spikes, ``H``, membrane per step and final state from the op (no gradient)."""
    t, cfg = _tensors(case, dtype, device), case["config"]
    spikes, v_T, h = torch.ops.snnrs.neuron_forward(t["x"], t["v0"], t.get("w"), *_params(cfg))
    v = reference.reset(h, spikes, cfg["v_threshold"], cfg["v_reset"])
    return {k: a.cpu() for k, a in {"spikes": spikes, "h": h, "v": v, "v_T": v_T}.items()}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_spikes_are_mixed(case):
    spikes = torch.tensor(case["outputs"]["spikes"])
    assert 0 < int(spikes.sum()) < spikes.numel(), "all spikes 0 or all 1: a useless case"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_float64_matches_the_golden_trajectory(backend, case):
    golden = _tensors(case, torch.float64)
    ours = _run(case, torch.float64, backend)
    assert torch.equal(ours["spikes"], golden["spikes"]), "spikes differ"
    for name in ("h", "v", "v_T"):
        assert rel_err(ours[name], golden[name]) <= TOL64, name

    t = _tensors(case, torch.float64, backend)
    x, v0 = t["x"].requires_grad_(), t["v0"].requires_grad_()
    w = t.get("w")
    if w is not None:
        w.requires_grad_()
    spikes, v_T = ops.multistep(x, v0, _params(case["config"]), w)
    ((spikes * t["g"]).sum() + (v_T * t["gv"]).sum()).backward()
    grads = {"grad_x": x.grad, "grad_v0": v0.grad, "grad_w": None if w is None else w.grad}
    for name, grad in grads.items():
        if grad is not None:
            assert rel_err(grad.cpu(), golden[name]) <= TOL64, name


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_float32_cpu_kernels_match_the_golden_trajectory(case):
    assert ops.backend_for(torch.device("cpu"), torch.float32)[0] is cpu  # the Rust kernels
    golden = _tensors(case, torch.float64)
    ours = _run(case, torch.float32)
    clear = (golden["h"] - case["config"]["v_threshold"]).abs() > MARGIN32
    assert torch.equal(ours["spikes"][clear].double(), golden["spikes"][clear]), "spikes differ"
    assert rel_err(ours["h"].double(), golden["h"]) <= TOL32


def test_the_golden_file_is_what_the_script_writes():
    script = GOLDEN_DIR / "make_golden.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
