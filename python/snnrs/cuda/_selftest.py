"""``python -m snnrs.cuda``: compile every kernel; on a GPU, check each against the CPU float64
kernels on every neuron configuration.

Without a GPU it compiles for a fixed architecture (``--arch``, default 90) so CI proves the
kernels compile, and exits 0 with a "no GPU" line; without a libnvrtc it says so and exits 0 too
(unless a GPU is there, which then has no way to run its kernels: exit 1).

Checks run the kernels through :mod:`snnrs.backends.cuda` on inputs drawn in the kernel's dtype
and the CPU float64 kernels on the same values upcast. Neurons whose reference charge comes
within ``MARGIN`` of the threshold at any step could legitimately fire differently in float32;
they are left out of the comparison (their upstream gradients are zeroed, so they add nothing
to the PLIF leak gradient either). The rest must match: spikes exactly, everything else within
the dtype's tolerance, relative to the largest reference value.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .. import _core, ops
from ..backends import cuda as backend
from ..surrogate import NAMES
from . import built, compile_kernels, find_nvrtc, kernel_names, load_nvrtc

MARGIN = 1e-4  # |H - v_threshold| below which float32 and float64 may fire differently
TOL = {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 1e-2}  # storage rounding
H_TOL = 1e-4  # H is float32 in every dtype
LEAK_TOL = 1e-3  # PLIF's dL/dleak: a sum over all neurons and steps
DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Config:
    """One neuron configuration: kind (``if``, ``lif``, ``plif``) and every option."""

    kind: str
    decay_input: bool
    v_reset: float | None
    detach_reset: bool
    surrogate: str
    tau: float = 2.0
    w0: float = 0.3  # PLIF: tau = 1 + exp(-w0)
    v_threshold: float = 1.0
    alpha: float | None = None  # the surrogate's default

    def params(self) -> ops.NeuronParams:
        leak = 1.0 / self.tau if self.kind == "lif" else 0.0
        return ops.make_params(leak, self.decay_input, self.v_threshold, self.v_reset,
                               self.detach_reset, self.surrogate, self.alpha)


def configs(surrogate: str) -> list[Config]:
    """IF (2 resets), LIF and PLIF (2 resets x decay_input); ``detach_reset`` alternates."""
    shapes = [("if", False)] + [(k, d) for k in ("lif", "plif") for d in (True, False)]
    grid = [(kind, d, r) for kind, d in shapes for r in (0.0, None)]
    return [Config(kind, d, r, i % 2 == 1, surrogate) for i, (kind, d, r) in enumerate(grid)]


@dataclass
class Outcome:
    """Relative errors of one case, the kernels it launched, and the neurons left out."""

    errors: dict[str, float] = field(default_factory=dict)
    kernels: list[str] = field(default_factory=list)
    left_out: float = 0.0  # fraction of neurons too close to the threshold to compare

    def failures(self, dtype: torch.dtype) -> list[str]:
        tol = {"h_seq": H_TOL, "grad_leak": LEAK_TOL}
        return [f"{k} {e:.1e}" for k, e in self.errors.items()
                if not e <= tol.get(k, TOL[dtype])]  # NaN fails


def _rel_err(a: Tensor, b: Tensor) -> float:
    """The largest error of ``a`` relative to the largest ``|b|``, taken as at least 1e-12 and
    at least the smallest normal number of ``a``'s dtype (float16 stores 1e-12 as 0)."""
    if b.numel() == 0:
        return 0.0
    floor = max(torch.finfo(a.dtype).tiny, 1e-12)
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(floor))


def _on_device(t: Tensor, device: torch.device, offset: int) -> Tensor:
    """``t`` copied to ``device`` at a storage offset of ``offset`` elements."""
    buf = torch.empty(t.numel() + offset, dtype=t.dtype, device=device)
    out = buf[offset:].view(t.shape)
    out.copy_(t)
    return out


