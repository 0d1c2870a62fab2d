"""Evaluation of a trained network: accuracy, accuracy under test-time noise, firing rates,
synaptic operations and an energy estimate.

Images arrive as the data package keeps them (``uint8 [N, C, H, W]``); they are scaled to
``[0, 1]``, optionally corrupted (noise is defined on ``[0, 1]`` images, before normalisation, as
KDSNN's robustness evaluation does), normalised, and classified. ANNs and SNNs are evaluated the
same way; an ANN simply has no firing rate.

Example:
    >>> from snnrs import data, models
    >>> from snnrs.evaluate import accuracy
    >>> test = data.ImageSet(torch.zeros(8, 1, 28, 28, dtype=torch.uint8), torch.zeros(8).long())
    >>> net = models.create("convnet", kind="snn", T=2)
    >>> 0.0 <= accuracy(net, test, data.Normalize((0.5,), (0.25,))) <= 1.0
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch import Tensor, nn

from . import data
from .models.measure import measure

Noise = Callable[[Tensor, "torch.Generator | None"], Tensor]

#: The test-time corruptions of KDSNN's robustness evaluation, by kind and level.
NOISE_LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian": (0.05, 0.1, 0.2),
    "salt_pepper": (0.02, 0.05, 0.1),
}
_NOISE_FUNCTIONS = {"gaussian": data.gaussian_noise, "salt_pepper": data.salt_and_pepper}


def noise(kind: str, level: float) -> Noise:
    """The corruption ``kind`` (a key of :data:`NOISE_LEVELS`) at ``level`` (Gaussian sigma or
    salt-and-pepper density), as a function ``(images01, generator) -> images01``.

    Example:
        >>> x = noise("salt_pepper", 1.0)(torch.full((1, 1, 4, 4), 0.5), None)
        >>> sorted(x.unique().tolist()) in ([0.0], [1.0], [0.0, 1.0])
        True
    """
    if kind not in _NOISE_FUNCTIONS:
        raise ValueError(f"unknown noise {kind!r}; expected one of {', '.join(_NOISE_FUNCTIONS)}")
    corrupt = _NOISE_FUNCTIONS[kind]
    return lambda images, generator: corrupt(images, level, generator=generator)


def _inputs(imageset: data.ImageSet, normalize: nn.Module, batch_size: int, device: torch.device,
            corrupt: Noise | None, generator: torch.Generator | None,
            ) -> Iterator[tuple[Tensor, Tensor]]:
    """Normalised float batches ``[b, C, H, W]`` and their labels ``[b]`` on ``device``."""
    for start in range(0, len(imageset), batch_size):
        images = data.to_float(imageset.images[start:start + batch_size], device)
        if corrupt is not None:
            images = corrupt(images, generator)
        yield normalize(images), imageset.labels[start:start + batch_size].to(device)


class _EvalMode:
    """``model.eval()`` for the duration of a ``with`` block, then the mode it had."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.was_training = model, model.training

    def __enter__(self) -> nn.Module:
        return self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return batch_size


class NonFiniteOutputError(ValueError):
    """A network answered NaN or infinite logits: it is broken, and has no accuracy."""


class Score(NamedTuple):
    """Top-1 accuracy (a fraction) and how many distinct classes the network predicted."""

    accuracy: float
    classes_predicted: int


@torch.no_grad()
def score(model: nn.Module, imageset: data.ImageSet, normalize: nn.Module, *,
          batch_size: int = 256, device: str | torch.device = "cpu",
          noise: Noise | None = None, seed: int = 0) -> Score:
    """The :class:`Score` of ``model`` on ``imageset``, in eval mode, optionally with the
    corruption ``noise`` (see :func:`noise`) drawn from a generator seeded with ``seed``.

    ``model`` maps normalised images ``[B, C, H, W]`` to logits ``[B, K]``; a logit that is
    not finite raises :class:`NonFiniteOutputError` (a broken network has no accuracy).
    """
    device = torch.device(device)
    batch_size = _check_batch_size(batch_size)
    if len(imageset) == 0:
        raise ValueError("cannot measure accuracy on an empty image set")
    generator = torch.Generator(device).manual_seed(seed) if noise is not None else None
    normalize = normalize.to(device)
    correct, broken, predicted = 0, 0, set()
    with _EvalMode(model):
        for images, labels in _inputs(imageset, normalize, batch_size, device, noise, generator):
            logits = model(images)
            guess = logits.argmax(1)
            right, bad = torch.stack([(guess == labels).sum(),
                                      (~logits.isfinite()).any(1).sum()]).tolist()
            correct, broken = correct + right, broken + bad
            predicted.update(guess.unique().tolist())
    if broken:
        raise NonFiniteOutputError(
            f"the network's outputs are NaN or infinite for {broken} of {len(imageset)} images"
            f"{'' if noise is None else ' under noise'}: a broken network has no accuracy (are "
            "its weights finite and of a sane size?)")
    return Score(correct / len(imageset), len(predicted))


