"""Calls of the public ops with one argument made wrong, or laid out oddly but validly.

:func:`make_case` draws a valid call of one op, then changes one argument: its shape, dtype,
device, type or layout (each a mistake the op must refuse with a ValueError or TypeError naming
the argument, or the argument it no longer matches), its value (the scalars), or only its strides
or its aliasing with another input (which must give the same result as contiguous copies).
:func:`check` runs a case and says what went wrong, if anything. The in-process hypothesis test
(``test_contract.py``) and the crash-isolated run (``boundary_fuzz.py``) share them.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

import torch
from snnrs._contract import compute_dtype
from snnrs.surrogate import NAMES

FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
NON_FLOATS = (torch.int32, torch.int64, torch.bool, torch.uint8, torch.complex64)
SEQUENCES = ("x", "grad_spikes", "h_seq")
PARAMS = ("leak", "decay_input", "v_threshold", "v_reset", "detach_reset", "surrogate", "alpha")
# What each tensor argument is checked against (a mistake may be reported on either).
RELATED = {"x": ("v0",), "v0": ("x", "h_seq", "grad_spikes"), "grad_v": ("h_seq", "grad_spikes"),
           "grad_spikes": ("h_seq", "grad_v", "v0"), "h_seq": ("grad_spikes", "grad_v", "v0"),
           "w": ()}


@dataclass
class Case:
    op: str  # "forward", "backward" or "rate_forward"
    args: dict
    label: str
    error: type | tuple[type, ...] | None = None  # None: the call must succeed
    names: tuple[str, ...] = ()  # one of them must be named in the error message
    equivalent: dict | None = None  # a call that must give the same result

    def call(self, args: dict | None = None):
        fn = getattr(torch.ops.snnrs, f"neuron_{self.op}")
        return fn(*(self.args if args is None else args).values())

    def __str__(self) -> str:
        shapes = {k: (tuple(v.shape), str(v.dtype), str(v.device)) if isinstance(v, torch.Tensor)
                  else v for k, v in self.args.items()}
        return f"{self.op}: {self.label}: {shapes}"


def _randn(rng: random.Random, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(rng.getrandbits(32))
    return (torch.randn(shape, generator=gen, dtype=torch.float64) + 0.5).to(dtype)


def valid_call(rng: random.Random, op: str) -> dict:
    """A valid call of ``op``, as ``{argument name: value}`` in the schema's order."""
    steps, rest = rng.randint(1, 4), tuple(rng.randint(1, 5) for _ in range(rng.randint(0, 3)))
    dtype = rng.choice(FLOATS)
    kind = rng.choice(["if", "lif", "plif"])
    w = _randn(rng, rng.choice([(), (1,)]), rng.choice(FLOATS)) if kind == "plif" else None
    decay_input = kind != "if" and rng.random() < 0.7
    params = dict(leak=0.5 if kind == "lif" else 0.0, decay_input=decay_input, v_threshold=1.0,
                  v_reset=rng.choice([0.0, -0.1, None]), detach_reset=rng.random() < 0.5,
                  surrogate=rng.choice(NAMES), alpha=rng.choice([1.0, 2.0]))
    if op == "backward":
        seq = {"grad_spikes": _randn(rng, (steps, *rest), dtype),
               "grad_v": _randn(rng, rest, dtype) if rng.random() < 0.6 else None,
               "h_seq": _randn(rng, (steps, *rest), compute_dtype(dtype)),
               # the leak gradient (with v0) needs a leak > 0 when the input decays
               "v0": _randn(rng, rest, dtype) if rng.random() < 0.6 and kind != "if" else None}
        return {**seq, "w": w, **params}
    return {"x": _randn(rng, (steps, *rest), dtype), "v0": _randn(rng, rest, dtype), "w": w,
            **params}


def _wrong_shape(rng: random.Random, name: str, t: torch.Tensor) -> torch.Tensor:
    shape = list(t.shape)
    if name == "w":
        return torch.zeros(2, dtype=t.dtype)
    choices = ["grow", "add"]
    if len(shape) > (1 if name in SEQUENCES else 0):
        choices.append("drop")
    how = rng.choice(choices)
    if how == "grow":
        # x may change T alone (v0 is one step of any T); every other size is tied to another.
        first = 1 if name == "x" else 0
        if first >= len(shape):
            how = "add"
        else:
            shape[rng.randrange(first, len(shape))] += rng.randint(1, 3)
    if how == "add":
        shape.insert(rng.randint(1 if name in SEQUENCES else 0, len(shape)), rng.randint(2, 3))
    if how == "drop":
        del shape[rng.randrange(1 if name in SEQUENCES else 0, len(shape))]
    return torch.zeros(shape, dtype=t.dtype)


def _other_float(rng: random.Random, name: str, t: torch.Tensor) -> torch.dtype:
    if name == "h_seq":
        return rng.choice([torch.float16, torch.bfloat16,
                           torch.float64 if t.dtype == torch.float32 else torch.float32])
    # a dtype whose compute dtype differs, so no cast could reconcile it with its partners
    return torch.float64 if compute_dtype(t.dtype) == torch.float32 else torch.float32


