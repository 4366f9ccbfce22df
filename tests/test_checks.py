import re
import sys

import numpy as np
import pytest

from lstmkit import checks
from lstmkit.checks import check_int, check_pair, require


def test_public_names():
    assert checks.__all__ == ["check_int", "check_pair", "require"]


@pytest.mark.parametrize("value", [1, 7, 10**12, np.int64(3), np.int32(3), np.uint8(3), np.int16(1)])
def test_check_int_accepts_ints_and_numpy_ints_and_returns_a_plain_int(value):
    out = check_int("n", value)
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, 2.5, np.float64(2.0), "3", None, [1], (1,)])
def test_check_int_rejects_non_ints(value):
    with pytest.raises(ValueError, match=re.escape(f"n must be an int >= 1, got {value!r}")):
        check_int("n", value)


def test_check_int_minimum():
    assert check_int("seed", 0, minimum=0) == 0
    assert check_int("k", -3, minimum=-5) == -3
    assert check_int("size", 8, 8) == 8
    with pytest.raises(ValueError, match=r"^n must be an int >= 1, got 0$"):
        check_int("n", 0)
    with pytest.raises(ValueError, match=r"^seed must be an int >= 0, got -1$"):
        check_int("seed", -1, 0)
    seven = np.int64(7)
    with pytest.raises(ValueError, match=re.escape(f"size must be an int >= 8, got {seven!r}")):
        check_int("size", seven, 8)


def test_check_int_maximum():
    assert check_int("d", 16, 1, 16) == 16
    assert check_int("d", 1, 1, 16) == 1
    assert check_int("d", np.int64(4), 1, 16) == 4
    for bad in (0, 17, 2.0, True):
        with pytest.raises(ValueError, match=re.escape(f"d must be an int in [1, 16], got {bad!r}")):
            check_int("d", bad, 1, 16)
    with pytest.raises(ValueError, match=r"^glyph_size must be an int in \[4, 4\], got 5$"):
        check_int("glyph_size", 5, 4, 4)


def test_check_int_error_is_a_value_error_not_a_type_error():
    with pytest.raises(ValueError) as e:
        check_int("hidden_size", "wide")
    assert type(e.value) is ValueError and "hidden_size" in str(e.value)


@pytest.mark.parametrize("value, expected", [
    (3, (3, 3)), (np.int64(2), (2, 2)), ((2, 3), (2, 3)), ([4, 1], (4, 1)), ((np.int32(5), 6), (5, 6)),
])
def test_check_pair_accepts_an_int_or_two(value, expected):
    out = check_pair("patch", value)
    assert out == expected and type(out) is tuple and all(type(v) is int for v in out)


def test_check_pair_minimum():
    assert check_pair("pad", 0, minimum=0) == (0, 0)
    assert check_pair("pad", (0, 2), minimum=0) == (0, 2)
    with pytest.raises(ValueError, match=r"^patch must be an int >= 1, got 0$"):
        check_pair("patch", 0)
    with pytest.raises(ValueError, match=r"^pad\[1\] must be an int >= 0, got -1$"):
        check_pair("pad", (1, -1), minimum=0)


@pytest.mark.parametrize("value, match", [
    ((3, 0), r"^patch\[1\] must be an int >= 1, got 0$"),
    ((0, 3), r"^patch\[0\] must be an int >= 1, got 0$"),
    ((2.0, 3), r"^patch\[0\] must be an int >= 1, got 2\.0$"),
    ([2, True], r"^patch\[1\] must be an int >= 1, got True$"),
])
def test_check_pair_names_the_bad_element(value, match):
    with pytest.raises(ValueError, match=match):
        check_pair("patch", value)


@pytest.mark.parametrize("value", [True, 2.0, "22", b"22", None, (), (1,), (1, 2, 3), [1, 2, 3], {1, 2}, {"a": 1, "b": 2}])
def test_check_pair_rejects_other_shapes(value):
    with pytest.raises(ValueError, match=re.escape(f"patch must be an int >= 1 or a pair (a, b) of them, got {value!r}")):
        check_pair("patch", value)


def test_require_returns_the_module():
    import json
    import os.path

    assert require("json", "config output needs json", "train") is json
    assert require("os.path", "paths need os.path", pip="os") is os.path  # a submodule, not its package


def test_require_missing_module_names_the_purpose_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lstmkit_absent_pkg", None)  # importing it now raises ImportError
    with pytest.raises(ImportError) as e:
        require("lstmkit_absent_pkg", "plots need lstmkit_absent_pkg", "train")
    assert re.fullmatch(r"plots need lstmkit_absent_pkg: pip install 'lstmkit\[train\]' \(.*lstmkit_absent_pkg.*\)",
                        str(e.value))
    assert isinstance(e.value.__cause__, ImportError)  # the original error is kept as the cause


def test_require_a_submodule_of_a_missing_package_fails_even_when_the_submodule_is_cached(monkeypatch):
    import json.decoder

    monkeypatch.setitem(sys.modules, "json", None)  # the package gone; json.decoder still in sys.modules
    with pytest.raises(ImportError, match=r"^decoding needs json: pip install 'lstmkit\[train\]' "):
        require("json.decoder", "decoding needs json", "train")
    assert sys.modules["json.decoder"] is json.decoder


def test_require_missing_module_with_pip_and_extra():
    with pytest.raises(ImportError, match=r"^naive2 needs 'lstmkit_no_such\.sub': pip install statsmodels "
                                          r"\(or pip install 'lstmkit\[forecast\]'\) \(No module named 'lstmkit_no_such'\)$"):
        require("lstmkit_no_such.sub", "naive2 needs 'lstmkit_no_such.sub'", "forecast", pip="statsmodels")
    with pytest.raises(ImportError, match=r"^ONNX export needs onnx: pip install lstmkit\[export\] \("):
        require("lstmkit_no_such", "ONNX export needs onnx", pip="lstmkit[export]")


def test_require_needs_an_install_hint():
    with pytest.raises(ValueError, match=r"require\('json'\): give the extra or the pip arguments"):
        require("json", "config output needs json")
