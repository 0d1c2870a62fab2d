"""ANN-to-SNN weight transfer between twins of one topology."""

from __future__ import annotations

import torch
from torch import nn

from ..nn import BaseNode


def _neuron_keys(model: nn.Module) -> set[str]:
    keys = set()
    for name, m in model.named_modules():
        if isinstance(m, BaseNode):
            keys.update(f"{name}.{k}" if name else k for k in m.state_dict())
    return keys


@torch.no_grad()
def transfer_weights(teacher: nn.Module, student: nn.Module) -> nn.Module:
    """Copies every parameter and buffer of ``teacher`` into ``student``; returns ``student``.

    The two must share a topology (e.g. ``create(name, kind="ann")`` and
    ``create(name, kind="snn")``): every teacher entry must exist in the student with the same
    shape, and the student may only add neuron parameters (PLIF's ``w``), which keep their
    values. Anything else raises a ValueError naming the entries.

    Example:
        >>> from snnrs import models
        >>> ann = models.create("resnet20", kind="ann")
        >>> snn = transfer_weights(ann, models.create("resnet20", kind="snn", neuron="plif"))
        >>> torch.equal(snn.stem[0].weight, ann.stem[0].weight)
        True
    """
    src, dst = teacher.state_dict(), student.state_dict()
    missing = sorted(src.keys() - dst.keys())
    extra = sorted(dst.keys() - src.keys() - _neuron_keys(student))
    shapes = sorted(k for k in src.keys() & dst.keys() if src[k].shape != dst[k].shape)
    problems = [f"{what}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                for what, keys in (("not in the student", missing),
                                   ("not in the teacher", extra), ("shape differs", shapes))
                if keys]
    if problems:
        raise ValueError("teacher and student differ in topology; " + "; ".join(problems))
    for key, value in src.items():
        dst[key].copy_(value)
    return student
