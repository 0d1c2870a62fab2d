"""One way to extend snnrs: a named registry, filled by a decorator, for every extension point.

Models (:func:`snnrs.models.register_model`), distillation methods
(:func:`snnrs.distill.register_method`), datasets (:func:`snnrs.data.register_dataset`) and
neuron kinds (:func:`snnrs.nn.register_neuron`) each keep a :class:`Registry`. A new one is one
file and one decorator; every listing (the CLI's choices and ``--help``, error messages) reads
the registry, so it appears everywhere at once.

:func:`check_options` checks options meant for a registered constructor against its signature
before anything is built, so a typo fails at once with the valid names.

Example:
    >>> colours = Registry("colour")
    >>> @colours.decorator()
    ... def red():
    ...     return "#f00"
    >>> colours["red"]()
    '#f00'
    >>> try:
    ...     colours["blue"]
    ... except ValueError as e:
    ...     print(e)
    unknown colour 'blue'; expected one of: red
"""

from __future__ import annotations

import fnmatch
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """A name no entry of a registry has: a ValueError for callers, a KeyError for ``Mapping``
    (``.get``, ``in``)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Mapping[str, T], Generic[T]):
    """Entries by name, in registration order; a read-only mapping with ``register``.

    Args:
        kind: what an entry is, for messages (``"model"``, ``"method"``...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Adds ``entry`` under ``name``; registering the same entry again is a no-op, another
        one under a taken name a ValueError."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"a {self.kind} named {name!r} is registered already")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str | None = None) -> Callable[[T], T]:
        """``@registry.decorator(name)``: registers the decorated object under ``name`` (default:
        its ``__name__``) and returns it unchanged."""
        return lambda entry: self.register(name or entry.__name__, entry)

    def unregister(self, name: str) -> T:
        """Removes and returns the entry ``name``."""
        self[name]
        return self._entries.pop(name)

    def names(self, pattern: str = "*") -> list[str]:
        """Names matching the shell-style ``pattern``, in registration order."""
        return [n for n in self._entries if fnmatch.fnmatchcase(n, pattern)]

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(f"unknown {self.kind} {name!r}; expected one of: "
                                   f"{', '.join(self._entries)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


def check_options(what: str, fn: Callable[..., Any], options: Mapping[str, Any],
                  reserved: tuple[str, ...] = ()) -> None:
    """Checks that ``fn`` (a registered constructor) takes every key of ``options`` and that each
    value has the type its annotation names (for plain annotations: bool, int, float, str and
    their optional and union forms); ``reserved`` parameters are the caller's, not options.

    Raises a ValueError naming ``what``, the bad key and the valid ones.

    Example:
        >>> def kd(student, teacher=None, alpha: float = 0.9, temperature: float = 4.0): ...
        >>> check_options("method kd", kd, {"alpah": 0.5}, reserved=("student", "teacher"))
        Traceback (most recent call last):
        ...
        ValueError: method kd has no option 'alpah'; its options: alpha, temperature
    """
    params = inspect.signature(fn).parameters
    valid = [n for n, p in params.items() if n not in reserved
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
    try:
        hints = typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn)
    except Exception:
        hints = {}
    for key, value in options.items():
        if key not in valid:
            if open_ended:
                continue
            raise ValueError(f"{what} has no option {key!r}; its options: "
                             f"{', '.join(valid) or '(none)'}")
        allowed = _plain_types(hints.get(key))
        if allowed and not _admits(allowed, value):
            names = " or ".join(sorted({"None" if t is type(None) else t.__name__
                                        for t in allowed}))
            raise ValueError(f"{what}: option {key} must be {names}, got {value!r}")


def _plain_types(hint: Any) -> tuple[type, ...] | None:
    """The runtime types a plain annotation admits, or None when the annotation is anything
    richer (a callable, a sequence...): such values are left to the constructor."""
    if hint is None:
        return None
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint) if union else (hint,)
    if not all(a in (bool, int, float, str, type(None)) for a in args):
        return None
    return tuple(args)


def _admits(allowed: tuple[type, ...], value: Any) -> bool:
    """Whether ``value`` fits: ints pass for floats; bools only where bool is named."""
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and float in allowed:
        return True
    return isinstance(value, allowed)
