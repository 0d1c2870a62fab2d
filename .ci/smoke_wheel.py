"""Smoke test of an installed snnrs wheel, outside the source tree (run by .ci/wheel_smoke.sh).

Checks that the package imports from the environment (not from a source tree), carries its
type stub and compiled core, runs one neuron op forward and backward on the Rust kernels as the
float64 reference does, lists the model zoo, passes the CUDA self-test (compiling every kernel
with torch's NVRTC when torch ships one, none run without a GPU) and runs a one-epoch
`snnrs distill` on a slice of the built-in data. Exits non-zero on the first mismatch.

Usage: python smoke_wheel.py [--source DIR] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import sysconfig
import tempfile
import time
from importlib.metadata import version
from pathlib import Path


class SmokeError(Exception):
    pass


def check(ok: bool, what: str) -> None:
    if not ok:
        raise SmokeError(what)


def step(name: str):
    def wrap(fn):
        def run(*args):
            start = time.perf_counter()
            result = fn(*args)
            print(f"ok   {name} ({time.perf_counter() - start:.1f} s)", flush=True)
            return result
        return run
    return wrap


@step("import from the environment, version, stub, py.typed, abi3 core")
def check_import(source: Path | None) -> None:
    import snnrs
    from snnrs import _core

    here = Path(snnrs.__file__).resolve().parent
    sites = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    check(here.parent in sites, f"snnrs imported from {here}, not from this environment")
    if source is not None:
        check(not here.is_relative_to(source.resolve()), f"snnrs imported from the source {here}")
    check(snnrs.__version__ == _core.__version__ == version("snnrs"),
          f"versions differ: snnrs {snnrs.__version__}, _core {_core.__version__}, "
          f"metadata {version('snnrs')}")
    for name in ("py.typed", "_core.pyi"):
        check((here / name).is_file(), f"{name} is not installed")
    core = Path(_core.__file__).name
    check(".abi3." in core or core.endswith(".pyd"), f"the core is not an abi3 build: {core}")
    print(f"     snnrs {snnrs.__version__} from {here} ({core}), Python {sys.version.split()[0]}")


@step("LIF forward and backward on the Rust kernels == the float64 reference")
def check_op() -> None:
    import torch
    from snnrs import backends, ops, reference
    from snnrs._threads import torch_openmp_library

    backend, dtype = ops.backend_for(torch.device("cpu"), torch.float64)
    check(backend is backends.cpu and dtype == torch.float64,
          f"float64 CPU tensors would run on {backend.__name__}, not the Rust kernels")
    # T * N above the size that goes parallel, so torch's OpenMP threads (or rayon) run it.
    gen = torch.Generator().manual_seed(0)
    x = (1.5 * torch.randn(8, 4, 2048, generator=gen, dtype=torch.float64)).requires_grad_()
    v0 = (0.5 * torch.rand(4, 2048, generator=gen, dtype=torch.float64)).requires_grad_()
    g_s = torch.randn(8, 4, 2048, generator=gen, dtype=torch.float64)
    g_v = torch.randn(4, 2048, generator=gen, dtype=torch.float64)
    p = ops.make_params(ops.tau_to_leak(2.0), True, 1.0, 0.0, False, "atan", None)

    def run(fn):
        xi, v0i = x.detach().clone().requires_grad_(), v0.detach().clone().requires_grad_()
        spikes, v = fn(xi, v0i)
        ((spikes * g_s).sum() + (v * g_v).sum()).backward()
        return spikes.detach(), v.detach(), xi.grad, v0i.grad

    got = run(lambda xi, v0i: ops.lif(xi, v0i, tau=2.0, surrogate="atan"))
    want = run(lambda xi, v0i: reference.multistep(
        xi, v0i, p.leak, decay_input=p.decay_input, v_threshold=p.v_threshold,
        v_reset=p.v_reset, detach_reset=p.detach_reset, surrogate=p.surrogate, alpha=p.alpha))
    for name, a, b in zip(("spikes", "v", "grad x", "grad v0"), got, want, strict=True):
        check(a.dtype == torch.float64 and a.shape == b.shape, f"{name}: {a.dtype} {a.shape}")
        err = float((a - b).abs().max())
        check(err <= 1e-9 * max(1.0, float(b.abs().max())), f"{name} differs by {err:.3g}")
    rate = float(got[0].mean())
    check(0.01 < rate < 0.99, f"firing rate {rate:.3f}: the test input fires too little or much")
    # Where torch runs on GNU OpenMP (Linux), the kernels ran on its threads: the wheel opened
    # torch's libgomp at run time (it links none).
    gomp = torch_openmp_library()
    on_gomp = ops.use_torch_threads()
    check(on_gomp == (gomp is not None), f"torch's OpenMP at {gomp}, kernels on it: {on_gomp}")
    print(f"     [8, 4, 2048] float64, firing rate {rate:.3f}, {torch.get_num_threads()} threads "
          f"({'torch OpenMP ' + gomp if on_gomp else 'rayon'})")


def run_cli(args: list[str], timeout: float) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SmokeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n"
                         f"{done.stderr}")
    return done.stdout


def console_script() -> str:
    bin_dir = Path(sysconfig.get_paths()["scripts"])
    script = bin_dir / ("snnrs.exe" if sys.platform == "win32" else "snnrs")
    check(script.is_file(), f"the console script {script} is not installed")
    return str(script)


@step("snnrs models")
def check_models() -> None:
    out = run_cli([console_script(), "models"], timeout=120).split()
    for name in ("convnet", "resnet19", "vgg11"):
        check(name in out, f"`snnrs models` does not list {name}: {out}")


@step("snnrs recipes and recipe show (the recipe files ship in the wheel)")
def check_recipes() -> None:
    out = run_cli([console_script(), "recipes"], timeout=120)
    for name in ("samd-nld-cifar10", "rate-bp-cifar10", "joint-asnn-cifar10"):
        check(name in out, f"`snnrs recipes` does not list {name}:\n{out}")
    shown = json.loads(run_cli([console_script(), "recipe", "show", "samd-nld-cifar10",
                                "--json"], timeout=120))
    check(shown["student_parameters"] > 10**7 and shown["teacher_parameters"] > 10**7,
          f"parameter counts {shown['student_parameters']}, {shown['teacher_parameters']}")


@step("python -m snnrs.cuda (compiles every kernel; runs none without a GPU)")
def check_cuda() -> None:
    import torch

    out = run_cli([sys.executable, "-m", "snnrs.cuda"], timeout=300)
    lines = out.strip().splitlines()
    if torch.version.cuda is not None:  # torch's CUDA wheels ship NVRTC: it must compile
        from snnrs import cuda

        names = set(cuda.kernel_names())
        compiled = {line.split()[0] for line in lines
                    if "compiled sm_" in line and line.split()[0] in names}
        check(compiled == names, f"{len(compiled)} of {len(names)} kernels compiled:\n{out}")
    print(f"     {lines[-1]}")


@step("snnrs distill, one epoch each on 512 + 256 built-in images")
def check_distill(work: Path) -> None:
    out_dir = work / "distill"
    run_cli([console_script(), "distill", "--epochs", "1", "--teacher-epochs", "1",
             "--train-limit", "512", "--test-limit", "256", "--out", str(out_dir)], timeout=600)
    summary = json.loads((out_dir / "summary.json").read_text())
    check(summary["train_images"] == 512 and summary["test_images"] == 256,
          f"trained on {summary['train_images']}, tested on {summary['test_images']}")
    for net in ("teacher", "student", "baseline"):
        acc = summary[f"{net}_accuracy"]
        check(isinstance(acc, float) and math.isfinite(acc) and 0 <= acc <= 1,
              f"{net} accuracy {acc!r}")
        check((out_dir / "checkpoints" / f"{net}.pt").is_file(), f"no {net} checkpoint")
    for name in ("report.md", "metrics.jsonl", "curves.png"):
        check((out_dir / name).is_file(), f"no {name}")
    print("     accuracy " + ", ".join(
        f"{n} {summary[f'{n}_accuracy']:.1%}" for n in ("teacher", "student", "baseline")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="the source tree snnrs must not come from")
    parser.add_argument("--work", type=Path, help="folder for the run (default: a temporary one)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="snnrs-smoke-") as tmp:
            work = args.work or Path(tmp)
            check_import(args.source)
            check_op()
            check_models()
            check_recipes()
            check_cuda()
            check_distill(work)
    except (SmokeError, subprocess.TimeoutExpired) as e:
        print(f"FAIL {e}", file=sys.stderr)
        return 1
    print(f"wheel smoke test passed in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
