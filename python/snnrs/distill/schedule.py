"""The hybrid block-wise scheduler (docs/methods.md, ``hybrid``): per epoch, each hybrid's weight.

A student and teacher of ``N`` stages give ``N - 1`` hybrids ``M_1 .. M_{N-1}``; ``M_i`` runs
SNN stages ``1..i`` and the ANN's stages ``i+1..N``. A weight of 0 switches a hybrid off (it is
not even computed). The scheduler is stateless: the weights are a pure function of
``(epoch, epochs)``, so a resumed run gets them back by asking again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

SCHEDULES = ("all", "progressive")

#: A custom schedule: ``(epoch, epochs, n_hybrids) -> n_hybrids weights``.
ScheduleFn = Callable[[int, int, int], Sequence[float]]


def default_weights(n_hybrids: int) -> tuple[float, ...]:
    """``w_i = 2^-(N - i)`` for ``i = 1 .. N-1`` (``N = n_hybrids + 1`` stages).

    Example:
        >>> default_weights(3)
        (0.125, 0.25, 0.5)
    """
    _check_count(n_hybrids)
    return tuple(2.0 ** -(n_hybrids + 1 - i) for i in range(1, n_hybrids + 1))


def _check_count(n_hybrids: int) -> int:
    if isinstance(n_hybrids, bool) or not isinstance(n_hybrids, int) or n_hybrids < 1:
        raise ValueError(f"n_hybrids must be an integer >= 1 (a network of at least 2 stages), "
                         f"got {n_hybrids!r}")
    return n_hybrids


def check_weights(weights: Sequence[float], n_hybrids: int, what: str = "weights"
                  ) -> tuple[float, ...]:
    """``weights`` as floats, after checking there are ``n_hybrids`` of them, finite and >= 0."""
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be a sequence of {n_hybrids} numbers, got "
                         f"{weights!r}") from err
    if len(values) != n_hybrids:
        raise ValueError(f"{what} must hold one weight per hybrid ({n_hybrids}), got "
                         f"{len(values)}: {values}")
    if not all(math.isfinite(w) and w >= 0 for w in values):
        raise ValueError(f"{what} must be finite and >= 0, got {values}")
    return values


def _check_epoch(epoch: int, epochs: int) -> None:
    for name, value in (("epoch", epoch), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if epochs < 1 or not 0 <= epoch < epochs:
        raise ValueError(f"expected 0 <= epoch < epochs, got epoch={epoch}, epochs={epochs}")


class HybridScheduler:
    """Which hybrids train in an epoch, and with what weight.

    - ``"all"`` (default): every hybrid at its base weight from the first epoch.
    - ``"progressive"``: the hybrids start one after another, from the deepest ANN suffix
      (``M_1``: SNN stage 1, then the ANN's stages 2..N) to the shallowest (``M_{N-1}``: only
      the ANN's last stage), so ANN blocks are replaced by SNN blocks from the input onwards.
      ``M_i`` starts at epoch ``(i - 1) * epochs // (N - 1)`` and its weight ramps linearly
      over ``ramp_epochs`` epochs (default ``max(1, epochs // (N - 1))``) from
      ``w_i / ramp_epochs`` to ``w_i``; with the default ramp every hybrid has its full weight
      in the last epoch.
    - a callable ``(epoch, epochs, n_hybrids) -> weights`` gives the weights itself.

    Args:
        n_hybrids: ``N - 1`` for networks of ``N`` stages.
        schedule: ``"all"``, ``"progressive"`` or a callable.
        weights: base weights of the named schedules, one per hybrid (default
            :func:`default_weights`, ``2^-(N - i)``).
        ramp_epochs: length of the progressive ramp, >= 1.

    Example:
        >>> HybridScheduler(3)(0, 10)
        (0.125, 0.25, 0.5)
        >>> s = HybridScheduler(3, "progressive")
        >>> [s(e, 6) for e in (0, 1, 2, 5)]
        [(0.0625, 0.0, 0.0), (0.125, 0.0, 0.0), (0.125, 0.125, 0.0), (0.125, 0.25, 0.5)]
        >>> HybridScheduler(2, lambda epoch, epochs, n: [1.0, epoch / epochs])(5, 10)
        (1.0, 0.5)
    """

    def __init__(self, n_hybrids: int, schedule: str | ScheduleFn = "all",
                 weights: Sequence[float] | None = None, ramp_epochs: int | None = None) -> None:
        self.n_hybrids = _check_count(n_hybrids)
        if callable(schedule):
            if weights is not None or ramp_epochs is not None:
                raise ValueError("weights and ramp_epochs apply to the named schedules; a "
                                 "callable schedule returns the weights itself")
        elif schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES} or a "
                             "callable (epoch, epochs, n_hybrids) -> weights")
        if ramp_epochs is not None and (isinstance(ramp_epochs, bool)
                                        or not isinstance(ramp_epochs, int) or ramp_epochs < 1):
            raise ValueError(f"ramp_epochs must be an integer >= 1, got {ramp_epochs!r}")
        self.schedule = schedule
        self.base_weights = (default_weights(n_hybrids) if weights is None
                             else check_weights(weights, n_hybrids))
        self.ramp_epochs = ramp_epochs

    def __call__(self, epoch: int, epochs: int) -> tuple[float, ...]:
        """The weights of ``M_1 .. M_{N-1}`` in epoch ``epoch`` (0-based) of ``epochs``."""
        _check_epoch(epoch, epochs)
        n = self.n_hybrids
        if callable(self.schedule):
            return check_weights(self.schedule(epoch, epochs, n), n,
                                 "the schedule's weights")
        if self.schedule == "all":
            return self.base_weights
        ramp = self.ramp_epochs or max(1, epochs // n)
        return tuple(w * min(1.0, max(0.0, (epoch - j * epochs // n + 1) / ramp))
                     for j, w in enumerate(self.base_weights))

    def __repr__(self) -> str:
        name = getattr(self.schedule, "__name__", self.schedule)
        return (f"HybridScheduler(n_hybrids={self.n_hybrids}, schedule={name!r}, "
                f"weights={self.base_weights}, ramp_epochs={self.ramp_epochs})")
