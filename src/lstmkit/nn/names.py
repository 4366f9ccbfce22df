"""Named choices: one error for unknown names, one decorator for registries (stdlib only).

Every registry in lstmkit is a plain dict filled by :func:`register_into`; every lookup that
fails raises :func:`unknown_name`'s error, which names the closest valid choices.
"""

from __future__ import annotations

import difflib
from typing import Callable, Iterable, TypeVar

__all__ = ["unknown_name", "register_into"]

F = TypeVar("F", bound=Callable)


def unknown_name(kind: str, name: object, valid: Iterable[str], extra: str = "") -> ValueError:
    """``ValueError("unknown <kind> 'x'; did you mean 'y'? Valid: a, b, c<extra>")``."""
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=2)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else "."
    return ValueError(f"unknown {kind} {name!r}{hint} Valid: {', '.join(valid)}{extra}")


def register_into(table: dict, kind: str, name: str) -> Callable[[F], F]:
    """Decorator adding a builder to ``table`` under ``name``; a duplicate name raises."""

    def wrap(fn: F) -> F:
        if name in table:
            raise ValueError(f"{kind} {name!r} is already registered")
        table[name] = fn
        return fn

    return wrap
