"""What a training job will do, printed before it starts, and how long it has left.

A :class:`Plan` holds the job's phases (a network trained for some epochs) and its final
evaluation. :meth:`Plan.text` is what the job prints before it starts; after every epoch,
:meth:`Plan.seconds_left` estimates the rest of the whole job from the epochs this run has timed:

- a phase that has timed epochs takes, per epoch left, the mean of its timed epochs (training
  and test together);
- a phase not timed yet is priced from the latest timed phase of the same cost per image, else
  from the latest timed phase scaled by cost: an ANN costs 1 per image, an SNN its ``T`` (an
  SNN runs its layers once per time step);
- the final evaluation runs each network over the test set once clean and once per noise
  setting, each pass priced as that network's per-epoch test.

Nothing is guessed before the first epoch: until then there is no estimate (None).

Example:
    >>> plan = Plan("distill", [Phase("teacher", 2, 1.0, "convnet ANN"),
    ...                         Phase("student", 2, 4.0, "convnet SNN T=4")],
    ...             evaluated=("teacher", "student"), passes=7)
    >>> plan.seconds_left() is None
    True
    >>> plan.record("teacher", train_seconds=1.0, test_seconds=0.1)
    >>> round(plan.seconds_left(), 2)   # 1.1 + 2 * 4.4 + 7 * (0.1 + 0.4)
    13.4
    >>> duration(75.4)
    '1 min 15 s'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Phase:
    """One network trained for ``epochs`` epochs (0: loaded, not trained).

    Attributes:
        name: ``teacher``, ``student`` or ``baseline``: the phase's checkpoint and metrics rows.
        epochs: the epochs it trains in all.
        cost: its time per image relative to an ANN's (1; an SNN's is ``T``).
        about: what it is, in a few words, for the plan.
        done: epochs finished so far (by an earlier run too, when resumed).
        train_seconds, test_seconds: the epochs this run timed: training, then the test pass.
    """

    name: str
    epochs: int
    cost: float
    about: str
    done: int = 0
    train_seconds: list[float] = field(default_factory=list)
    test_seconds: list[float] = field(default_factory=list)

    @property
    def timed(self) -> bool:
        return bool(self.train_seconds)

    def epoch_seconds(self) -> tuple[float, float]:
        """The mean timed epoch: ``(training, test)`` seconds."""
        n = len(self.train_seconds)
        return sum(self.train_seconds) / n, sum(self.test_seconds) / n


@dataclass
class Plan:
    """A job's phases in order, the networks evaluated at the end (``evaluated``) and the test
    passes each takes there (``passes``: 1 clean + one per noise setting)."""

    command: str
    phases: list[Phase]
    evaluated: Sequence[str] = ()
    passes: int = 1
    header: str = ""
    evaluation: str = ""

    def phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    def resumed(self, name: str, done: int) -> None:
        """Phase ``name`` continues after ``done`` epochs an earlier run trained."""
        self.phase(name).done = done

    def record(self, name: str, train_seconds: float, test_seconds: float) -> None:
        """Phase ``name`` finished an epoch: ``train_seconds`` of training, then
        ``test_seconds`` of testing."""
        phase = self.phase(name)
        phase.done += 1
        phase.train_seconds.append(train_seconds)
        phase.test_seconds.append(test_seconds)

    def seconds_left(self) -> float | None:
        """The estimated seconds the job still takes (see the module's description), or None
        before any epoch was timed."""
        if not any(p.timed for p in self.phases):
            return None
        left = sum((p.epochs - p.done) * sum(self._priced(p)) for p in self.phases)
        return left + sum(self.passes * self._priced(self.phase(n))[1] for n in self.evaluated)

    def _priced(self, phase: Phase) -> tuple[float, float]:
        """``(training, test)`` seconds of one epoch of ``phase``: its own timing, else the
        latest timed phase's of the same cost, else the latest timed phase's scaled by cost."""
        if phase.timed:
            return phase.epoch_seconds()
        timed = [p for p in self.phases if p.timed]
        like = [p for p in timed if p.cost == phase.cost]
        reference = (like or timed)[-1]
        scale = phase.cost / reference.cost
        train, test = reference.epoch_seconds()
        return train * scale, test * scale

    def left_text(self) -> str:
        """``"~1 min 15 s left"`` for the whole job, or ``""`` before any timing."""
        seconds = self.seconds_left()
        return "" if seconds is None else f"~{duration(seconds)} left"

    def text(self) -> str:
        """The plan as printed before the job starts: the header, one line per phase (its
        network and epochs), then the evaluation.

        Example:
            >>> print(Plan("train-teacher", [Phase("teacher", 3, 1.0, "convnet ANN")],
            ...            header="snnrs train-teacher: mnist", evaluation="clean").text())
            snnrs train-teacher: mnist
              teacher     convnet ANN  3 epochs
              evaluation  clean
        """
        rows = [(p.name, p.about, _epochs(p)) for p in self.phases]
        name_w = max(len("evaluation"), *(len(r[0]) for r in rows))
        about_w = max(len(r[1]) for r in rows)
        lines = [self.header] if self.header else []
        lines += [f"  {n:<{name_w}}  {a:<{about_w}}  {e}".rstrip() for n, a, e in rows]
        if self.evaluation:
            lines.append(f"  {'evaluation':<{name_w}}  {self.evaluation}")
        return "\n".join(lines)


def _epochs(phase: Phase) -> str:
    if phase.epochs == 0:
        return "loaded, not trained"
    return f"{phase.epochs} epoch{'s' * (phase.epochs != 1)}"


def duration(seconds: float) -> str:
    """``seconds`` rounded for people: ``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``.

    Example:
        >>> duration(4.4), duration(185), duration(3725)
        ('4 s', '3 min 05 s', '1 h 02 min')
    """
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
