"""Fuzzed configs: random YAML documents and ``key=value`` overrides through ``load_yaml``,
``apply_overrides``, ``build`` and the CLI's ``resolve_config``, and bad configs through
``lstmkit train``.

The property: a config either resolves to dataclasses whose fields have the annotated types
(and that dump to YAML and load back equal), or a ``ValueError``/``TypeError`` is raised inside
lstmkit naming the file, the override or the key. ``lstmkit train`` with a bad config exits with
code 2, one line on stderr, and writes nothing.
"""

import contextlib
import copy
import dataclasses
import io
import math
import os
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.helpers import SCALE, assert_raised_in, fuzz_settings
from lstmkit.cli import main, resolve_config
from lstmkit.tasks.classify import ClassifyConfig
from lstmkit.tasks.config import apply_overrides, build, dump_yaml, load_yaml, to_plain
from lstmkit.tasks.forecast import ForecastConfig

FUZZ = fuzz_settings(80)


def attempt(fn, *args, errors=(ValueError, TypeError), **kwargs):
    """(True, result) or (False, error) for an allowed error raised inside lstmkit with a message;
    any other exception propagates."""
    try:
        return True, fn(*args, **kwargs)
    except errors as e:
        assert_raised_in(e)
        assert str(e).strip() and "\n" not in str(e), f"not a one-line message: {e}"  # the CLI prints it as one line
        return False, e


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([10**30, -(10**30), 2**63]),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["", "x", "auto", "cpu", "digits",
                                                                                     "val_loss", "1e-3", "[", "- a"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["name", "epochs", "lr", "x", "data", "train", "hidden_size"]) | st.integers(0, 3), inner,
    max_size=3), max_leaves=8)


def typed_fields_hold(cfg) -> None:
    """Every field of a built config has the type its annotation names (recursively)."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v, hint = getattr(cfg, f.name), hints[f.name]
        if dataclasses.is_dataclass(v):
            typed_fields_hold(v)
            continue
        allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, type(int | None)) else (hint,)
        plain = {typing.get_origin(a) or a for a in allowed}
        if bool in plain and isinstance(v, bool) or v is None and type(None) in plain:
            continue
        if typing.Any in plain or typing.Literal in plain:
            continue
        assert not isinstance(v, bool), f"{f.name}={v!r} is a bool, annotated {hint}"
        assert isinstance(v, tuple(p if p is not float else (int, float) for p in plain if isinstance(p, type))), \
            f"{f.name}={v!r} does not match {hint}"


# ----------------------------------------------------------------------------------- load_yaml

@st.composite
def yaml_bytes(draw):
    how = draw(st.sampled_from(["dump", "dump", "text", "bytes", "nested"]))
    if how == "dump":
        return yaml.safe_dump(draw(VALUES)).encode()
    if how == "text":
        return draw(st.text(alphabet=st.sampled_from(list("ab:-[]{}!&*#|>'\" \n\t,?%@`\x00é")), max_size=40)).encode()
    if how == "bytes":
        return draw(st.binary(max_size=40))
    depth = draw(st.sampled_from([10, 50, 50, 1000]))  # 1000: beyond the recursion limit (slow: kept rare)
    return ("a: " + "[" * depth + "]" * depth).encode()


@FUZZ
@given(data=yaml_bytes())
def test_load_yaml(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("yaml") / "c.yaml"
    path.write_bytes(data)
    ok, out = attempt(load_yaml, path)
    if ok:
        assert isinstance(out, dict)
    else:
        assert str(path) in str(out)


def test_load_yaml_errors_that_used_to_escape(tmp_path):
    """Found by fuzzing: a raw UnicodeDecodeError from codecs, a RecursionError from PyYAML, and a
    directory reported as a missing file."""
    path = tmp_path / "c.yaml"
    path.write_bytes(b"train:\n  lr: \xe9\n")
    with pytest.raises(ValueError, match=r"line 2: not valid UTF-8"):
        load_yaml(path)
    path.write_text("a: " + "[" * 1500 + "]" * 1500)
    with pytest.raises(ValueError, match="nested too deeply"):
        load_yaml(path)
    with pytest.raises(ValueError, match="is a directory"):
        load_yaml(tmp_path)
    with pytest.raises(ValueError, match="nested too deeply"):
        apply_overrides({}, ["train.lr=" + "[" * 1500])


# ----------------------------------------------------------------------------------- overrides

KEYS = st.sampled_from(["train.lr", "train.epochs", "data.name", "model.hidden_size", "a..b", ".x", "x.", "",
                        " ", "train", "train.lr.x", "task", "data.train", "model.variants.zoneout"])
RAW = st.sampled_from(["0.1", "3", "null", "true", "[1, 2]", "{a: 1}", "[", "'x", ".nan", "1e999", "", "a=b", "- 1",
                       "!!python/object:os.system {}", "[[[[[[[[1]]]]]]]]"])


@FUZZ
@given(base=st.dictionaries(st.sampled_from(["train", "data", "model"]), VALUES, max_size=3),
       items=st.lists(st.one_of(st.tuples(KEYS, st.sampled_from(["=", ""]), RAW).map("".join),
                                st.sampled_from([1, None, b"train.lr=1"])), max_size=4),
       as_str=st.booleans())
def test_apply_overrides(base, items, as_str):
    overrides = ",".join(map(str, items)) if as_str else items
    before = copy.deepcopy(base)
    ok, out = attempt(apply_overrides, base, overrides)
    assert base == before  # the input is never modified
    if ok:
        assert isinstance(out, dict)


def test_aliases_are_copied_once_not_expanded():
    """Found by fuzzing: nested YAML aliases (a 'billion laughs' document) expanded exponentially
    in apply_overrides' deep copy."""
    doc = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    data = yaml.safe_load(doc)  # 9**9 leaves if expanded
    out = apply_overrides(data, ["x=1"])
    assert out["i"][0] is out["i"][1] and out["x"] == 1


