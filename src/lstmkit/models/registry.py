"""Model registry: a dict and a decorator (torchvision's ``_api.py``, timm's ``create_model``)."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from typing import Callable, Iterable

from torch import nn

from ..nn.names import register_into, unknown_name

__all__ = ["register_model", "create_model", "list_models", "describe_model", "model_arguments",
           "check_model_arguments", "model_task", "check_model_task"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_ARGUMENTS: dict[str, type] = {}  # what a ``**kwargs`` factory forwards its keyword arguments to
_TASKS: dict[str, str] = {}  # the task each model serves


def register_model(name: str, arguments: type | None = None, task: str | None = None) -> Callable:
    """Register a model factory under ``name`` for ``task`` (the task whose runs build it). A
    factory taking ``**kwargs`` names the config dataclass (or class) they are forwarded to as
    ``arguments``, so that a config's model keys can be checked before any data is loaded
    (:func:`check_model_arguments`)."""
    add = register_into(_MODELS, "model", name)

    def wrap(fn: Callable) -> Callable:
        add(fn)
        if arguments is not None:
            _ARGUMENTS[name] = arguments
        if task is not None:
            _TASKS[name] = task
        return fn

    return wrap


def _keywords(fn: Callable) -> tuple[set[str], bool]:
    """(named keyword parameters, whether it also takes **kwargs) of a function or class."""
    params = inspect.signature(fn).parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def model_arguments(name: str) -> frozenset[str]:
    """The keyword arguments the model ``name`` accepts (its config's fields for a factory that
    forwards ``**kwargs``)."""
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    named, more = _keywords(_MODELS[name])
    if more:
        target = _ARGUMENTS.get(name)
        if target is None:
            raise TypeError(f"model {name!r} takes **kwargs: register it with arguments=<its config class>")
        if dataclasses.is_dataclass(target):
            named |= {f.name for f in dataclasses.fields(target) if f.init}
        else:
            extra, open_ended = _keywords(target)
            if open_ended:
                raise TypeError(f"model {name!r}: {target.__name__} takes **kwargs too; name a class with explicit "
                                "arguments")
            named |= extra
    return frozenset(named)


def check_model_arguments(name: str, keys: Iterable[str], section: str = "model") -> None:
    """Raise ``ValueError`` naming ``section.key`` and the closest valid keys for a key the model
    ``name`` does not take (e.g. ``model.hiden_size``): a config is checked before data loads."""
    valid = model_arguments(name)
    for key in keys:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=2)
            hint = f"; did you mean {' or '.join(f'{section}.{c}' for c in close)}?" if close else "."
            raise ValueError(f"{section}.{key} is not an argument of model {name!r}{hint} "
                             f"Valid: {', '.join(sorted(valid))}")


def list_models(task: str | None = None) -> list[str]:
    """The registered model names, or those serving ``task``."""
    return sorted(n for n in _MODELS if task is None or _TASKS.get(n) == task)


def model_task(name: str) -> str | None:
    """The task the model ``name`` serves."""
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    return _TASKS.get(name)


def check_model_task(name: object, task: str, section: str = "model") -> None:
    """Raise ``ValueError`` when ``section.name`` is not a model of ``task`` (naming those that are)."""
    valid = list_models(task)
    if not isinstance(name, str) or name not in _MODELS:
        raise unknown_name("model", name, valid, extra=f" ({task} models; `lstmkit models --task {task}`)")
    if _TASKS.get(name) != task:
        raise ValueError(f"{section}.name {name!r} is a {_TASKS.get(name)} model; {task} runs take "
                         f"{', '.join(valid)} (`lstmkit models --task {task}`)")


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; unknown names raise ValueError suggesting close ones."""
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    return _MODELS[name](**kwargs)


def describe_model(name: str) -> str:
    """The first line of the registered factory's docstring."""
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    doc = (_MODELS[name].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""
