"""What every distillation method is: the :class:`Method` base, its registry and the factory.

A method holds the student (and the teacher, when it has one) and any modules of its own (a
feature regressor). Called on a batch, it returns ``{"loss": total, <part>: value, ...}``, every
value a scalar tensor, the parts unweighted; :meth:`Method.parameters_to_train` says what the
optimiser updates.

The teacher is frozen: in ``eval()``, without gradients, outside ``parameters()`` and
``state_dict()`` (so outside the optimiser, the checkpoints and DistributedDataParallel), yet it
follows the method through ``.to()``, ``.cuda()`` and ``.double()``.

A new method is one class in one file::

    @register_method("my-kd")
    class MyKD(Method):
        def __init__(self, student, teacher, weight: float = 1.0): ...
        def forward(self, images, labels): return {"loss": ..., "ce": ..., "my": ...}

Its keyword options (``--method-opt weight=0.5``) are checked against that signature before any
training starts (:func:`check_method_options`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..models.network import StagedNet
from ..nn import BaseNode, NeuronSpec
from ..registry import Registry, check_options

M = TypeVar("M", bound="type[Method]")


class Method(nn.Module):
    """Base of the methods: the student, an optional frozen teacher, and the loss parts.
    Subclasses define ``forward(images [B, C, H, W], labels [B]) -> {"loss": ..., parts...}``.

    Class attributes:
        needs_teacher: whether the method distils from a teacher network (True).
        find_unused_parameters: whether a step may leave some trainable parameters out of its
            loss, so that DistributedDataParallel must look for them (False).
    """

    needs_teacher = True
    find_unused_parameters = False

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None) -> None:
        super().__init__()
        if self.needs_teacher and teacher is None:
            raise ValueError(f"method {type(self).__name__} needs a teacher network")
        self.student = student
        # Not a registered submodule: parameters(), state_dict() and DDP must not see it.
        self._frozen = [] if teacher is None else [teacher.eval().requires_grad_(False)]
        self.teacher_batch_stats = False

    @property
    def teacher(self) -> nn.Module | None:
        """The frozen teacher network, or None."""
        return self._frozen[0] if self._frozen else None

    def _apply(self, fn: Callable, recurse: bool = True) -> Method:
        # .to(), .cuda(), .double() and friends all go through _apply: the teacher follows.
        super()._apply(fn, recurse)
        for teacher in self._frozen:
            teacher._apply(fn, recurse)
        return self

    def train(self, mode: bool = True) -> Method:
        super().train(mode)
        for teacher in self._frozen:
            teacher.eval()
            if mode and self.teacher_batch_stats:
                for m in teacher.modules():
                    if isinstance(m, _BatchNorm):
                        m.train()
        return self

    def use_teacher_batch_stats(self, on: bool = True) -> Method:
        """While the method trains, the teacher's BatchNorms normalise by each batch's own
        statistics (as the SAMD + NLD reference code runs its teacher) rather than by their
        running ones, which stay as trained (momentum 0). Returns the method.

        Example:
            >>> from snnrs import models
            >>> teacher = models.create("convnet", kind="ann")
            >>> m = create_method("kd", models.create("convnet", kind="snn", T=2), teacher)
            >>> m.use_teacher_batch_stats().train().teacher.stages[0][1].training
            True
        """
        self.teacher_batch_stats = bool(on)
        for teacher in self._frozen:
            for m in teacher.modules():
                if isinstance(m, _BatchNorm) and on:
                    m.momentum = 0.0
        return self.train(self.training)

    def parameters_to_train(self) -> list[nn.Parameter]:
        """Everything the optimiser updates: the student's and the method's own parameters."""
        return [p for p in self.parameters() if p.requires_grad]

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer before epoch ``epoch`` (0-based) of ``epochs``; methods with a
        schedule (the hybrid block-wise scheduler) update themselves here."""


METHODS: Registry[type[Method]] = Registry("method")
"""Every registered method class by name, in registration order."""


def register_method(name: str) -> Callable[[M], M]:
    """Registers a :class:`Method` subclass under ``name`` (a class decorator).

    Example:
        >>> import torch.nn.functional as F
        >>> @register_method("ce-only")
        ... class CEOnly(Method):
        ...     needs_teacher = False
        ...     def forward(self, images, labels):
        ...         ce = F.cross_entropy(self.student(images), labels)
        ...         return {"loss": ce, "ce": ce}
        >>> "ce-only" in METHODS
        True
        >>> _ = METHODS.unregister("ce-only")
    """

    def add(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"register_method({name!r}) decorates a Method subclass, got {cls!r}")
        return METHODS.register(name, cls)

    return add


def check_method_options(name: str, options: Mapping[str, Any]) -> None:
    """Checks ``options`` against method ``name``'s constructor (names and plain types), before
    anything is built; a ValueError names the valid options."""
    check_options(f"method {name}", METHODS[name], options, reserved=("student", "teacher"))


def create_method(name: str, student: nn.Module, teacher: nn.Module | None = None,
                  **options: Any) -> Method:
    """The method ``name`` (one of :data:`METHODS`) over ``student`` and ``teacher``; options go
    to its constructor (weights, temperatures, variants).

    Example:
        >>> from snnrs import models
        >>> teacher = models.create("convnet", kind="ann")
        >>> method = create_method("kd", models.create("convnet", kind="snn", T=2), teacher)
        >>> method.to(torch.float64).teacher.stages[0][0].weight.dtype    # the teacher follows
        torch.float64
        >>> any(k.startswith("teacher") for k in method.state_dict())
        False
    """
    check_method_options(name, options)
    return METHODS[name](student, teacher, **options)


def stage_channels(net: StagedNet, stage: int) -> int:
    """The output channels of ``net``'s stage ``stage`` (its last conv's)."""
    convs = [m for m in net.stages[stage].modules() if hasattr(m, "out_channels")]
    if not convs:
        raise ValueError(f"stage {stage} of the network has no conv to read its width from")
    return convs[-1].out_channels


def check_method_neuron(name: str, options: Mapping[str, Any], neuron: str) -> None:
    """Refuses, before any work, method ``name`` training by rate-based backprop (its
    ``backprop`` option, given or its default, is ``"rate"``) with a neuron kind that has no
    rate mode (every family but IF / LIF / PLIF).

    Example:
        >>> check_method_neuron("hybrid", {}, "alif")
        Traceback (most recent call last):
        ...
        ValueError: method hybrid trains by rate-based backprop (backprop='rate'), which ...
    """
    param = inspect.signature(METHODS[name]).parameters.get("backprop")
    if param is None or options.get("backprop", param.default) != "rate":
        return
    node = NeuronSpec(neuron).build()
    if type(node).rate is BaseNode.rate:
        raise ValueError(
            f"method {name} trains by rate-based backprop (backprop='rate'), which needs the "
            f"IF / LIF / PLIF family's rate mode; neuron {neuron!r} ({type(node).__name__}) has "
            "none: choose --neuron lif, if or plif, or --method-opt backprop=bptt")
