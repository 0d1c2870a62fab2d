"""The package imports one way, down its layers, and importing it changes nothing outside it.

Layers, lowest first: the Rust module; the spec and helpers (surrogates, the op contract, the
reference equations, buffers, threads); the backends; the ops; the neuron modules; the models;
what distils, measures and exports them; what trains them; the front ends. A module may import
its own layer or lower ones.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "snnrs"
LAYERS = [
    {"_core"},
    {"surrogate", "_buffers", "_threads", "registry", "files"},
    {"recipes"},
    {"_contract", "reference"},
    {"backends"},
    {"ops", "event_conv"},
    {"nn"},
    {"models"},
    {"data"},
    {"distill", "evaluate", "bench", "nir"},
    {"train", "cuda"},
    {"cli", "cli_export", "__main__", ""},  # "": the package's own __init__
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _part(module: str) -> str:
    """The top-level part of ``snnrs.x.y``: ``x`` ("" for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports() -> list[tuple[str, str, str]]:
    """``(file, importing part, imported part)`` for every import of snnrs inside snnrs."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
                targets = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("snnrs"):
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("snnrs")]
            found += [(str(rel), _part(module), _part(t)) for t in targets]
    return found


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())}
    parts = {"" if p == "__init__" else p for p in parts} | {"_core"}
    assert parts == set(RANK), "add the new module to LAYERS"


def test_imports_only_run_down_the_layers():
    upward = [f"{file}: {src} imports {dst}" for file, src, dst in _imports()
              if RANK[dst] > RANK[src]]
    assert upward == []


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_importing_snnrs_attaches_no_runtime_and_probes_nothing():
    out = _run("""
        import snnrs, snnrs.cuda, snnrs.cli
        from snnrs import _buffers, _core, _threads
        from snnrs._threads import torch_openmp_library
        from snnrs.backends import cuda
        print("nvrtc loaded:", cuda.load_nvrtc.cache_info().currsize)
        print("pool probed:", _buffers._free_use_count.cache_info().currsize)
        print("threads chosen:", _threads._chosen)
        import torch
        snnrs.ops.lif(torch.randn(4, 3))
        print("after an op:", _threads._chosen, _core.use_openmp(True) ==
              (torch_openmp_library() is not None))
    """)
    assert "nvrtc loaded: 0" in out
    assert "pool probed: 0" in out
    assert "threads chosen: False" in out
    assert "after an op: True True" in out


def test_a_choice_made_before_the_first_op_is_kept():
    out = _run("""
        import torch, snnrs
        from snnrs import _core
        print(snnrs.ops.use_torch_threads(False))
        snnrs.ops.lif(torch.randn(4, 3))
        print(_core.use_openmp(False))
    """)
    assert out.split() == ["False", "False"]
