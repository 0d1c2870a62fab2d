"""Paper recipes: each reference experiment's settings as data, runnable in one command.

A recipe is a YAML file: its ``name``, a ``title``, the ``source`` it reproduces (the authors'
repository and files, or the paper where no code exists), the training ``settings`` (keys of
:class:`snnrs.train.TrainConfig`) and every known ``differences`` from that source. A recipe
may name a ``base`` recipe whose settings and differences it extends. The built-in ones ship in
this package's folder; :func:`register_recipe` adds more (``--import`` a file that calls it).

``snnrs distill --recipe NAME`` takes a recipe's settings as the base that ``--config`` and the
flags override; ``snnrs recipes`` lists them and ``snnrs recipe show NAME`` prints one resolved.

Example:
    >>> RECIPES["samd-nld-cifar10"].settings["model"]
    'resnet19'
    >>> RECIPES["samd-nld-cifar100"].settings["dataset"]      # extends samd-nld-cifar10
    'cifar100'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ..registry import Registry

FIELDS = ("name", "title", "source", "settings", "differences", "base")


@dataclass(frozen=True)
class Recipe:
    """A reference experiment's training settings.

    Attributes:
        name: what ``--recipe`` takes.
        title: one line: the method, network and data.
        source: where the settings come from (repository and files, or the paper).
        settings: :class:`~snnrs.train.TrainConfig` keys and values.
        differences: every known way the recipe departs from its source.
    """

    name: str
    title: str
    source: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    differences: tuple[str, ...] = ()


RECIPES: Registry[Recipe] = Registry("recipe")
"""Every registered recipe by name, in registration order."""


def register_recipe(recipe: Recipe) -> Recipe:
    """Adds ``recipe`` to :data:`RECIPES`; returns it."""
    return RECIPES.register(recipe.name, recipe)


def read_recipe(path: str | os.PathLike) -> Recipe:
    """The recipe in YAML file ``path`` (read safely), extended from its ``base`` recipe (which
    must be registered) when it names one. A missing or unknown key is a ValueError naming the
    file."""
    return _recipe(Path(path), _read_yaml(Path(path)))


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"recipe {path}: not valid YAML ({e})") from None


def _recipe(path: Path, values: Any) -> Recipe:
    if not isinstance(values, dict):
        raise ValueError(f"recipe {path}: expected a mapping of {', '.join(FIELDS)}")
    unknown = sorted(values.keys() - set(FIELDS))
    missing = [k for k in ("name", "title", "source", "settings") if k not in values]
    if unknown or missing:
        raise ValueError(f"recipe {path}: " + "; ".join(
            [f"unknown key(s) {', '.join(unknown)}"] * bool(unknown)
            + [f"missing key(s) {', '.join(missing)}"] * bool(missing)))
    if not isinstance(values["settings"], dict):
        raise ValueError(f"recipe {path}: settings must be a mapping")
    settings, differences = dict(values["settings"]), list(values.get("differences") or ())
    if values.get("base") is not None:
        base = RECIPES[values["base"]]
        settings = {**base.settings, **settings}
        differences = [*base.differences, *differences]
    return Recipe(str(values["name"]), str(values["title"]), str(values["source"]),
                  MappingProxyType(settings), tuple(str(d) for d in differences))


def _register_builtin() -> None:
    folder = Path(str(resources.files(__package__)))
    pending = {p: _read_yaml(p) for p in sorted(folder.glob("*.yaml"))}
    while pending:  # a recipe after its base, whatever the file names
        ready = [p for p, v in pending.items() if v.get("base") in (None, *RECIPES)]
        if not ready:
            raise ValueError(f"recipes with unknown bases: {', '.join(p.name for p in pending)}")
        for p in ready:
            register_recipe(_recipe(p, pending.pop(p)))


_register_builtin()
