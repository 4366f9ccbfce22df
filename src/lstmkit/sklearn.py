"""``LSTMClassifier``: a scikit-learn estimator over lstmkit's sequence classification pipeline.

Input ``X`` is one of:

- a 3-D array (n, T, D): n series of T steps and D features per step (``lengths=`` (n,)
  marks shorter series in a padded array; steps past a length are never read);
- a list of n arrays (T_i, D) or (T_i,): variable-length series, each keeping its length;
- a 2-D array (n, T) (or a list of equal-length 1-D arrays): n univariate series of T steps.
  Fitted on such input, the estimator is in scikit-learn's tabular case: ``n_features_in_`` is
  T and predicting needs the same T, as for any tabular estimator. Fitted on univariate
  series (D = 1), it also predicts 2-D input of any T.

``layout="ndt"`` reads 3-D arrays as (n, D, T) and each 2-D series of a list as (D, T_i), the
order aeon and sktime use; ``"ntd"`` reads them as (n, T, D). Left unset (None) it reads "ntd",
and a 3-D array with far more features than steps (D >= 2T and D >= 8) draws a UserWarning
naming ``layout`` (set it to "ntd" to keep that reading without the warning).

``n_features_in_`` is D for 3-D and list input. Training carves a stratified validation split
(``val_fraction``) from the data for early stopping and best-epoch selection, fits the
per-feature standardisation on the rest, and trains with AdamW, gradient clipping and
ReduceLROnPlateau (:func:`lstmkit.tasks.trainer.fit`). Probabilities are computed in float64
so that they do not depend on how samples are batched.

``save(DIR)`` writes a run directory (``model.safetensors`` + ``model.json``, the estimator's
parameters included) that ``LSTMClassifier.load(DIR)`` restores and ``lstmkit predict DIR FILE``
reads; pickling works too. ``verbose=True`` prints the per-epoch log lines on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import assert_all_finite, check_array, check_is_fitted, column_or_1d, validate_data

from .checkpoint import META, WEIGHTS
from .data.files import check_layout, to_ntd
from .tasks.classify import fit_classifier, load_classifier
from .tasks.trainer import TrainConfig

__all__ = ["LSTMClassifier"]


class LSTMClassifier(ClassifierMixin, BaseEstimator):
    """Recurrent sequence classifier (LSTM, or GRU / RNN for comparison) with pooling and a linear head.

    Parameters mirror :class:`lstmkit.models.RNNClassifierConfig` (``cell``, ``hidden_size``,
    ``num_layers``, ``bidirectional``, ``pooling``, ``dropout``, ``variants``) and
    :class:`lstmkit.tasks.TrainConfig` (``epochs``, ``batch_size``, ``lr``, ``weight_decay``,
    ``clip_norm``, ``early_stopping``, ``val_fraction``, ``device``: "auto" trains on CUDA when
    available, else on the CPU). ``random_state`` seeds the
    validation split, batch order, initialisation and dropout. ``layout``: "ntd" (n, T, D) or
    "ndt" (n, D, T) for 3-D arrays and the 2-D series of a list; None reads "ntd" and warns when
    an array looks transposed.
    """

    def __init__(self, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = True,
                 pooling: str = "mean", dropout: float = 0.0, variants: dict | None = None, epochs: int = 100,
                 batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 1e-2, clip_norm: float | None = 1.0,
                 early_stopping: int | None = 20, val_fraction: float = 0.2, normalize: bool = True,
                 device: str = "auto", random_state: Any = None, verbose: bool = False, layout: str | None = None) -> None:
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.dropout = dropout
        self.variants = variants
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.early_stopping = early_stopping
        self.val_fraction = val_fraction
        self.normalize = normalize
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.layout = layout

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    # ------------------------------------------------------------------ input handling
    def _series(self, X, lengths, reset: bool) -> list[np.ndarray]:
        seqs = self._read_series(X, lengths, reset)
        limit = np.finfo(np.float32).max  # the pipeline reads series as float32
        for i, a in enumerate(seqs):
            if a.size and np.abs(a).max() > limit:
                raise ValueError(f"X[{i}] holds values beyond float32's range (|x| > {limit:.3g}); rescale the data")
        return seqs

    def _read_series(self, X, lengths, reset: bool) -> list[np.ndarray]:
        layout = check_layout(self.layout)
        if X is None or isinstance(X, (str, bytes)):
            raise TypeError(f"X must be an array or a list of series, got {type(X).__name__}")
        if isinstance(X, (list, tuple)) and len(X) == 0:
            raise ValueError("X is empty: no samples (pass a list of (T_i, D) arrays or an (n, T, D) array)")
        if isinstance(X, (list, tuple)) and not np.isscalar(X[0]):
            try:
                arr = np.asarray(X, dtype=np.float64)
            except (ValueError, TypeError):  # ragged (or not numbers): check each series on its own
                arr = None
            if arr is None or arr.ndim == 1:
                if lengths is not None:
                    raise ValueError("lengths= is for a padded array; a list of series carries its own lengths")
                return self._features([_one_series(s, i, layout) for i, s in enumerate(X)], reset)
            X = arr
        if isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1:
            raise ValueError("X is a ragged object array; pass a list of (T_i, D) arrays (each keeps its length) "
                             "or a padded (n, T, D) array with lengths=")
        if getattr(X, "ndim", None) == 3:
            X = to_ntd(check_array(X, allow_nd=True, dtype=np.float64), layout, "X")
            return self._features(self._cut(list(X), lengths), reset)
        if not reset and not self._tabular:  # fitted on series: 2-D input is n univariate series
            if self.n_features_in_ != 1:
                raise ValueError(f"X is 2-D (n univariate series), but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features per time step: pass (n, T, D) or a list of (T_i, D)")
            X = check_array(X, dtype=np.float64)
        else:
            X = validate_data(self, X, reset=reset, dtype=np.float64)  # 2-D: n univariate series of T steps
            self._tabular = True
        return self._cut([row[:, None] for row in X], lengths)

    @staticmethod
    def _cut(seqs: list[np.ndarray], lengths) -> list[np.ndarray]:
        if lengths is None:
            return seqs
        lengths = np.asarray(lengths)
        total = seqs[0].shape[0] if seqs else 0
        if lengths.shape != (len(seqs),) or lengths.dtype.kind not in "iu" or lengths.min() < 1 or lengths.max() > total:
            raise ValueError(f"lengths must be {len(seqs)} integers in [1, {total}], got {lengths!r}")
        return [s[: int(n)] for s, n in zip(seqs, lengths)]

    def _features(self, seqs: list[np.ndarray], reset: bool) -> list[np.ndarray]:
        d = seqs[0].shape[1] if seqs else 0
        if seqs and d == 0:
            raise ValueError(f"X has 0 features per time step (series of shape {seqs[0].shape}); need at least 1")
        if reset:
            self.n_features_in_, self._tabular = d, False
        elif self._tabular:
            raise ValueError(f"X has {d} features per step as a 3-D array or list, but {type(self).__name__} was "
                             f"fitted on a 2-D array of {self.n_features_in_} steps")
        elif d != self.n_features_in_:
            raise ValueError(f"X has {d} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input (features per time step)")
        return seqs

    # ------------------------------------------------------------------ estimator API
    def fit(self, X, y, lengths=None) -> "LSTMClassifier":
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        seqs = self._series(X, lengths, reset=True)
        y = column_or_1d(y, warn=True)
        if y.dtype.kind in "fc":
            assert_all_finite(y, input_name="y")
        if y.dtype == object:
            kinds = {type(v) for v in y}
            if len({str if issubclass(k, str) else float if issubclass(k, numbers.Real) else k for k in kinds}) > 1:
                raise TypeError(f"y mixes label types {sorted(k.__name__ for k in kinds)}; use labels of one kind "
                                "(all numbers, or all strings)")
        check_classification_targets(y)
        if len(y) != len(seqs):
            raise ValueError(f"X has {len(seqs)} samples but y has {len(y)}")
        if self.variants is not None and not isinstance(self.variants, dict):
            raise TypeError(f"variants must be a dict of LSTM variant settings or None, got {self.variants!r}")
        seed = self.random_state if isinstance(self.random_state, numbers.Integral) and self.random_state >= 0 \
            else int(check_random_state(self.random_state).randint(2**31 - 1))
        spec = {"name": "rnn_classifier", "cell": self.cell, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "bidirectional": self.bidirectional, "pooling": self.pooling,
                "dropout": self.dropout, "variants": dict(self.variants or {})}
        train = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                            clip_norm=self.clip_norm, early_stopping=self.early_stopping,
                            val_fraction=self.val_fraction, seed=int(seed), device=self.device,
                            progress="log" if self.verbose else "off")
        self.classes_ = np.unique(y)
        with _log_to_stderr(self.verbose):
            clf, result, val = fit_classifier(seqs, y, spec, train, normalize=self.normalize)
        clf.model.double()  # predictions independent of batch composition
        clf.dtype = "float64"
        self.classifier_, self.history_, self.best_epoch_, self.val_scores_ = clf, result.history, result.best_epoch, val
        return self

    def predict_proba(self, X, lengths=None) -> np.ndarray:
        check_is_fitted(self)
        return self.classifier_.predict_proba(self._series(X, lengths, reset=False))

    def predict(self, X, lengths=None) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X, lengths).argmax(1)]

    def score(self, X, y, sample_weight=None, lengths=None) -> float:
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X, lengths), sample_weight=sample_weight)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike, overwrite: bool = False) -> None:
        """Write the fitted estimator to ``directory`` as a run directory: ``model.safetensors`` +
        ``model.json`` (weights in float64, architecture, labels, normalisation, and this
        estimator's parameters and fitted attributes). A directory that already holds a model is
        refused unless ``overwrite=True``. A ``random_state`` that is not an int is saved as None
        (it only seeds a refit)."""
        check_is_fitted(self, msg=f"This {type(self).__name__} is not fitted: call fit before save")
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{directory} exists and is not a directory")
        if not overwrite and any((directory / name).exists() for name in (WEIGHTS, META)):
            raise ValueError(f"{directory} already holds a model ({WEIGHTS}, {META}); pass overwrite=True to replace it")
        params = self.get_params()
        seed = params["random_state"]
        params["random_state"] = int(seed) if isinstance(seed, numbers.Integral) else None
        estimator = {"params": params, "classes": self.classes_.tolist(), "classes_dtype": self.classes_.dtype.str,
                     "n_features_in": int(self.n_features_in_), "tabular": bool(self._tabular),
                     "best_epoch": self.best_epoch_, "val_scores": self.val_scores_, "history": self.history_}
        self.classifier_.save(directory, {"estimator": estimator})

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "LSTMClassifier":
        """The fitted estimator :meth:`save` wrote to ``directory`` (on the CPU); nothing is unpickled."""
        clf = load_classifier(directory)
        saved = clf.meta.get("estimator")
        if not isinstance(saved, dict):
            raise ValueError(f"{directory}: {META} has no estimator section: a run directory of `lstmkit train`, not "
                             f"a saved {cls.__name__}; load it with lstmkit.tasks.classify.load_classifier")
        try:
            est = cls(**saved["params"])
            est.classes_ = np.array(saved["classes"]).astype(saved["classes_dtype"])
            est.n_features_in_, est._tabular = int(saved["n_features_in"]), bool(saved["tabular"])
            est.history_, est.best_epoch_, est.val_scores_ = saved["history"], saved["best_epoch"], saved["val_scores"]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{Path(directory) / META}: the estimator section is malformed ({e})") from None
        if est.classes_.tolist() != clf.classes:
            raise ValueError(f"{Path(directory) / META}: the estimator's classes {est.classes_.tolist()} differ from "
                             f"the model's {clf.classes}")
        est.classifier_ = clf
        return est


@contextlib.contextmanager
def _log_to_stderr(verbose: bool):
    """``verbose=True``: the training log lines reach stderr even where logging is not set up. Unless
    the 'lstmkit' logger already passes INFO records to a handler (the CLI's, or the user's own
    setup), a StreamHandler on stderr joins it for the duration of the fit (records then stay
    off the root logger's handlers, so nothing prints twice); level, handlers and propagation are
    restored afterwards."""
    logger = logging.getLogger("lstmkit")
    if not verbose or (logger.hasHandlers() and logger.getEffectiveLevel() <= logging.INFO):
        yield
        return
    handler = logging.StreamHandler()  # the current sys.stderr
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _one_series(s, i: int, layout: str | None = None) -> np.ndarray:
    """Series ``X[i]`` of a list as a float64 (T_i, D) array ((T_i,) -> one feature; a (D, T_i)
    array under ``layout="ndt"`` is transposed); errors name it."""
    if s is None or isinstance(s, (str, bytes)) or np.isscalar(s):
        raise TypeError(f"X[{i}] must be an array of shape (T_i, D) or (T_i,), got {type(s).__name__}")
    try:
        a = np.asarray(s)
    except ValueError:  # a ragged nested list
        raise ValueError(f"X[{i}] is ragged (steps with different numbers of features); pass a (T_i, D) array") from None
    if a.ndim not in (1, 2):
        raise ValueError(f"X[{i}] must be a series of shape (T_i, D) or (T_i,), got shape {a.shape}")
    if layout == "ndt" and a.ndim == 2:
        a = a.T
    if a.shape[0] == 0:
        raise ValueError(f"X[{i}] has no time steps (shape {a.shape}); every series needs T_i >= 1")
    return check_array(a.reshape(len(a), -1), dtype=np.float64, ensure_min_samples=1, input_name=f"X[{i}]")
