"""Argument checks shared by the loaders, with errors that name the parameter."""

from __future__ import annotations

import numbers
from collections.abc import Sequence


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]``, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_fraction(name: str, value: object) -> float:
    """``value`` as a ``float`` in ``[0, 1]``, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def shown(text: object, limit: int = 60) -> str:
    """``str(text)``, cut to ``limit`` characters with the full length said: for a message that
    quotes a line or a number of a file.

    Example:
        >>> shown("7" * 5000, limit=5)
        '77777... (5000 characters)'
    """
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def listed(names: Sequence[object], most: int) -> str:
    """The first ``most`` of ``names``, joined by commas, and how many more there are: for a
    message that lists what it found.

    Example:
        >>> listed(["a", "b", "c", "d"], 2)
        'a, b and 2 more'
    """
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(map(str, names[:most])) + more
