"""Shared checks, one error wording each (stdlib only).

Integer arguments: :func:`check_int` accepts Python ints and numpy integers (anything
:class:`numbers.Integral` except ``bool``) and returns a plain ``int``; :func:`check_pair` does
the same for an argument that is one int or a pair of them (kernel sizes, patch sizes). Both
raise ``ValueError`` naming the argument, the valid range and the value given.

Optional dependencies: :func:`require` imports a module that only some features need and, when
it is missing, raises ``ImportError`` naming what needs it and what to ``pip install``.
"""

from __future__ import annotations

import importlib
import numbers
from types import ModuleType
from typing import Sequence

__all__ = ["check_int", "check_pair", "require"]


def require(module: str, purpose: str, extra: str | None = None, *, pip: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, or ``ImportError`` saying what needs it and how to install it.

    ``purpose`` is the start of the message, the feature and what it needs (``"plots need
    matplotlib"``); the install hint follows: ``pip install <pip>`` when ``pip`` is given (the
    package's own name, or the literal arguments), ``pip install 'lstmkit[<extra>]'`` when
    ``extra`` is given, ``pip install <pip> (or pip install 'lstmkit[<extra>]')`` with both. The
    original import error ends the message and is chained as the cause, e.g.
    ``"plots need matplotlib: pip install 'lstmkit[train]' (No module named 'matplotlib')"``.
    """
    if extra is None and pip is None:
        raise ValueError(f"require({module!r}): give the extra or the pip arguments that install it")
    try:
        importlib.import_module(module.partition(".")[0])  # like ``from pkg import sub``: no pkg, no sub, cached or not
        return importlib.import_module(module)
    except ImportError as e:
        lstmkit = f"pip install 'lstmkit[{extra}]'" if extra is not None else None
        hint = lstmkit if pip is None else f"pip install {pip}" + (f" (or {lstmkit})" if lstmkit else "")
        raise ImportError(f"{purpose}: {hint} ({e})") from e


def check_int(name: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """``int(value)`` if ``value`` is an int (not a bool) in ``[minimum, maximum]``, else ``ValueError``.

    The error reads ``"<name> must be an int >= <minimum>, got <value!r>"``, or with ``maximum``
    ``"<name> must be an int in [<minimum>, <maximum>], got <value!r>"``.
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not (ok and value >= minimum and (maximum is None or value <= maximum)):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an int {bound}, got {value!r}")
    return int(value)


def check_pair(name: str, value: object, minimum: int = 1) -> tuple[int, int]:
    """``(a, b)`` from an int (used for both) or a 2-sequence of ints, each ``>= minimum``.

    Each element is checked by :func:`check_int` under the name ``"<name>[0]"`` / ``"<name>[1]"``;
    anything else (a str, a float, a sequence of another length) raises ``ValueError``.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        v = check_int(name, value, minimum)
        return v, v
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{name} must be an int >= {minimum} or a pair (a, b) of them, got {value!r}")
    return check_int(f"{name}[0]", value[0], minimum), check_int(f"{name}[1]", value[1], minimum)
