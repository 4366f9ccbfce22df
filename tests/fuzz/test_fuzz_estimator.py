"""Fuzzed ``LSTMClassifier.fit`` / ``predict``: random shapes, dtypes, ragged lists, NaN/inf, empty
input, one class, mismatched or NaN targets.

The property: ``fit`` succeeds and ``predict`` then returns one known class per sample, or a
``ValueError``/``TypeError`` is raised by lstmkit or by the scikit-learn validation helpers it
delegates to (``check_array``, ``column_or_1d``, ``check_classification_targets``: their messages are
the ones scikit-learn's estimator checks expect), never from inside torch or numpy.
"""

import warnings
from pathlib import Path

import numpy as np
import pytest
import sklearn
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzz.helpers import PACKAGE, assert_raised_in, fuzz_settings
from lstmkit.sklearn import LSTMClassifier

SKLEARN_CHECKS = str(Path(sklearn.__file__).resolve().parent / "utils")
FUZZ = fuzz_settings(60, slow_ok=False)
TINY = dict(hidden_size=2, epochs=1, batch_size=8, early_stopping=None, bidirectional=False, random_state=0)


def attempt(fn, *args, **kwargs):
    """(True, result) or (False, error) for a ValueError/TypeError raised by lstmkit or by
    scikit-learn's validation helpers; any other exception propagates."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sklearn.exceptions.DataConversionWarning)
            return True, fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        assert_raised_in(e, (PACKAGE, SKLEARN_CHECKS))
        assert str(e).strip()
        return False, e


DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8, np.bool_, object, np.complex64, "<U2"]


def rarely(draw, usual, *odd):
    """``usual`` most of the time, else one of the odd values: keeps the success path well exercised."""
    return draw(st.sampled_from(odd)) if odd and draw(st.integers(0, 3)) == 0 else usual


@st.composite
def padded_arrays(draw, n=None, d=2):
    n = rarely(draw, draw(st.integers(4, 8)), 0, 1, 2) if n is None else n
    shape = (n, rarely(draw, draw(st.integers(1, 4)), 0), rarely(draw, d, 0, 1, 3))
    shape = shape[: rarely(draw, 3, 1, 2, 4)] + ((1,) if rarely(draw, 3, 1, 2, 4) == 4 else ())
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.normal(size=shape)
    if x.size and draw(st.integers(0, 4)) == 0:
        x.flat[draw(st.integers(0, x.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300]))
    dtype = rarely(draw, np.float64, *DTYPES)
    with np.errstate(all="ignore"):
        return x.astype(dtype) if dtype != "<U2" else x.astype(str)


@st.composite
def ragged_lists(draw, n=None, d=2):
    n = rarely(draw, draw(st.integers(4, 8)), 0, 1, 2) if n is None else n
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    out = []
    for _ in range(n):
        kind = rarely(draw, "2d", "1d", "empty", "3d", "none", "str", "nan", "wide", "nested") \
            if draw(st.integers(0, 2)) == 0 else "2d"
        t = draw(st.integers(1, 4))
        out.append({"2d": lambda: rng.normal(size=(t, d)), "1d": lambda: rng.normal(size=t),
                    "empty": lambda: np.zeros((0, d)), "3d": lambda: np.zeros((t, d, 1)), "none": lambda: None,
                    "str": lambda: "abc", "nan": lambda: np.full((t, d), np.nan), "wide": lambda: rng.normal(size=(t, d + 1)),
                    "nested": lambda: [[1.0] * d, [2.0] * (d + 1)]}[kind]())
    return out


@st.composite
def targets(draw, n: int):
    n = max(n + rarely(draw, 0, 1, -1), 0)
    kind = rarely(draw, draw(st.sampled_from(["int", "str", "float"])), "one", "nan", "mixed", "continuous", "2d", "none")
    base = np.arange(n) % 2
    return {"int": base, "str": np.array(["a", "b"])[base], "float": base.astype(float), "one": np.zeros(n),
            "nan": np.where(base > 0, np.nan, 0.0), "mixed": np.array([0, "a"] * n, dtype=object)[:n],
            "continuous": np.linspace(0, 1, n) + 0.01, "2d": np.stack([base, base], 1), "none": None}[kind]


def _check_predictions(model, X, n, lengths=None):
    ok, pred = attempt(model.predict, X, lengths=lengths)
    assert ok, f"predicting on the training input failed: {pred}"
    assert len(pred) == n and set(np.asarray(pred).tolist()) <= set(model.classes_.tolist())


@FUZZ
@given(data=st.data(), ragged=st.booleans())
def test_fit_on_random_inputs_and_targets(data, ragged):
    X = data.draw(ragged_lists() if ragged else padded_arrays())
    n = len(X)
    y = data.draw(targets(n))
    lengths = None
    if not ragged and data.draw(st.integers(0, 4)) == 0 and getattr(X, "ndim", 0) >= 2:
        lengths = data.draw(st.sampled_from([np.full(n, 1), np.full(n, X.shape[1] + 1), np.full(n, 1.0), np.ones(n + 1, int)]))
    ok, model = attempt(LSTMClassifier(**TINY).fit, X, y, lengths=lengths)
    event("fitted" if ok else f"refused: {type(model).__name__}")
    if ok:
        _check_predictions(model, X, n, lengths)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 5, 2))
    return LSTMClassifier(**TINY).fit(X, np.array(["a", "b", "c"] * 4))


@FUZZ
@given(data=st.data())
def test_predict_on_random_inputs(fitted, data):
    X = data.draw(st.one_of(padded_arrays(), ragged_lists(), st.sampled_from([[], None, "abc", 3.0, [[1.0, 2.0]]])))
    ok, pred = attempt(fitted.predict, X)
    event("predicted" if ok else f"refused: {type(pred).__name__}")
    if ok:
        assert len(pred) == len(X) and set(pred.tolist()) <= {"a", "b", "c"}
        proba = fitted.predict_proba(X)
        assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1)


@pytest.mark.parametrize("X,y,match", [
    ([np.zeros((0, 2))] + [np.ones((3, 2))] * 3, [0, 1] * 2, r"X\[0\] has no time steps"),  # numpy reshape error
    ([None] * 4, [0, 1] * 2, r"X\[0\] must be an array"),  # 'NoneType' has no len()
    ([[[1.0, 2.0], [3.0]]] * 4, [0, 1] * 2, r"X\[0\] is ragged"),  # numpy's inhomogeneous-shape error
    (np.zeros((4, 3, 0)), [0, 1] * 2, "0 features per time step"),  # 'input_size must be a positive int'
    (np.ones((4, 3, 1)), np.array([0, "a"] * 2, dtype=object), "y mixes label types"),  # numpy sort TypeError
    (None, [0, 1], "X must be an array"),  # 'Expected 2D array, got scalar array instead: array=nan'
])
def test_fit_errors_that_used_to_escape(X, y, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LSTMClassifier(**TINY).fit(X, y)


def test_predict_on_an_empty_list_says_so(fitted):
    with pytest.raises(ValueError, match="X is empty"):  # was: 'X is 2-D (n univariate series) ...'
        fitted.predict([])


def test_variants_must_be_a_mapping():
    with pytest.raises(TypeError, match="variants must be a dict"):  # was: dict() of a list, deep in fit
        LSTMClassifier(**{**TINY, "variants": [1]}).fit(np.ones((4, 3, 1)), [0, 1] * 2)