# ----------------------------------------------------------------------------------- build

CLASSIFY_BASE = {"task": "classify", "data": {"name": "digits"}, "model": {"name": "rnn_classifier", "hidden_size": 8},
                 "train": {"epochs": 2, "progress": "off"}}
FORECAST_BASE = {"task": "forecast", "data": {"name": "airline", "test_size": 12}, "evaluate": {"horizon": 3},
                 "train": {"epochs": 2, "progress": "off"}}
FIELDS = {"classify": ["task", "data", "data.name", "data.train", "data.format", "data.label_column", "data.normalize",
                       "data.min_freq", "data.max_vocab", "data.test_fraction", "data.split_seed", "model", "model.name",
                       "train", "train.epochs", "train.lr", "train.seed", "train.device", "train.clip_norm",
                       "train.early_stopping", "train.weight_decay", "train.deterministic", "train.nope", "nope"],
          "forecast": ["data", "data.targets", "data.calendar", "data.test_size", "data.gaps", "data.test_start",
                       "transform.log", "transform.seasonal_period", "evaluate.horizon", "evaluate.level",
                       "evaluate.baselines", "val_size", "ensemble", "refit", "model.hidden_size", "train.batch_size"]}


def _set(d: dict, dotted: str, value) -> dict:
    out = apply_overrides(d, [])
    node = out
    *parents, last = dotted.split(".")
    for p in parents:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[last] = value
    return out


@FUZZ
@given(task=st.sampled_from(["classify", "forecast"]), data=st.data())
def test_build_with_random_values_in_every_field(tmp_path_factory, task, data):
    cls, cfg = (ClassifyConfig, CLASSIFY_BASE) if task == "classify" else (ForecastConfig, FORECAST_BASE)
    for _ in range(data.draw(st.integers(1, 3))):
        cfg = _set(cfg, data.draw(st.sampled_from(FIELDS[task])), data.draw(VALUES))
    ok, out = attempt(build, cls, cfg)
    if ok:
        typed_fields_hold(out)
        # NaN != NaN would spoil the comparison; to_plain writes the keys of free-form sections as strings
        if all(math.isfinite(v) for v in _floats(to_plain(out))) and _str_keys(dataclasses.asdict(out)):
            path = tmp_path_factory.mktemp("dump") / "config.yaml"  # what every run writes, read back
            path.write_text(dump_yaml(to_plain(out)))
            assert build(cls, load_yaml(path)) == out


def test_dumped_configs_load_back_equal(tmp_path):
    """Found by fuzzing: dump_yaml wrote the string '1e-3' unquoted (a string to PyYAML's YAML 1.1
    resolver), and load_yaml's YAML 1.2 floats read it back as 0.001."""
    path = tmp_path / "c.yaml"
    data = {"data": {"targets": ["1e3", "2.5e-1"]}, "x": 1e-3, "model": {"weights": {"0": 1.0}}}
    path.write_text(dump_yaml(to_plain(data)))
    assert load_yaml(path) == data


