"""Swap SpikingJelly and snnTorch neurons inside an existing model for snnrs ones."""

from __future__ import annotations

import warnings
from collections.abc import Callable

from torch import Tensor, nn

from .neurons import IF, LIF, PLIF, BaseNode

# SpikingJelly surrogate class -> (snnrs name, alpha from the surrogate's own alpha). Each
# conversion is its own inverse, so the table also maps snnrs's alpha to SpikingJelly's.
_SJ_SURROGATES: dict[str, tuple[str, Callable[[float], float]]] = {
    "Sigmoid": ("sigmoid", lambda a: a),
    "ATan": ("atan", lambda a: a),
    "PiecewiseQuadratic": ("triangle", lambda a: 1.0 / a),  # g = 1 / alpha
    "Rect": ("rectangle", lambda a: 1.0 / a),  # w = 1 / alpha
}


class Unsupported(ValueError):
    """A peer neuron whose configuration has no exact snnrs equivalent."""


def _sj_surrogate(fn: nn.Module) -> tuple[str, float]:
    name = type(fn).__name__
    if name not in _SJ_SURROGATES or not getattr(fn, "spiking", True):
        raise Unsupported(f"surrogate {name} has no snnrs equivalent "
                          f"(supported: {', '.join(_SJ_SURROGATES)})")
    ours, to_alpha = _SJ_SURROGATES[name]
    return ours, to_alpha(float(fn.alpha))


def spikingjelly_surrogate(name: str, alpha: float) -> nn.Module:
    """SpikingJelly's surrogate equal to snnrs's ``name`` with parameter ``alpha`` (the inverse
    of what :func:`replace_neurons` reads); raises :class:`Unsupported` for a surrogate
    SpikingJelly lacks (``fast_sigmoid``).

    Example:
        >>> spikingjelly_surrogate("triangle", 0.5)    # doctest: +SKIP
        PiecewiseQuadratic(alpha=2.0, spiking=True)
    """
    for cls, (ours, to_alpha) in _SJ_SURROGATES.items():
        if ours == name:
            from spikingjelly.activation_based import surrogate

            return getattr(surrogate, cls)(alpha=to_alpha(float(alpha)))
    raise Unsupported(f"surrogate {name} has no SpikingJelly equivalent (supported: "
                      f"{', '.join(ours for ours, _ in _SJ_SURROGATES.values())})")


def _from_spikingjelly(m: nn.Module) -> BaseNode | None:
    kind = type(m).__name__
    if kind not in ("IFNode", "LIFNode", "ParametricLIFNode") or \
            not type(m).__module__.startswith("spikingjelly"):
        return None
    if getattr(m, "store_v_seq", False):
        raise Unsupported(f"{kind} with store_v_seq=True")
    surrogate, alpha = _sj_surrogate(m.surrogate_function)
    common = dict(v_threshold=float(m.v_threshold), v_reset=m.v_reset, surrogate=surrogate,
                  alpha=alpha, detach_reset=bool(m.detach_reset), step_mode=m.step_mode)
    if kind == "IFNode":
        return IF(**common)
    if kind == "LIFNode":
        return LIF(tau=float(m.tau), decay_input=bool(m.decay_input), **common)
    node = PLIF(decay_input=bool(m.decay_input), **common)
    node.w = nn.Parameter(m.w.detach().clone().reshape(()), requires_grad=m.w.requires_grad)
    return node


