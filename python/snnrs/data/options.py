"""What a dataset's loader is given: the run settings it takes and its own options, checked.

A registered loader is called as ``loader(data_dir, seed, **kwargs)``. Its keyword arguments
are of two kinds: the run's settings it takes (:attr:`Dataset.run_settings`, ``T`` for event
data, which the trainer passes from its own configuration) and the dataset's own options
(``image_size`` of ``folder``, ``split_by`` of the event sets; ``--dataset-opt KEY=VALUE``).
:func:`loader_kwargs` builds them, the one place that decides what a dataset needs;
:func:`check_dataset_options` checks the options against the loader's signature (names, and
the values' types where the annotation says them) before any data is read.

Example:
    >>> loader_kwargs("n-mnist", {"T": 8, "lr": 0.1}, {"split_by": "time"})
    {'T': 8, 'split_by': 'time'}
    >>> dataset_options("cifar10-dvs")
    ['split_by', 'size']
    >>> check_dataset_options("folder", {"size": 16})
    Traceback (most recent call last):
    ...
    ValueError: dataset folder has no option 'size'; its options: image_size
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from .datasets import DATASETS

#: The loader's parameters that every dataset takes from the caller, not as options.
RESERVED = ("data_dir", "seed")


def dataset_options(name: str) -> list[str]:
    """The options of dataset ``name``: its loader's keyword parameters, less ``data_dir``,
    ``seed`` and the run settings it takes (``T``)."""
    entry = DATASETS[name]
    params = inspect.signature(entry.loader).parameters
    taken = (*RESERVED, *entry.run_settings)
    return [n for n, p in params.items() if n not in taken
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_dataset_options(name: str, options: Mapping[str, Any]) -> None:
    """A ValueError naming dataset ``name``, the key and the dataset's options unless its
    loader takes every key of ``options`` (a run setting such as ``T`` is not an option) with a
    value of the type its annotation names (``int``, ``tuple[int, int]``, ``Literal[...]``...;
    a list stands for a tuple, as YAML has no tuples).

    Example:
        >>> check_dataset_options("n-mnist", {"split_by": "space"})
        Traceback (most recent call last):
        ...
        ValueError: dataset n-mnist: option split_by must be one of 'number', 'time', got ...
    """
    if not isinstance(options, Mapping):
        raise ValueError(f"dataset {name}: its options must be a mapping, got {options!r}")
    entry, valid = DATASETS[name], dataset_options(name)
    params = inspect.signature(entry.loader).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
    hints = _hints(entry.loader)
    for key, value in options.items():
        if key not in valid:
            if key in entry.run_settings:
                raise ValueError(f"dataset {name} has no option {key!r} (it is the run's "
                                 f"setting {key}: --{key}); its options: {_listed(valid)}")
            if open_ended and key not in RESERVED:
                continue
            raise ValueError(f"dataset {name} has no option {key!r}; its options: "
                             f"{_listed(valid)}")
        if key in hints and not fits(hints[key], value):
            raise ValueError(f"dataset {name}: option {key} must be {describe(hints[key])}, "
                             f"got {value!r}; its options: {_listed(valid)}")


def loader_kwargs(name: str, settings: Mapping[str, Any],
                  options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of dataset ``name``'s loader: the run settings it takes, read from
    ``settings`` (a configuration's values), then its ``options`` (checked,
    :func:`check_dataset_options`).

    Example:
        >>> loader_kwargs("folder", {"T": 4}, {"image_size": 16})
        {'image_size': 16}
    """
    options = dict(options or {})
    check_dataset_options(name, options)
    return {**{k: settings[k] for k in DATASETS[name].run_settings}, **options}


def fits(hint: Any, value: Any) -> bool:
    """Whether ``value`` has the type ``hint`` names: bool, int, float (ints too), str, None,
    ``Literal``, unions, ``tuple[...]`` and ``list[...]``/``Sequence[...]`` (a list or a
    tuple for either); any other annotation admits every value (the loader checks it).

    Example:
        >>> fits(int | tuple[int, int] | None, [16, 16]), fits(int | None, True)
        (True, False)
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(a, value) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if hint in (None, type(None)):
        return value is None
    if hint in (bool, int, float, str):
        if isinstance(value, bool):
            return hint is bool
        return isinstance(value, (int, float) if hint is float else hint)
    if origin in (tuple, list, Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(fits, args, value))
        return not args or all(fits(args[0], v) for v in value)
    return True


def describe(hint: Any) -> str:
    """``hint`` in words for a message.

    Example:
        >>> describe(int | tuple[int, int] | None)
        'int or tuple[int, int] or None'
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(map(describe, args))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if hint in (None, type(None)):
        return "None"
    if origin is None and isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an annotation that does not evaluate: left to the loader
        return {}


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) or "(none)"
