"""Run configuration: YAML files, ``--set key=value`` overrides and nested dataclasses.

Precedence is defaults < YAML file < overrides. ``build(cls, mapping)`` turns a nested dict
into a dataclass (fields that are dataclasses are built recursively; plain ``dict`` fields
are kept as they are) and rejects unknown keys with the close names. Every run writes its
fully resolved config back as YAML (``dump_yaml``), which loads to the same config.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any

__all__ = ["load_yaml", "dump_yaml", "apply_overrides", "build", "to_plain"]


_LOADER = None

# YAML 1.2 floats: PyYAML (YAML 1.1) reads "3e-3" or "1e5" as strings; configs mean numbers.
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)


def _yaml():
    try:
        import yaml
    except ImportError:
        raise ImportError("YAML configs need PyYAML: pip install 'lstmkit[train]'") from None
    return yaml


def _safe_load(text: str):
    """yaml.safe_load with YAML 1.2 scalars: 3e-3 is a float, only true/false are booleans."""
    global _LOADER
    yaml = _yaml()
    if _LOADER is None:
        class Loader(yaml.SafeLoader):
            pass

        # YAML 1.2 booleans: only true/false (1.1 also reads on/off/yes/no, so "progress: off" became False)
        Loader.yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
        Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                     list("tTfF"))
        Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
        _LOADER = Loader
    return yaml.load(text, Loader=_LOADER)


def load_yaml(path: str | os.PathLike) -> dict:
    """A YAML mapping from a file (safe loader: plain data only)."""
    yaml = _yaml()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        data = _safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping (key: value), got {type(data).__name__}")
    return data


def dump_yaml(data: dict) -> str:
    return _yaml().safe_dump(data, sort_keys=False, default_flow_style=False)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML: numbers, booleans, null, lists)."""
    yaml = _yaml()
    out = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} must look like key.sub=value, e.g. train.lr=0.001")
        try:
            value = _safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ValueError(f"override {item!r}: value is not valid YAML ({e})") from None
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {p!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def build(cls: type, data: dict | None, where: str = "") -> Any:
    """Instantiate dataclass ``cls`` from a mapping; unknown keys raise ValueError naming the
    section and suggesting close field names."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError(f"config section {where or cls.__name__!r} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValueError(f"unknown config key {((where + '.') if where else '') + str(key)!r}{hint} "
                             f"(valid: {', '.join(names)})")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            value = build(kind, value, f"{where}.{key}" if where else key)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ValueError(f"config section {where or cls.__name__!r}: {e}") from None


def to_plain(obj: Any) -> Any:
    """Dataclasses, tuples and numpy scalars -> plain dicts, lists and Python numbers."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    return obj
