"""A search's configuration for ``lstmkit tune``: the base run, the ranges, the objective, the pruner.

``lstmkit tune`` takes a tune file or a training config (a preset such as ``forecast/sunspots`` or a
YAML file). A tune file names a base run and the ranges to search::

    base: classify/digits          # a preset or a YAML file (relative to this file), or inline
                                   # task/data/model/train sections instead of base
    overrides: {train.epochs: 30}  # optional, applied to the base (also a list of "key=value")
    metric: val_accuracy           # optional: one of the task's validation metrics (its objective by default)
    seed: 0                        # the TPE sampler's seed
    search:
      model.hidden_size: {type: int, low: 16, high: 256, log: true}
      train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      train.batch_size: {type: categorical, choices: [16, 32, 64, 128]}
    pruner: {type: median, n_startup_trials: 5, n_warmup_steps: 5}

A training config is the base itself; the metric and the ranges are then the task's own
(:class:`lstmkit.tasks.registry.Tuning`). A file is a tune file when it has any of the keys above
but the inline sections (``base`` or ``search``, typically); training configs have none of them.

Each search key is a dotted path that must exist in the resolved base config (``model.*`` keys the
base's model section names, any ``train.*`` field and, for classification, ``data.normalize``,
``data.min_freq``, ``data.max_vocab``); a key the base lacks can be added through ``overrides``
first. The data source and the task stay fixed within a study.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Sequence

from ..checks import check_int, require
from .config import apply_overrides, build, drop_replaced, load_yaml, to_plain
from .registry import Task, get_task

__all__ = ["SearchParam", "TuneConfig", "load_tune_config", "overrides_for", "require_optuna", "PRUNERS"]

# pruner name -> optuna.pruners class
PRUNERS = {"median": "MedianPruner", "percentile": "PercentilePruner", "successive_halving": "SuccessiveHalvingPruner",
           "hyperband": "HyperbandPruner", "threshold": "ThresholdPruner", "none": "NopPruner"}
# classification data fields that change preprocessing only (the data source stays fixed for a study)
_DATA_KEYS = ("data.normalize", "data.min_freq", "data.max_vocab")
_BASE_SECTIONS = ("task", "data", "model", "train")
_TUNE_KEYS = ("base", "overrides", "metric", "seed", "search", "pruner")
_PRESETS = resources.files("lstmkit") / "configs"


def require_optuna():
    """The optuna module, or an error naming the ``tune`` extra to install."""
    return require("optuna", "hyperparameter search needs Optuna", "tune")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class SearchParam:
    """One search dimension: ``int`` / ``float`` between ``low`` and ``high`` (``log`` scale or a
    ``step``), or ``categorical`` over ``choices``."""

    type: Literal["int", "float", "categorical"]
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: list | None = None

    def __post_init__(self) -> None:
        if self.type not in ("int", "float", "categorical"):
            raise ValueError(f"type must be one of 'int', 'float', 'categorical', got {self.type!r}")
        if not isinstance(self.log, bool):
            raise ValueError(f"log must be true or false, got {self.log!r}")
        if self.type == "categorical":
            extra = [k for k in ("low", "high", "step") if getattr(self, k) is not None] + (["log"] if self.log else [])
            if extra:
                raise ValueError(f"a categorical parameter takes choices only, not {', '.join(extra)}")
            if not isinstance(self.choices, list) or not self.choices:
                raise ValueError(f"choices must be a non-empty list, got {self.choices!r}")
            bad = [c for c in self.choices if not (c is None or isinstance(c, (bool, int, float, str)))]
            if bad:
                raise ValueError(f"choices must be numbers, strings, booleans or null (Optuna stores them), "
                                 f"got {bad[0]!r}")
            if len({json.dumps(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"choices has duplicates: {self.choices}")
            return
        if self.choices is not None:
            raise ValueError(f"choices apply to type categorical only; a {self.type} parameter takes low and high")
        kind = int if self.type == "int" else (int, float)
        for name in ("low", "high"):
            v = getattr(self, name)
            if not (_is_number(v) and isinstance(v, kind)):
                raise ValueError(f"{name} must be {'an int' if self.type == 'int' else 'a finite number'}, got {v!r}")
        if self.type == "float":
            self.low, self.high = float(self.low), float(self.high)
        if not self.low <= self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range needs low > 0, got low={self.low}")
        if self.step is not None:
            if self.log:
                raise ValueError("step and log cannot be combined")
            if not (_is_number(self.step) and isinstance(self.step, kind) and self.step > 0):
                kind_name = "int" if self.type == "int" else "number"
                raise ValueError(f"step must be a positive {kind_name}, got {self.step!r}")

    def endpoints(self) -> list:
        """The values that bound the range (each must make a valid config)."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]

    def suggest(self, trial, name: str):
        if self.type == "int":
            return trial.suggest_int(name, self.low, self.high, step=self.step or 1, log=self.log)
        if self.type == "float":
            return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)
        return trial.suggest_categorical(name, self.choices)

    def describe(self) -> str:
        if self.type == "categorical":
            return ", ".join(map(str, self.choices))
        scale = ", log" if self.log else (f", step {self.step}" if self.step is not None else "")
        return f"{self.low:g} .. {self.high:g}{scale}"