def run_case(cfg: Config, dtype: torch.dtype, steps: int, n: int, *, device: torch.device,
             offset: int = 0, seed: int = 0) -> Outcome:
    """Forward, backward and rate mode of ``cfg`` on ``[steps, n]`` inputs in ``dtype`` (at a
    storage offset of ``offset`` elements) against the CPU float64 kernels."""
    p = cfg.params()
    gen = torch.Generator().manual_seed(seed)

    def draw(*shape: int, scale: float = 1.0, shift: float = 0.0) -> Tensor:
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale + shift).to(dtype)

    x, v0 = draw(steps, n, scale=1.2, shift=0.5), draw(n, scale=0.5)
    g, gv = draw(steps, n), draw(n)
    w = torch.tensor(cfg.w0) if cfg.kind == "plif" else None
    w64 = None if w is None else w.double()

    ref_s, ref_v, ref_h = torch.ops.snnrs.neuron_forward(x.double(), v0.double(), w64, *p)
    near = ((ref_h - cfg.v_threshold).abs() < MARGIN).any(0)
    keep = ~near
    g[:, near], gv[near] = 0, 0
    v0_grad = v0.double() if w is not None else None
    ref_gx, ref_gv0, ref_gl = torch.ops.snnrs.neuron_backward(
        g.double(), gv.double(), ref_h, v0_grad, w64, *p)
    ref_rate = torch.ops.snnrs.neuron_rate_forward(x.double(), v0.double(), w64, *p)

    out = Outcome(left_out=float(near.double().mean()))
    xd, v0d, gd, gvd = (_on_device(t, device, offset) for t in (x, v0, g, gv))
    wd = None if w is None else w.to(device)
    s, v, h = backend.forward(xd, v0d, wd, p, launched=out.kernels)
    hd = _on_device(h, device, offset)  # the backward sees the same misalignment
    gx, gv0, gl = backend.backward(gd, gvd, hd, v0d if w is not None else None, wd, p,
                                   launched=out.kernels)
    rate = backend.rate_forward(xd, v0d, wd, p, launched=out.kernels)

    e = out.errors
    e["spikes"] = float((s.cpu().double() != ref_s)[:, keep].double().mean())
    e["v"], e["h_seq"] = _rel_err(v.cpu()[keep], ref_v[keep]), _rel_err(h.cpu()[:, keep],
                                                                         ref_h[:, keep])
    e["grad_x"] = _rel_err(gx.cpu()[:, keep], ref_gx[:, keep])
    e["grad_v0"] = _rel_err(gv0.cpu()[keep], ref_gv0[keep])
    if w is not None:
        e["grad_leak"] = abs(float(gl) - float(ref_gl)) / max(abs(float(ref_gl)), 1e-12)
    e["rate_spikes"] = float((rate[0].cpu().double() != ref_rate[0])[:, keep].double().mean())
    for name, a, b in zip(("rate_v", "rate", "eligibility"), rate[1:], ref_rate[1:], strict=True):
        e[name] = _rel_err(a.cpu()[keep], b[keep])
    return out


@dataclass
class KernelReport:
    runs: int = 0
    worst: float = 0.0  # largest error as a multiple of its tolerance (NaN: NaN seen)
    failures: list[str] = field(default_factory=list)


def _worst(a: float, b: float) -> float:
    return a if math.isnan(a) or not b <= a else b


def _tolerance(key: str, dtype: torch.dtype) -> float:
    return {"h_seq": H_TOL, "grad_leak": LEAK_TOL}.get(key, TOL[dtype])


def sizes(device: torch.device) -> Iterator[tuple[int, int, int]]:
    """``(T, N, offset)``: one size that takes the vector kernels (aligned, N a multiple of 8
    and enough threads to fill the GPU), one the scalar kernels (odd N, misaligned)."""
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    yield 3, sms * 1024 * 8, 0
    yield 5, 4099, 1


