"""A griffe extension for the API reference: reads snnrs's docstrings as they are written.

The docstrings use Sphinx-style roles (``:class:`~snnrs.nn.LIF```) and "Example:" sections.
Here a role becomes a link to the object's entry where the reference has one (autorefs'
optional reference: plain code where the object is not documented), and "Example:" the
Google-style "Examples:" section, whose ``>>>`` lines render as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(~?)\.?([\w.]+)`")
EXAMPLE = re.compile(r"^(\s*)Example:\s*$", flags=re.M)


def _find(scope: griffe.Object, path: str) -> str | None:
    """The full path of ``path`` as seen from ``scope`` and its parents, or None."""
    head, _, rest = path.partition(".")
    while scope is not None:
        try:
            target = scope.resolve(head)
        except griffe.NameResolutionError:
            scope = scope.parent
            continue
        return f"{target}.{rest}" if rest else target
    return None


def _link(obj: griffe.Object, match: re.Match) -> str:
    short, path = match.groups()
    text = path.rsplit(".", 1)[-1] if short else path
    target = path if path.startswith("snnrs") else _find(obj, path)
    if target is None:
        return f"`{text}`"
    return f'<autoref identifier="{target}" optional><code>{text}</code></autoref>'


def _objects(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


class SnnrsDocstrings(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                text = EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
                obj.docstring.value = ROLE.sub(lambda m, o=obj: _link(o, m), text)