def _lookup(data: dict, dotted: str) -> tuple[bool, Any]:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def overrides_for(params: dict[str, Any]) -> list[str]:
    """``key=value`` overrides (``lstmkit train --set``) for sampled values."""
    return [f"{k}={json.dumps(v)}" for k, v in params.items()]


def _pruner(spec: dict):
    optuna = require_optuna()
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"pruner must be a mapping with a type ({', '.join(PRUNERS)}), got {spec!r}")
    kwargs = dict(spec)
    name = kwargs.pop("type")
    if name not in PRUNERS:
        from ..nn.names import unknown_name

        raise unknown_name("pruner", name, PRUNERS)
    try:
        return getattr(optuna.pruners, PRUNERS[name])(**kwargs)
    except TypeError as e:
        raise ValueError(f"pruner {name!r}: {e} (see optuna.pruners.{PRUNERS[name]})") from None


@dataclass
class TuneConfig:
    """A search: the resolved base run (its task's config as a plain mapping), the ranges and the
    metric (None: the task's objective); validated on construction."""

    base: dict
    search: dict[str, SearchParam]
    metric: str | None = None
    pruner: dict = field(default_factory=lambda: {"type": "median"})
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.base, dict):
            raise ValueError(f"base must be a run config mapping, got {self.base!r}")
        task = self.task
        if task.tune is None:
            raise ValueError(f"task {task.name!r} declares no tuning objective (Task.tune); lstmkit tune cannot search it")
        self.metric = task.tune.objective if self.metric is None else self.metric
        if self.metric not in task.tune.metrics:
            raise ValueError(f"metric must be one of {', '.join(map(repr, task.tune.metrics))} (the validation "
                             f"metrics a {task.name!r} run reports), got {self.metric!r}")
        self.base = to_plain(build(task.config, self.base))  # fully resolved: every field present
        if not isinstance(self.search, dict) or not self.search:
            raise ValueError("search must be a non-empty mapping of dotted config keys to ranges, "
                             "e.g. {train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}")
        data_keys = _DATA_KEYS if task.name == "classify" else ()
        allowed = f"model.*, train.* and {', '.join(data_keys)}" if data_keys else "model.* and train.*"
        search = {}
        for key, spec in self.search.items():
            key = str(key)
            if not (key.startswith(("model.", "train.")) or key in data_keys):
                raise ValueError(f"search key {key!r}: only {allowed} can be searched (the data source and the "
                                 "task stay fixed within a study)")
            found, _ = _lookup(self.base, key)
            if not found:
                raise ValueError(f"search key {key!r} does not exist in the base config; add it to the base "
                                 f"(e.g. overrides: {{{key}: VALUE}}) or fix the name")
            try:
                param = spec if isinstance(spec, SearchParam) else build(SearchParam, spec, f"search.{key}")
            except ValueError as e:
                raise ValueError(f"search.{key}: {e}") from None
            for value in param.endpoints():  # each bound must give a buildable config
                try:
                    build(task.config, apply_overrides(self.base, overrides_for({key: value})))
                except ValueError as e:
                    raise ValueError(f"search.{key}: the value {value!r} makes an invalid config ({e})") from None
            search[key] = param
        self.search = search
        _pruner(self.pruner)  # validates type and arguments

    @property
    def task(self) -> Task:
        return get_task(self.base.get("task", "classify"))

    @property
    def direction(self) -> str:
        return self.task.tune.metrics[self.metric]

    def apply(self, params: dict[str, Any], trial: bool = False) -> Any:
        """The base config with sampled values applied (as ``--set`` overrides); ``trial``: also the
        task's overrides for a trial's own run (:attr:`Tuning.trial`), which best.yaml leaves out."""
        extra = list(self.task.tune.trial) if trial else []
        return build(self.task.config, apply_overrides(self.base, overrides_for(params) + extra))

    def to_dict(self) -> dict:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TuneConfig":
        return build(cls, data)


