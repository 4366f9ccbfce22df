"""Run configuration: YAML files, ``--set key=value`` overrides and nested dataclasses.

Precedence is defaults < YAML file < overrides. ``build(cls, mapping)`` turns a nested dict
into a dataclass (fields that are dataclasses are built recursively; plain ``dict`` fields
are kept as they are) and rejects unknown keys with the close names. Every run writes its
fully resolved config back as YAML (``dump_yaml``), which loads to the same config.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import logging
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from ..checks import require

__all__ = ["load_yaml", "dump_yaml", "apply_overrides", "drop_replaced", "build", "to_plain", "check_task", "model_section"]

log = logging.getLogger(__name__)


_LOADER = None

# YAML 1.2 floats: PyYAML (YAML 1.1) reads "3e-3" or "1e5" as strings; configs mean numbers.
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)


def _yaml():
    return require("yaml", "YAML configs need PyYAML", "train")


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


def _yaml_problem(e: Exception) -> str:
    """A PyYAML error on one line: 'context: problem (line L, column C)'."""
    problem = getattr(e, "problem", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
    context = getattr(e, "context", None)
    mark = getattr(e, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{context + ': ' if context else ''}{problem}{where}"


def load_yaml(path: str | os.PathLike) -> dict:
    """A YAML mapping from a file (safe loader: plain data only)."""
    yaml = _yaml()
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"config file {path} is a directory, not a YAML file")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not valid UTF-8 (byte {raw[e.start]:#04x}); save the config as UTF-8") from None
    try:
        data = _safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not valid YAML: {_yaml_problem(e)}") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be a config") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping (key: value), got {type(data).__name__}")
    return data


_DUMPER = None


def dump_yaml(data: dict) -> str:
    """YAML that :func:`load_yaml` reads back to ``data``: strings that look like YAML 1.2 floats
    (``"1e-3"``) are quoted, since the loader would read them as numbers."""
    global _DUMPER
    yaml = _yaml()
    if _DUMPER is None:
        class Dumper(yaml.SafeDumper):
            pass

        Dumper.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeDumper.yaml_implicit_resolvers.items()}
        Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
        _DUMPER = Dumper
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML: numbers, booleans, null, lists)."""
    yaml = _yaml()
    if not isinstance(data, dict):
        raise TypeError(f"config data must be a mapping, got {type(data).__name__}")
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, (list, tuple)):
        raise TypeError(f"overrides must be a list of 'key.sub=value' strings, got {overrides!r}")
    out = _deep_copy(data)
    for item in overrides:
        if not isinstance(item, str):
            raise TypeError(f"override {item!r} must be a 'key.sub=value' string, got {type(item).__name__}")
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} must look like key.sub=value, e.g. train.lr=0.001")
        try:
            value = _safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ValueError(f"override {item!r}: value is not valid YAML ({_yaml_problem(e)})") from None
        except RecursionError:
            raise ValueError(f"override {item[:60]!r}...: value is nested too deeply") from None
        parts = key.strip().split(".")
        if any(not p.strip() for p in parts):
            raise ValueError(f"override {item!r}: the key has an empty part; write key.sub=value, e.g. train.lr=0.001")
        node = out
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {p!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def drop_replaced(cls: type, data: dict, original: dict, overrides: list[str], where: str = "the config file") -> dict:
    """``data`` (``original`` with ``overrides`` applied) without the keys of ``original`` that an
    override replaces, so a preset's dataset gives way to a file given on the command line. A
    section's dataclass (a field of ``cls``) declares them in its ``REPLACES`` class attribute,
    ``{key: (keys it replaces, what they are)}``: e.g. ``data.path`` replaces ``data.name``. A
    replaced key that an override sets too is kept (the dataclass then says what conflicts)."""
    given = {item.partition("=")[0].strip() for item in overrides}
    hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
    for section, kind in hints.items():
        node, before = data.get(section), original.get(section)
        if not (isinstance(node, dict) and isinstance(before, dict)):
            continue
        for key, (replaced, what) in getattr(kind, "REPLACES", {}).items():
            if f"{section}.{key}" not in given or node.get(key) is None:
                continue
            for k in replaced:
                if k in before and k in node and f"{section}.{k}" not in given:
                    log.info(f"{what} is replaced: {section}.{key}={node[key]!r} is given, so {section}.{k}="
                             f"{before[k]!r} from {where} is dropped")
                    del node[k]
    return data


def _deep_copy(d: Any, memo: dict | None = None) -> Any:
    """Copy of nested dicts and lists; a node shared by YAML anchors is copied once and stays
    shared (so a document of nested aliases cannot blow up into gigabytes)."""
    memo = {} if memo is None else memo
    if not isinstance(d, (dict, list)):
        return d
    if id(d) in memo:
        return memo[id(d)]
    if isinstance(d, dict):
        out: Any = memo.setdefault(id(d), {})
        out.update((k, _deep_copy(v, memo)) for k, v in d.items())
    else:
        out = memo.setdefault(id(d), [])
        out.extend(_deep_copy(v, memo) for v in d)
    return out


def _describe(hint: Any) -> str:
    """A type annotation in words, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (list, tuple, collections.abc.Sequence):
        if not args or args[0] is Any:
            return "a list"
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    return {type(None): "null", bool: "true or false", int: "an int", float: "a number", str: "a string",
            dict: "a mapping"}.get(origin or hint, getattr(hint, "__name__", str(hint)))


def _matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value has the type a dataclass field is annotated with. Only the plain
    types are checked (None, bool, int, float, str, lists, mappings, unions of them); the
    allowed values (ranges, Literal choices) are the dataclass's own ``__post_init__`` checks."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, collections.abc.Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return True  # fixed-length tuples: left to the dataclass
        return not args or all(_matches(v, args[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True  # Any, Literal and other annotations: the dataclass checks the value


def path_field(default: str | None = None) -> Any:
    """A dataclass field holding a file or directory path: :func:`build` stores it absolute (relative
    to the working directory of the command), so a saved ``config.yaml`` works from anywhere."""
    return dataclasses.field(default=default, metadata={"path": True})


def build(cls: type, data: dict | None, where: str = "") -> Any:
    """Instantiate dataclass ``cls`` from a mapping; unknown keys raise ValueError naming the
    section and suggesting close field names, and so does a value whose type does not match
    its field's annotation (e.g. a string for an int field, a mapping for a list)."""
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
        path = f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(kind):
            value = build(kind, value, path)
        elif not _matches(value, kind):
            raise ValueError(f"config key {path!r} must be {_describe(kind)}, got {value!r} ({type(value).__name__})")
        if names[key].metadata.get("path") and isinstance(value, str) and value:
            value = os.path.abspath(os.path.expanduser(value))  # config.yaml then works from any directory
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


def check_task(config: Any, task: str) -> None:
    """A task config's ``task`` field must name the task whose config it is."""
    if config.task != task:
        raise ValueError(f"task must be {task!r} here, got {config.task!r}")


def model_section(name: str, value: Any, default: str | None = None) -> dict:
    """A config's ``model`` (or ``baseline``) section: a mapping with a registry ``name``, ``default`` where
    it has none (required when ``default`` is None); returns it with that name."""
    if not isinstance(value, dict) or not isinstance(value.get("name", default), str):
        raise ValueError(f"{name} must be a mapping with a 'name' (see `lstmkit models`), got {value!r}")
    return {"name": default, **value}