def _non_contiguous(t: torch.Tensor) -> torch.Tensor:
    """``t``'s values in a layout with every stride doubled (or broadcast when one element)."""
    if t.numel() == 1:
        return t.reshape([1] * t.dim()).clone().expand(t.shape)
    wide = torch.zeros(*t.shape, 2, dtype=t.dtype)[..., 0]
    wide.copy_(t)
    return wide


def _contiguous_copies(args: dict) -> dict:
    return {k: v.contiguous().clone() if isinstance(v, torch.Tensor) else v
            for k, v in args.items()}


def make_case(rng: random.Random) -> Case:
    """One call of a public op with one argument changed (see the module docstring)."""
    op = rng.choice(["forward", "backward", "rate_forward"])
    args = valid_call(rng, op)
    tensors = [k for k, v in args.items() if isinstance(v, torch.Tensor)]
    kind = rng.choice(["shape", "dtype", "non-float", "device", "not a tensor", "layout",
                       "scalar", "strides", "aliasing"])
    if kind == "scalar":
        return _wrong_scalar(rng, op, args)
    name = rng.choice(tensors)
    t = args[name]
    names = (name, *RELATED[name])
    bad = dict(args)
    if kind == "shape":
        bad[name] = _wrong_shape(rng, name, t)
        return Case(op, bad, f"{name} of shape {tuple(bad[name].shape)}", ValueError, names)
    if kind == "dtype" and name != "w":
        bad[name] = t.to(_other_float(rng, name, t))
        return Case(op, bad, f"{name} as {bad[name].dtype}", TypeError, names)
    if kind in ("dtype", "non-float"):
        bad[name] = torch.zeros(t.shape).to(rng.choice(NON_FLOATS))
        return Case(op, bad, f"{name} as {bad[name].dtype}", TypeError, names)
    if kind == "device":
        bad[name] = t.to("meta")
        return Case(op, bad, f"{name} on meta", ValueError, names)
    if kind == "not a tensor":
        if rng.random() < 0.5 and name not in ("w", "grad_v") and not (op == "backward"
                                                                         and name == "v0"):
            bad[name] = None
            return Case(op, bad, f"{name} None", TypeError, names)
        bad[name] = t.tolist() if t.dim() else float(t)
        return Case(op, bad, f"{name} a Python value", (TypeError, RuntimeError), names)
    if kind == "layout" and t.dim() > 0:
        bad[name] = t.to_sparse()
        return Case(op, bad, f"{name} sparse", (TypeError, NotImplementedError), names)
    if kind == "strides":
        odd = dict(args)
        odd[name] = _non_contiguous(t)
        return Case(op, odd, f"{name} non-contiguous", equivalent=_contiguous_copies(odd))
    return _aliased(rng, op, args)


def _wrong_scalar(rng: random.Random, op: str, args: dict) -> Case:
    bad = dict(args)
    name = rng.choice(["leak", "v_threshold", "v_reset", "alpha", "surrogate"])
    if name == "surrogate":
        bad[name] = rng.choice(["relu", "", "Sigmoid"])
    elif name == "alpha":
        bad[name] = rng.choice([0.0, -1.0, math.nan, math.inf])
    elif name == "leak":
        bad[name] = rng.choice([-0.5, math.nan, math.inf])
    else:
        bad[name] = rng.choice([math.nan, math.inf, -math.inf])
    return Case(op, bad, f"{name}={bad[name]!r}", ValueError, (name,))


def _aliased(rng: random.Random, op: str, args: dict) -> Case:
    """Inputs that share memory (read-only, so allowed): a state that is a step of a sequence."""
    odd = dict(args)
    if op == "backward":
        gs = odd["grad_spikes"]
        for name in ("grad_v", "v0"):
            if odd[name] is not None:
                odd[name] = gs[rng.randrange(gs.shape[0])]
    else:
        odd["v0"] = odd["x"][rng.randrange(odd["x"].shape[0])]
    return Case(op, odd, "inputs aliasing each other", equivalent=_contiguous_copies(odd))


def _named(msg: str, names: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(n)}\b", msg) for n in names)


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def check(case: Case, compiled: bool = False) -> str | None:
    """Runs ``case`` (under ``torch.compile(fullgraph=True)`` if asked); None when it behaved."""
    call = case.call
    if compiled:
        torch._dynamo.reset()
        fn = getattr(torch.ops.snnrs, f"neuron_{case.op}")
        compiled_fn = torch.compile(lambda *a: fn(*a), fullgraph=True)

        def call(args=None):
            return compiled_fn(*(case.args if args is None else args).values())
    try:
        result = call()
    except Exception as e:
        msg = str(e)
        if case.error is None:
            return f"{case}: raised {type(e).__name__}: {msg[:300]}"
        expected = case.error if isinstance(case.error, tuple) else (case.error,)
        # torch.compile reports a failed check inside its own RuntimeError.
        if not isinstance(e, expected) and not (compiled and isinstance(e, RuntimeError)):
            return f"{case}: raised {type(e).__name__}, expected {case.error}: {msg[:300]}"
        if not _named(msg, case.names):
            return f"{case}: the message names none of {case.names}: {msg[:300]}"
        return None
    if case.error is not None:
        return f"{case}: no error (expected {case.error})"
    if case.equivalent is not None and not _same(result, call(case.equivalent)):
        return f"{case}: differs from the same call on contiguous copies"
    return None