def test_yaml_errors_are_one_line(tmp_path):
    """Found by fuzzing: PyYAML's messages span several lines (context, mark, caret), which the CLI
    printed as they were after 'lstmkit train: error:'."""
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\n:\n")
    with pytest.raises(ValueError, match=r"^\S+c.yaml is not valid YAML: .*\(line 2, column 1\)$"):
        load_yaml(path)


def _str_keys(x) -> bool:
    if isinstance(x, dict):
        return all(isinstance(k, str) and _str_keys(v) for k, v in x.items())
    return all(_str_keys(v) for v in x) if isinstance(x, list) else True


def _floats(x):
    if isinstance(x, float):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _floats(v)
    elif isinstance(x, list):
        for v in x:
            yield from _floats(v)


@pytest.mark.parametrize("section,key,value", [
    ("data", "name", 3), ("data", "train", [1]), ("data", "label_column", [1]), ("data", "normalize", "x"),
    ("data", "min_freq", "x"), ("data", "split_seed", "x"), ("train", "deterministic", "no"), ("train", "epochs", "3"),
    ("train", "device", 3),
])
def test_wrong_types_are_refused_when_the_config_is_built(section, key, value):
    """Found by fuzzing: these were accepted and either failed deep inside training (after the run
    directory was created) or were silently used (a truthy string for a bool)."""
    cfg = _set(CLASSIFY_BASE, f"{section}.{key}", value)
    with pytest.raises(ValueError, match=f"config key '{section}.{key}' must be"):
        build(ClassifyConfig, cfg)


@FUZZ
@given(doc=yaml_bytes() | VALUES.map(lambda v: yaml.safe_dump({"task": "classify", "data": v}).encode()),
       overrides=st.lists(st.tuples(KEYS, st.just("="), RAW).map("".join), max_size=2))
def test_resolve_config(tmp_path_factory, doc, overrides):
    path = tmp_path_factory.mktemp("resolve") / "c.yaml"
    path.write_bytes(doc)
    ok, out = attempt(resolve_config, str(path), overrides)
    if ok:
        cfg, task = out
        assert task in ("classify", "forecast")
        typed_fields_hold(cfg)


# ----------------------------------------------------------------------------------- lstmkit train

@st.composite
def bad_train_configs(draw):
    """Configs that must fail before training: a garbage or missing data file, or a broken field."""
    kind = draw(st.sampled_from(["garbage file", "missing file", "field", "yaml"]))
    cfg = {"task": "classify", "data": {"train": "data.npz"}, "model": {"name": "rnn_classifier", "hidden_size": 4},
           "train": {"epochs": 1, "progress": "off"}}
    if kind == "missing file":
        cfg["data"]["train"] = draw(st.sampled_from(["nope.npz", "nope.csv", "nope.ts", "nope-ubyte.gz"]))
    if kind == "field":
        cfg = _set(cfg, draw(st.sampled_from(FIELDS["classify"])), draw(VALUES))
    text = yaml.safe_dump(cfg).encode() if kind != "yaml" else draw(yaml_bytes())
    garbage = b"PK\x03\x04" + draw(st.binary(max_size=32)) if kind != "missing file" else None
    return text, garbage


def _train(root: Path, text: bytes, garbage: bytes | None) -> tuple[int, list[str], Path]:
    (root / "c.yaml").write_bytes(text)
    if garbage is not None:
        (root / "data.npz").write_bytes(garbage)
    out = root / "run"
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(root)  # relative data paths resolve here
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["-q", "train", "c.yaml", "--out", str(out), "--no-malloc-tuning"])
    finally:
        os.chdir(cwd)
    return code, [line for line in err.getvalue().splitlines() if line.strip()], out


CLI_FUZZ = settings(FUZZ, max_examples=30 * SCALE)


@CLI_FUZZ
@given(case=bad_train_configs())
def test_train_with_a_bad_config_exits_2_with_one_line(tmp_path_factory, case):
    code, lines, _ = _train(tmp_path_factory.mktemp("train"), *case)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lstmkit train: error: "), lines


@settings(CLI_FUZZ, phases=[Phase.generate])  # while it fails: no shrinking
@given(case=bad_train_configs())
def test_train_with_a_bad_config_leaves_no_run_directory(tmp_path_factory, case):
    _, _, out = _train(tmp_path_factory.mktemp("train"), *case)
    assert not out.exists(), f"a failed run left {sorted(p.name for p in out.iterdir())} behind"


def test_a_task_that_is_not_a_name_is_named_in_the_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: [classify]\ndata: {name: digits}\n")
    with pytest.raises(ValueError, match="task"):
        resolve_config(str(path), [])
