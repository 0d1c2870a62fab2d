"""The exact correspondence between snnrs's discrete neurons and NIR's continuous-time ones.

NIR writes a LIF neuron as ``tau dv/dt = (v_leak - v) + r I`` and an IF neuron as
``dv/dt = r I``; both fire when ``v > v_threshold`` and then set ``v = v_reset``. One forward-Euler
step of length ``dt`` is::

    LIF:  v <- v + (dt / tau) * ((v_leak - v) + r * I)
    IF:   v <- v + dt * r * I

snnrs's charge (docs/neurons.md) is that step with ``leak = dt / tau`` and ``v_leak = v_reset``:
``decay_input=True`` is ``r = 1``, ``decay_input=False`` is ``r = 1 / leak`` (``tau / dt``), and
IF is ``r = 1 / dt``. snnrs fires at ``H >= v_threshold``, NIR at ``v > v_threshold``; the
exporter records snnrs's rule in each neuron's metadata (:data:`SPIKE_KEY`) so that
:func:`snnrs.nir.load` reproduces it. docs/nir.md has the derivation and what other libraries do.

Example:
    >>> to_nir("lif", leak=0.5, decay_input=False, v_reset=0.0, dt=1e-3)
    Continuous(tau=0.002, r=2.0, v_leak=0.0)
    >>> lif_from_nir(tau=0.002, r=2.0, dt=1e-3)
    Discrete(leak=0.5, decay_input=False, gain=1.0)
"""

from __future__ import annotations

import math
from typing import NamedTuple

#: The metadata key of a neuron node that names its firing rule.
SPIKE_KEY = "snnrs_spike"
#: snnrs's (and SpikingJelly's) rule; NIR's own is :data:`FIRES_ABOVE`.
FIRES_AT = "v >= v_threshold"
FIRES_ABOVE = "v > v_threshold"
#: Metadata keys of the backward pass (they change no forward value).
SURROGATE_KEY, ALPHA_KEY, DETACH_KEY = "snnrs_surrogate", "snnrs_alpha", "snnrs_detach_reset"

#: Relative tolerance for recognising ``r = 1``, ``r = tau / dt`` or ``dt * r = 1`` in a
#: graph: float64 rounding of ``dt / (dt / leak)``, nothing coarser (a graph stored in float32
#: keeps its exact ``r`` as an input gain instead).
RTOL = 1e-12


class Continuous(NamedTuple):
    """NIR's parameters of one neuron: ``tau`` (None for IF), ``r``, ``v_leak`` (None for IF)."""

    tau: float | None
    r: float
    v_leak: float | None


class Discrete(NamedTuple):
    """A NIR neuron as snnrs runs it: ``leak = dt / tau`` (0 for IF), ``decay_input``, and a
    ``gain`` multiplying the input before snnrs's charge (1 unless ``r`` is neither 1 nor
    ``tau / dt``)."""

    leak: float
    decay_input: bool
    gain: float


def check_dt(dt: object) -> float:
    """``dt`` as a float after checking it is a finite number > 0.

    Example:
        >>> check_dt(0)
        Traceback (most recent call last):
        ...
        ValueError: dt (the time step, in seconds) must be a finite number > 0, got 0
    """
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) \
            or dt <= 0:
        raise ValueError(f"dt (the time step, in seconds) must be a finite number > 0, got {dt!r}")
    return float(dt)


def to_nir(kind: str, leak: float, decay_input: bool, v_reset: float, dt: float) -> Continuous:
    """NIR's ``tau``, ``r`` and ``v_leak`` of an snnrs neuron with a hard reset to ``v_reset``.

    ``kind`` is ``"if"`` (``leak`` 0) or ``"lif"`` (PLIF too, with ``leak = sigmoid(w)``).

    Example:
        >>> to_nir("if", leak=0.0, decay_input=False, v_reset=0.0, dt=0.5)
        Continuous(tau=None, r=2.0, v_leak=None)
    """
    dt = check_dt(dt)
    if kind == "if":
        return Continuous(None, 1.0 / dt, None)
    if not (math.isfinite(leak) and leak > 0):
        raise ValueError(f"a LIF leak (1/tau) must be a finite number > 0, got {leak}")
    return Continuous(dt / leak, 1.0 if decay_input else 1.0 / leak, float(v_reset))


def hard_reset(v_reset: float | None) -> float:
    """``v_reset``, after checking the neuron resets to it: NIR's neurons have no subtractive
    (soft) reset.

    Example:
        >>> hard_reset(None)
        Traceback (most recent call last):
        ...
        ValueError: uses soft reset (v_reset=None, subtract the threshold): NIR's neurons ...
    """
    if v_reset is None:
        raise ValueError(
            "uses soft reset (v_reset=None, subtract the threshold): NIR's neurons reset to "
            "v_reset and have no field for a subtractive reset; build the network with a hard "
            "reset (e.g. v_reset=0.0)")
    return v_reset


def lif_from_nir(tau: float, r: float, dt: float) -> Discrete:
    """snnrs's form of NIR's LIF step with ``tau``, ``r`` and ``dt`` (``v_leak`` is snnrs's
    ``v_reset``).

    Example:
        >>> lif_from_nir(tau=0.002, r=3.0, dt=1e-3)
        Discrete(leak=0.5, decay_input=True, gain=3.0)
    """
    leak = dt / tau
    if math.isclose(r, 1.0, rel_tol=RTOL):
        return Discrete(leak, True, 1.0)
    if math.isclose(r * leak, 1.0, rel_tol=RTOL):
        return Discrete(leak, False, 1.0)
    return Discrete(leak, True, r)


def if_from_nir(r: float, dt: float) -> Discrete:
    """snnrs's form of NIR's IF step: ``H = V + gain * x`` with ``gain = dt * r``.

    Example:
        >>> if_from_nir(r=1e3, dt=1e-3)
        Discrete(leak=0.0, decay_input=False, gain=1.0)
    """
    gain = dt * r
    return Discrete(0.0, False, 1.0 if math.isclose(gain, 1.0, rel_tol=RTOL) else gain)