def run_all(device: torch.device
            ) -> tuple[dict[str, KernelReport], dict[torch.dtype, dict[str, float]]]:
    """Every dtype, path, surrogate and configuration: a report per kernel, and the largest
    error of each output per dtype."""
    reports = {name: KernelReport() for name in kernel_names()}
    per_dtype: dict[torch.dtype, dict[str, float]] = {d: {} for d in DTYPES}
    cases = itertools.product(DTYPES, sizes(device), NAMES)
    for seed, (dtype, (steps, n, offset), surrogate) in enumerate(cases):
        for cfg in configs(surrogate):
            outcome = run_case(cfg, dtype, steps, n, device=device, offset=offset, seed=seed)
            fails = outcome.failures(dtype)
            if outcome.left_out > 0.01:
                fails.append(f"{outcome.left_out:.1%} of neurons too close to the threshold")
            worst = 0.0
            for key, err in outcome.errors.items():
                worst = _worst(worst, err / _tolerance(key, dtype))
                per_dtype[dtype][key] = _worst(per_dtype[dtype].get(key, 0.0), err)
            for name in outcome.kernels:
                r = reports[name]
                r.runs += 1
                r.worst = _worst(r.worst, worst)
                r.failures += [f"{cfg}: {f}" for f in fails]
    return reports, per_dtype


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnrs.cuda", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--arch", type=int, default=90,
                        help="compute capability to compile for without a GPU (default 90)")
    args = parser.parse_args(argv)
    print(f"snnrs {_core.__version__}, torch {torch.__version__} (CUDA {torch.version.cuda})")
    if not built():
        print("FAIL: this build of snnrs has no CUDA kernels (cargo feature `cuda`)")
        return 1
    gpu = torch.cuda.is_available()
    device = torch.device("cuda", torch.cuda.current_device()) if gpu else None
    arch = args.arch
    if device is not None:
        major, minor = torch.cuda.get_device_capability(device)
        arch = 10 * major + minor
        print(f"GPU: {torch.cuda.get_device_name(device)} (sm_{arch}) as {device}")
    nvrtc = load_nvrtc()
    try:
        report = compile_kernels(arch)
    except RuntimeError as e:
        if nvrtc is None and "no NVRTC library" in str(e):
            print(f"compilation skipped: no libnvrtc found (not in torch's nvidia wheels, "
                  f"$SNNRS_NVRTC unset, none on the library path): {e}")
            if not gpu:
                print("no GPU: nothing to run")
                return 0
            print("FAIL: a GPU is present but its kernels cannot be compiled")
            return 1
        print(f"FAIL: compiling the kernels for sm_{arch}: {e}")
        return 1
    names = kernel_names()
    print(f"NVRTC {report['nvrtc']} ({nvrtc or find_nvrtc() or 'from the library path'}): "
          f"{len(names)} kernels for sm_{arch}: PTX {len(report['ptx'])} chars, cubin "
          f"{report['cubin_bytes']} bytes")
    if device is None:
        for name in names:
            print(f"{name:<44} compiled sm_{arch}")
        print(f"no GPU (torch.cuda.is_available() is False): every kernel compiled for sm_{arch},"
              " none run")
        return 0
    reports, per_dtype = run_all(device)
    ok = True
    for name in names:
        r = reports[name]
        fine = r.runs > 0 and not r.failures
        ok &= fine
        detail = "never launched" if r.runs == 0 else (
            f"{r.runs:3d} runs, max err {r.worst:.2f} x tol")
        print(f"{name:<44} compiled sm_{arch}  {detail}  {'ok' if fine else 'FAIL'}")
        for f in r.failures[:5]:
            print(f"    {f}")
    for dtype, errors in per_dtype.items():
        shown = ", ".join(f"{k} {e:.1e}" for k, e in errors.items())
        print(f"max error, {str(dtype).removeprefix('torch.')}: {shown}")
    print("all kernels match the CPU float64 kernels" if ok else "FAIL: see the lines above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
