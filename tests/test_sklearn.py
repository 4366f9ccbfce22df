"""lstmkit.LSTMClassifier against scikit-learn's estimator checks, plus sequence-specific behaviour."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from lstmkit import LSTMClassifier

# Small and quick, still able to learn the checks' blobs (>= 83% training accuracy is required).
FAST = dict(hidden_size=16, epochs=60, early_stopping=None, lr=1e-2, batch_size=32)


@parametrize_with_checks([LSTMClassifier(**FAST)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _ragged(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    seqs = [np.sin(np.arange(L)[:, None] * (0.3 + 0.6 * c) + rng.uniform(0, 6, 2)) + 0.1 * rng.standard_normal((L, 2))
            for L, c in zip(rng.integers(5, 25, n), y)]
    return seqs, np.where(y == 1, "fast", "slow")


def test_variable_length_lists_and_padded_arrays_with_lengths_agree():
    seqs, y = _ragged(120)
    clf = LSTMClassifier(**FAST, random_state=0).fit(seqs, y)
    assert clf.n_features_in_ == 2 and list(clf.classes_) == ["fast", "slow"]
    assert clf.score(seqs, y) > 0.9
    lengths = np.array([len(s) for s in seqs])
    padded = np.zeros((len(seqs), lengths.max(), 2))
    for i, s in enumerate(seqs):
        padded[i, : len(s)] = s
    padded[0, lengths[0]:] = 1e6  # whatever sits past a length is never read
    np.testing.assert_allclose(clf.predict_proba(padded, lengths=lengths), clf.predict_proba(seqs), atol=1e-10)


def test_sequence_input_errors():
    seqs, y = _ragged(40)
    clf = LSTMClassifier(**FAST, random_state=0).fit(seqs, y)
    with pytest.raises(ValueError, match="X has 3 features, but LSTMClassifier is expecting 2 features"):
        clf.predict([np.zeros((4, 3))])
    with pytest.raises(ValueError, match="ragged object array; pass a list of"):
        clf.predict(np.array(seqs, dtype=object))
    with pytest.raises(ValueError, match="lengths must be 2 integers in"):
        clf.predict(np.zeros((2, 5, 2)), lengths=[5, 9])
    with pytest.raises(ValueError, match="NaN"):
        clf.predict([np.full((4, 2), np.nan)])
    with pytest.raises(ValueError, match="fitted on a 2-D array"):
        LSTMClassifier(**FAST).fit(np.random.rand(20, 6), np.arange(20) % 2).predict(np.zeros((2, 6, 1)))


def test_two_d_input_after_fitting_on_series():
    rng = np.random.default_rng(1)
    seqs = [rng.standard_normal((int(n), 1)) + c for n, c in zip(rng.integers(5, 15, 40), np.arange(40) % 2)]
    clf = LSTMClassifier(**FAST, random_state=0).fit(seqs, np.arange(40) % 2)
    proba = clf.predict_proba(np.zeros((3, 9)))  # univariate series of any length
    np.testing.assert_allclose(proba, clf.predict_proba([np.zeros((9, 1))] * 3))
    wide = LSTMClassifier(**FAST, random_state=0).fit([s.repeat(2, axis=1) for s in seqs], np.arange(40) % 2)
    with pytest.raises(ValueError, match="expecting 2 features per time step"):
        wide.predict(np.zeros((3, 9)))
