"""The op boundary: every wrong argument of every public op is refused with a clear exception,
in eager mode and compiled, before any kernel runs; odd but valid layouts give the same results.

The public ops are checked by the contract (``snnrs._contract``); behind it, the Rust entry points
check every buffer again against the others, so a mistake in Python is an error, not an
out-of-bounds access. Those are exercised directly, and in a child process, where a crash fails
the test instead of ending the run.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from contract_cases import Case, check, make_case, valid_call
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs import _core, ops
from snnrs.backends._native import buf, record

HERE = Path(__file__).resolve().parent


@given(rng=st.randoms(use_true_random=False))
@settings(max_examples=300)
def test_every_wrong_argument_is_refused_and_odd_layouts_change_nothing(rng):
    failure = check(make_case(rng))
    assert failure is None, failure


@given(rng=st.randoms(use_true_random=False))
@settings(max_examples=12)
def test_under_torch_compile_the_same_mistakes_are_refused(rng):
    case = make_case(rng)
    while case.error is None or "Python value" in case.label or "sparse" in case.label:
        case = make_case(rng)  # compile traces tensors; layouts and Python values are eager's
    failure = check(case, compiled=True)
    assert failure is None, failure


def test_compiled_checks_hold_on_symbolic_sizes():
    fn = torch.compile(lambda x, v0: torch.ops.snnrs.neuron_forward(
        x, v0, None, 0.5, True, 1.0, 0.0, False, "sigmoid", 4.0), fullgraph=True, dynamic=True)
    torch._dynamo.reset()
    assert fn(torch.randn(3, 5), torch.randn(5))[0].shape == (3, 5)
    assert fn(torch.randn(4, 7), torch.randn(7))[0].shape == (4, 7)  # no recompile needed
    with pytest.raises(RuntimeError, match=r"v0 has shape \(6,\), expected \(7,\)"):
        fn(torch.randn(4, 7), torch.randn(6))


def test_the_reported_calls_are_refused():
    # The two calls that read and wrote out of bounds before the contract existed.
    with pytest.raises(ValueError, match=r"grad_spikes has shape \(1, 8\), expected \(4, 200000\)"):
        torch.ops.snnrs.neuron_backward(torch.randn(1, 8), None, torch.randn(4, 200000), None, None,
                                        0.5, True, 1.0, 0.0, False, "sigmoid", 4.0)
    with pytest.raises(ValueError, match=r"v0 has shape \(8,\), expected \(20000,\)"):
        torch.ops.snnrs.neuron_forward(torch.randn(4, 20000), torch.zeros(8), None, 0.5, True,
                                       1.0, 0.0, False, "sigmoid", 4.0)


def test_the_fake_implementation_refuses_what_eager_refuses():
    case = Case("forward", valid_call(random.Random(3), "forward"), "v0 one longer")
    x = case.args["x"]
    case.args["v0"] = torch.zeros(x.shape[1:].numel() + 1, dtype=x.dtype)
    with pytest.raises(ValueError, match="v0 has shape") as eager:
        case.call()
    meta = {k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in case.args.items()}
    with pytest.raises(ValueError) as fake:
        case.call(meta)
    assert str(fake.value) == str(eager.value)


# ---------------------------------------------------------------------------------------------
# The Rust entry points: each buffer's own length, type and address are checked.


def _forward_args(steps: int, n: int, dtype=torch.float32, **changes) -> dict:
    t = {"x": torch.randn(steps, n, dtype=dtype), "v0": torch.zeros(n, dtype=dtype),
         "spikes": torch.empty(steps, n, dtype=dtype), "h_seq": torch.empty(steps, n, dtype=dtype),
         "v": torch.empty(n, dtype=dtype), **changes}
    return t


def _core_forward(steps: int, t: dict, leak: torch.Tensor | None = None) -> None:
    keep = [t, leak]  # the tensors outlive the call
    _core.forward(_core.Cpu(2), record(ops.make_params(0.5)), steps,
                  **{k: buf(t[k]) for k in ("x", "v0", "spikes", "h_seq", "v")},
                  leak=None if leak is None else buf(leak))
    del keep


def test_the_core_checks_each_buffer_against_the_others():
    _core_forward(3, _forward_args(3, 5))
    with pytest.raises(ValueError, match="x has 15 elements, expected 18"):
        _core_forward(3, _forward_args(3, 6, x=torch.randn(3, 5)))
    with pytest.raises(ValueError, match="v has 8 elements, expected 5"):
        _core_forward(3, _forward_args(3, 5, v=torch.empty(8)))
    with pytest.raises(ValueError, match="T must be at least 1"):
        _core_forward(0, _forward_args(1, 5))
    with pytest.raises(TypeError, match="spikes is float64, expected float32"):
        _core_forward(3, _forward_args(3, 5, spikes=torch.empty(3, 5, dtype=torch.float64)))
    with pytest.raises(TypeError, match="the CPU kernels support float32 and float64"):
        _core_forward(3, _forward_args(3, 5, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="leak is float16, expected float64"):
        _core_forward(3, _forward_args(3, 5), leak=torch.tensor([0.5], dtype=torch.float16))
    _core_forward(3, _forward_args(3, 5), leak=torch.tensor([0.5]))  # float32 or float64
    x = torch.randn(3, 5)
    with pytest.raises(ValueError, match="overlap"):
        _core_forward(3, _forward_args(3, 5, x=x, spikes=x))
    four = {k: buf(torch.zeros(4)) for k in ("v0", "spikes", "h_seq", "v")}
    with pytest.raises(ValueError, match="null or misaligned"):
        _core.forward(_core.Cpu(1), record(ops.make_params(0.5)), 1, x=(0, 4, _core.DType.F32),
                      **four)
    with pytest.raises(ValueError, match=r"(?s)tuple of length 3.*'x'"):
        _core.forward(_core.Cpu(1), record(ops.make_params(0.5)), 1, x=(1, 2), **four)
    with pytest.raises(TypeError, match="forward\\(\\) needs the buffer 'x'"):
        _core.forward(_core.Cpu(1), record(ops.make_params(0.5)), 1, x=None, **four)
    with pytest.raises(TypeError, match="forward\\(\\) has no buffer 'lek'"):
        _core.forward(_core.Cpu(1), record(ops.make_params(0.5)), 1, x=buf(torch.zeros(4)),
                      lek=None, **four)
    with pytest.raises(TypeError, match="ctx must be an execution context"):
        _core.forward(1, record(ops.make_params(0.5)), 1, x=buf(torch.zeros(4)), **four)


def test_the_parameter_record_is_validated_once():
    with pytest.raises(ValueError, match="unknown surrogate"):
        _core.Params(0.5, True, 1.0, 0.0, False, "relu", 1.0)
    with pytest.raises(ValueError, match="leak"):
        _core.Params(-1.0, True, 1.0, 0.0, False, "atan", 1.0)
    p = ops.make_params(0.25, False, 0.9, None, True, "triangle", 0.7)
    assert record(p).args == tuple(p)
    assert record(p) is record(p)


def test_a_crash_of_any_boundary_call_fails_the_test_not_the_run():
    # Runs the reported calls, random raw calls of the Rust entry points (lengths, types,
    # aliasing) and random wrong calls of the public ops in a child process.
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cases = "400" if os.environ.get("CI") else "200"
    proc = subprocess.run([sys.executable, str(HERE / "boundary_fuzz.py"), "--seed", "7",
                           "--cases", cases], capture_output=True, text=True, env=env,
                          timeout=240)
    assert proc.returncode == 0, (
        f"exit {proc.returncode}; last lines:\n" + "\n".join(proc.stdout.splitlines()[-5:])
        + proc.stderr[-2000:])
    assert "all behaved" in proc.stdout