def accuracy(model: nn.Module, imageset: data.ImageSet, normalize: nn.Module, *,
             batch_size: int = 256, device: str | torch.device = "cpu",
             noise: Noise | None = None, seed: int = 0) -> float:
    """Top-1 accuracy (a fraction); see :func:`score`."""
    return score(model, imageset, normalize, batch_size=batch_size, device=device, noise=noise,
                 seed=seed).accuracy


def robustness_scores(model: nn.Module, imageset: data.ImageSet, normalize: nn.Module, *,
                      batch_size: int = 256, device: str | torch.device = "cpu",
                      seed: int = 0) -> dict[str, Score]:
    """The :class:`Score` under every corruption of :data:`NOISE_LEVELS`, keyed
    ``"<kind>_<level>"`` (``"gaussian_0.05"``, ..., ``"salt_pepper_0.1"``); the same seed for
    every network, so networks are compared on identical corrupted images."""
    return {f"{kind}_{level:g}": score(model, imageset, normalize, batch_size=batch_size,
                                       device=device, noise=noise(kind, level), seed=seed)
            for kind, levels in NOISE_LEVELS.items() for level in levels}


def robustness(model: nn.Module, imageset: data.ImageSet, normalize: nn.Module, *,
               batch_size: int = 256, device: str | torch.device = "cpu",
               seed: int = 0) -> dict[str, float]:
    """Accuracy under every corruption of :data:`NOISE_LEVELS` (see
    :func:`robustness_scores`)."""
    scores = robustness_scores(model, imageset, normalize, batch_size=batch_size,
                               device=device, seed=seed)
    return {k: s.accuracy for k, s in scores.items()}


def evaluate(model: nn.Module, imageset: data.ImageSet, normalize: nn.Module, *,
             batch_size: int = 256, device: str | torch.device = "cpu", noise: bool = True,
             seed: int = 0, measure_samples: int = 256) -> dict:
    """Everything the run summary reports about one network, as plain numbers for JSON:
    ``accuracy``; ``noise`` (:func:`robustness`, when ``noise``; never for event frames,
    counts to which pixel noise on ``[0, 1]`` images does not apply); ``single_class``, the
    settings (``"clean"`` or a noise key) under which the network predicted one class for
    every image although the labels hold several (a collapse); the mean ``firing_rate``
    (``None`` for an ANN), ``macs``, ``acs``, ``synaptic_ops`` (their sum), ``energy_pj`` and
    ``params`` per sample, measured on the first ``measure_samples`` images; and ``layers``,
    one entry per layer with its name, type, firing rate, operations and energy."""
    device = torch.device(device)
    scores = {"clean": score(model, imageset, normalize, batch_size=batch_size, device=device)}
    noise = noise and imageset.steps is None  # pixel noise is for [0, 1] images, not counts
    if noise:
        scores.update(robustness_scores(model, imageset, normalize, batch_size=batch_size,
                                        device=device, seed=seed))
    result: dict = {"accuracy": scores["clean"].accuracy}
    if noise:
        result["noise"] = {k: s.accuracy for k, s in scores.items() if k != "clean"}
    several = imageset.labels.unique().numel() > 1
    result["single_class"] = [k for k, s in scores.items() if several and s.classes_predicted == 1]
    subset = data.ImageSet(imageset.images[:measure_samples], imageset.labels[:measure_samples])
    images, _ = next(_inputs(subset, normalize.to(device), measure_samples, device, None, None))
    with _EvalMode(model):
        summary = measure(model, images)
    result.update(firing_rate=summary.mean_firing_rate, macs=summary.macs, acs=summary.acs,
                  synaptic_ops=summary.macs + summary.acs, energy_pj=summary.energy_pj,
                  params=summary.params,
                  layers=[{"name": s.name, "type": s.type, "firing_rate": s.firing_rate,
                           "macs": s.macs, "acs": s.acs, "energy_pj": s.energy_pj}
                          for s in summary.layers])
    return result
