"""lstmkit.LSTMClassifier against scikit-learn's estimator checks, plus sequence-specific behaviour."""

import warnings

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


def _equal_length(n=40, T=12, D=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return rng.standard_normal((n, T, D)) + y[:, None, None] * np.linspace(0, 1, T)[None, :, None], y


TINY = dict(hidden_size=8, epochs=3, early_stopping=None, random_state=0)


def test_layout_ndt_reads_aeon_arrays_as_their_transpose():
    X, y = _equal_length()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a (n, T, D) array of usual shape draws no layout warning
        ntd = LSTMClassifier(**TINY).fit(X, y)
    ndt = LSTMClassifier(**TINY, layout="ndt").fit(X.transpose(0, 2, 1), y)
    np.testing.assert_allclose(ndt.predict_proba(X.transpose(0, 2, 1)), ntd.predict_proba(X), rtol=0, atol=1e-12)
    assert ndt.n_features_in_ == 3 and ndt.score(X.transpose(0, 2, 1), y) == ntd.score(X, y)
    ragged = [x[: 5 + i % 7] for i, x in enumerate(X)]  # aeon's unequal-length collections: lists of (D, T_i)
    np.testing.assert_allclose(ndt.predict_proba([s.T for s in ragged]), ntd.predict_proba(ragged), atol=1e-12)


def test_layout_warning_and_errors():
    X, y = _equal_length(T=30)
    aeon = X.transpose(0, 2, 1)  # (40, 3, 30): read as 3 steps of 30 features
    with pytest.warns(UserWarning, match=r"X has shape \(40, 3, 30\), read as n=40 series of T=3 steps with D=30 "
                                         r"features.*pass layout='ndt'"):
        LSTMClassifier(hidden_size=4, epochs=1, random_state=0).fit(aeon, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stating the layout keeps the reading and silences the warning
        LSTMClassifier(hidden_size=4, epochs=1, random_state=0, layout="ntd").fit(aeon, y)
    with pytest.raises(ValueError, match=r"layout must be 'ntd' \(n, T steps, D features.* or 'ndt' .*got 'tnd'"):
        LSTMClassifier(layout="tnd").fit(X, y)


def test_save_load_and_predict_from_the_command_line(tmp_path, capsys):
    import pickle

    from sklearn.exceptions import NotFittedError

    from lstmkit.cli import main

    X, y = _equal_length()
    labels = np.array(["calm", "rising"])[y]
    clf = LSTMClassifier(**TINY).fit(X, labels)
    with pytest.raises(NotFittedError, match="not fitted: call fit before save"):
        LSTMClassifier().save(tmp_path / "none")
    clf.save(tmp_path / "m")
    again = LSTMClassifier.load(tmp_path / "m")
    assert again.get_params() == clf.get_params() and again.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))  # float64 weights, restored exactly
    assert again.predict(X).tolist() == clf.predict(X).tolist() and again.n_features_in_ == 3
    assert again.best_epoch_ == clf.best_epoch_ and again.history_ == json_round_trip(clf.history_)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(again)).predict_proba(X), clf.predict_proba(X))
    with pytest.raises(ValueError, match=r"m already holds a model \(model.safetensors, model.json\); pass "
                                         "overwrite=True"):
        clf.save(tmp_path / "m")
    LSTMClassifier(**{**TINY, "random_state": 1}).fit(X, labels).save(tmp_path / "m", overwrite=True)
    assert LSTMClassifier.load(tmp_path / "m").random_state == 1
    clf.save(tmp_path / "m", overwrite=True)
    np.savez(tmp_path / "x.npz", X=X)
    capsys.readouterr()
    assert main(["-q", "predict", str(tmp_path / "m"), str(tmp_path / "x.npz")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "index,class,p_calm,p_rising" and [r.split(",")[1] for r in rows[1:]] == clf.predict(X).tolist()
    clf.classifier_.save(tmp_path / "run")  # a run directory without the estimator's section
    with pytest.raises(ValueError, match="no estimator section: a run directory of `lstmkit train`"):
        LSTMClassifier.load(tmp_path / "run")


def json_round_trip(value):
    import json

    return json.loads(json.dumps(value))


@pytest.fixture
def bare_lstmkit_logger():
    """The 'lstmkit' logger as a program that never set up logging has it (the CLI tests configure it)."""
    import logging

    logger = logging.getLogger("lstmkit")
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:], logger.propagate = [], True
    logger.setLevel(logging.NOTSET)
    yield logger
    logger.handlers[:], logger.propagate = saved[0], saved[2]
    logger.setLevel(saved[1])


def test_verbose_prints_epoch_lines_on_stderr_and_leaves_logging_as_it_was(capfd, bare_lstmkit_logger):
    import logging

    X, y = _equal_length(n=20)
    LSTMClassifier(**{**TINY, "epochs": 2}, verbose=True).fit(X, y)
    out, err = capfd.readouterr()
    assert "epoch 1/2 train_loss" in err and "epoch 2/2 train_loss" in err and out == ""
    logger = bare_lstmkit_logger
    assert logger.handlers == [] and logger.level == logging.NOTSET and logger.propagate
    LSTMClassifier(**{**TINY, "epochs": 2}).fit(X, y)
    assert capfd.readouterr() == ("", "")
