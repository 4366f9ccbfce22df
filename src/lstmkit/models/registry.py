"""Model registry: a dict and a decorator (torchvision's ``_api.py``, timm's ``create_model``)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..nn.names import register_into, unknown_name

__all__ = ["register_model", "create_model", "list_models", "describe_model"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    return register_into(_MODELS, "model", name)


def list_models() -> list[str]:
    return sorted(_MODELS)


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