def _find(path: str, relative_to: Path | None = None) -> Path:
    """A YAML file (relative paths also against ``relative_to``) or a packaged preset."""
    for candidate in (Path(path), *((relative_to / path,) if relative_to is not None else ())):
        if candidate.is_file():
            return candidate
    preset = _PRESETS.joinpath(*f"{path.removesuffix('.yaml')}.yaml".split("/"))
    if preset.is_file():
        return Path(str(preset))
    raise FileNotFoundError(f"config {path} does not exist (nor is it a packaged preset such as classify/digits)")


def _as_overrides(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, dict):
        return overrides_for({str(k): v for k, v in value.items()})
    raise ValueError(f"{where} must be a mapping {{key.sub: value}} or a list of 'key.sub=value' strings, "
                     f"got {value!r}")


def _check_keys(file: Path, data: dict) -> None:
    unknown = [k for k in data if k not in _TUNE_KEYS + _BASE_SECTIONS]
    if unknown:
        import difflib

        close = difflib.get_close_matches(str(unknown[0]), _TUNE_KEYS + _BASE_SECTIONS, n=2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"{file}: unknown key {unknown[0]!r}{hint} (valid: {', '.join(_TUNE_KEYS + _BASE_SECTIONS)})")


def _default_search(base: dict, file: Path) -> dict:
    """The task's default space, less the keys the base config lacks (a model section that does not
    name, e.g., num_layers keeps the model's own default for it)."""
    task = get_task(base.get("task", "classify"))
    if task.tune is None:
        raise ValueError(f"{file}: task {task.name!r} declares no default search space; write a tune file "
                         "(base: and search:)")
    resolved = to_plain(build(task.config, base))
    search = {k: v for k, v in task.tune.space.items() if _lookup(resolved, k)[0]}
    if not search:
        raise ValueError(f"{file}: none of the {task.name!r} task's default search keys "
                         f"({', '.join(task.tune.space)}) is in this config; write a tune file (base: and search:)")
    return search


def load_tune_config(path: str | os.PathLike, overrides: Sequence[str] = (), seed: int | None = None) -> TuneConfig:
    """A :class:`TuneConfig` from a tune file or packaged preset (``tune/digits``), or from a training
    config (``forecast/sunspots``, a YAML file) searched with its task's objective and default space.

    ``overrides`` (``key=value``) apply to the base run after a tune file's own ``overrides``;
    ``seed`` replaces the file's sampler seed."""
    file = _find(str(path))
    data = load_yaml(file)
    if not any(k in data for k in _TUNE_KEYS):  # a training config: the base itself, searched by its task's defaults
        base = drop_replaced(get_task(data.get("task", "classify")).config, apply_overrides(data, list(overrides)),
                             data, list(overrides), where=str(path))
        return TuneConfig(base=base, search=_default_search(base, file), **({"seed": seed} if seed is not None else {}))
    _check_keys(file, data)
    inline = {k: data[k] for k in _BASE_SECTIONS if k in data}
    if "base" in data:
        if inline:
            raise ValueError(f"{file}: give the base run either as base: (a preset or file) or as inline "
                             f"{'/'.join(_BASE_SECTIONS)} sections, not both (found {', '.join(inline)})")
        if not isinstance(data["base"], str):
            raise ValueError(f"{file}: base must name a preset (e.g. classify/digits) or a YAML file, "
                             f"got {data['base']!r}")
        base = load_yaml(_find(data["base"], file.parent))
    elif inline:
        base = inline
    else:
        raise ValueError(f"{file}: no base run; add base: classify/digits (a preset or file) or "
                         "data/model/train sections")
    base = apply_overrides(base, _as_overrides(data.get("overrides"), "overrides") + list(overrides))
    fields = {k: data[k] for k in ("metric", "seed", "search", "pruner") if k in data}
    if "search" not in fields:
        raise ValueError(f"{file}: no search section: name the ranges to search, e.g. search: "
                         "{train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}} (or tune the base "
                         "config itself, `lstmkit tune forecast/sunspots`, for its task's default space)")
    if seed is not None:
        fields["seed"] = seed
    return TuneConfig(base=base, **fields)