class SnnTorchLeaky(LIF):
    """snnrs LIF behind snnTorch's ``Leaky`` calling convention.

    ``forward(input_, mem=None)`` takes one step ``[B, *]`` and returns ``(spk, mem)``, or only
    ``spk`` when built with ``init_hidden=True``. Made by :func:`replace_neurons`.
    """

    def __init__(self, beta: float, threshold: float, surrogate: str, alpha: float,
                 init_hidden: bool, output: bool) -> None:
        super().__init__(decay_input=False, v_threshold=threshold, v_reset=0.0,
                         surrogate=surrogate, alpha=alpha, step_mode="s")
        self._use_leak_factor("beta", beta)
        self.init_hidden, self.output = init_hidden, output

    def forward(self, input_: Tensor, mem: Tensor | None = None):  # type: ignore[override]
        if mem is not None:
            self.v = mem
        if self.v is not None and self.v.shape != input_.shape:
            self.v = None  # snnTorch starts afresh when the shape changes
        spk = super().forward(input_)
        return spk if self.init_hidden and not self.output else (spk, self.v)


_SNNTORCH_SURROGATES = {"atan": "atan", "fast_sigmoid": "fast_sigmoid", "sigmoid": "sigmoid"}


def _from_snntorch(m: nn.Module) -> BaseNode | None:
    if type(m).__name__ != "Leaky" or not type(m).__module__.startswith("snntorch"):
        return None
    beta = m.beta
    checks = {
        "reset_mechanism='zero'": m.reset_mechanism == "zero",
        "reset_delay=False": not m.reset_delay,
        "a scalar, fixed beta": beta.numel() == 1 and not isinstance(beta, nn.Parameter),
        "a fixed threshold >= 0": not isinstance(m.threshold, nn.Parameter)
        and float(m.threshold) >= 0,
        "no inhibition, state_quant or graded spikes": not m.inhibition and not m.state_quant
        and float(m.graded_spikes_factor) == 1.0,
    }
    missing = [k for k, ok in checks.items() if not ok]
    if missing:
        raise Unsupported("snnTorch Leaky maps exactly only with " + ", ".join(missing))
    grad_fn = m.spike_grad
    name = getattr(grad_fn, "__name__", "").lower()
    qualname = getattr(grad_fn, "__qualname__", "")
    kind = next((v for k, v in _SNNTORCH_SURROGATES.items() if k in qualname.lower()), None)
    alpha = _closure_value(grad_fn, ("alpha", "slope"))
    if kind is None or alpha is None:
        raise Unsupported(f"snnTorch surrogate {name or grad_fn!r} has no snnrs equivalent")
    return SnnTorchLeaky(float(beta.clamp(0, 1)), float(m.threshold), kind, alpha,
                         bool(m.init_hidden), bool(m.output))


def _closure_value(fn, names: tuple[str, ...]) -> float | None:
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None)
    if code is None or cells is None:
        return None
    for var, cell in zip(code.co_freevars, cells, strict=False):
        if var in names:
            return float(cell.cell_contents)
    return None


def replace_neurons(model: nn.Module, strict: bool = True) -> nn.Module:
    """Replaces SpikingJelly ``IFNode`` / ``LIFNode`` / ``ParametricLIFNode`` and snnTorch
    ``Leaky`` (where it maps exactly) inside ``model`` by snnrs neurons with identical outputs.

    Works in place and returns ``model``. The new neurons take the old ones' parameters
    (threshold, reset, tau or ``w``, surrogate and its alpha, step mode) and start with a fresh
    state. A peer neuron without an exact equivalent raises :class:`Unsupported` when ``strict``,
    else stays in place with a warning.

    Example (with SpikingJelly installed)::

        from spikingjelly.activation_based import neuron
        net = nn.Sequential(nn.Linear(8, 8), neuron.LIFNode(tau=2.0, step_mode="m"))
        net = replace_neurons(net)          # net[1] is now snnrs.nn.LIF(tau=2.0, step_mode="m")
    """
    for name, child in list(model.named_children()):
        try:
            new = _from_spikingjelly(child) or _from_snntorch(child)
        except Unsupported as e:
            if strict:
                raise Unsupported(f"{name}: {e}") from None
            warnings.warn(f"kept {name} ({type(child).__name__}): {e}", stacklevel=2)
            new = None
        if new is not None:
            new.train(child.training)
            setattr(model, name, new)
        else:
            replace_neurons(child, strict)
    return model
