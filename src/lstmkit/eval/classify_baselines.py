"""Non-LSTM baselines for every classification run: aeon's MiniRocket and 1-nearest-neighbour DTW.

Each baseline is fitted on the run's training split (all of it: a baseline has no epochs to
select, so it needs no validation part) and scored once on the same test split as the model.
What ``metrics.json`` records per baseline (``baselines.<name>``): ``accuracy``, ``macro_f1``,
``balanced_accuracy``, ``train_seconds`` (fit), ``predict_seconds`` (the test split) and
``padded_length``; or ``{"skipped": reason}`` when it cannot or should not run.

How the series reach aeon (what an aeon user does with lstmkit's ``(T, D)`` arrays):

- Raw values, no standardisation (MiniRocket and DTW are used this way in aeon's benchmarks);
  channels first, ``(n, D, T)``.
- Unequal lengths: aeon's ``Padder`` (zeros at the end) **fitted on the training split**, so the
  common length is the longest *training* series (at least 9 steps, MiniRocket's minimum). A test
  series longer than that is truncated to its first ``padded_length`` steps (``truncated_test``
  counts them); the test split never sets the length.
- 1-NN DTW runs only when its cost, ``n_train * n_test * T^2 * D`` (DTW cells times channels, no
  window), is at most :data:`KNN_DTW_MAX_COST` (1e9: a few seconds on one core); larger data
  records ``skipped`` with the cost. MiniRocket is linear in ``n * T`` and always runs.
- Text (token) inputs have no series for these baselines: both are skipped.

The first MiniRocket or DTW call of a process compiles numba kernels (cached on disk by aeon
after that), which can add seconds to the first run's ``train_seconds``.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Sequence

import numpy as np

from .metrics import classification_metrics

__all__ = ["BASELINES", "KNN_DTW_MAX_COST", "MIN_LENGTH", "check_baselines", "to_panel", "fit_padding",
           "run_baselines"]

log = logging.getLogger(__name__)

BASELINES = ("minirocket", "knn_dtw")
KNN_DTW_MAX_COST = 1e9  # n_train * n_test * T^2 * D
MIN_LENGTH = 9  # MiniRocket's shortest series


def check_baselines(names: Sequence, field: str = "evaluate.baselines") -> list[str]:
    """The baseline names of a config, validated: a list of distinct names from :data:`BASELINES`."""
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
        raise ValueError(f"{field} must be a list of names from {', '.join(BASELINES)} (or []), got {names!r}")
    for name in names:
        if name not in BASELINES:
            raise ValueError(f"{field}: unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{field} lists a baseline twice: {list(names)}")
    return list(names)


def fit_padding(train: Sequence[np.ndarray]) -> int:
    """The common length of the baselines' panels: the longest training series (at least
    :data:`MIN_LENGTH`), from the training split only (aeon's ``Padder(padded_length="max")``)."""
    from aeon.transformations.collection.unequal_length import Padder

    padder = Padder(padded_length="max").fit([np.asarray(s, dtype=float).T for s in train])
    return max(int(padder._padded_length), MIN_LENGTH)


def to_panel(series: Sequence[np.ndarray], length: int) -> tuple[np.ndarray, int]:
    """((n, D, length) float array, how many series were truncated): each ``(T, D)`` series
    zero-padded at the end by aeon's ``Padder`` to ``length``, or truncated to its first
    ``length`` steps when longer."""
    from aeon.transformations.collection.unequal_length import Padder

    arrays = [np.asarray(s, dtype=float).T for s in series]  # -> (D, T)
    truncated = sum(a.shape[1] > length for a in arrays)
    arrays = [a[:, :length] for a in arrays]
    return np.asarray(Padder(padded_length=length).fit_transform(arrays)), int(truncated)


def _numeric(inputs: Sequence) -> bool:
    first = np.asarray(inputs[0]) if len(inputs) else None
    return first is not None and first.ndim == 2 and np.issubdtype(first.dtype, np.number)


def _score(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """The model's scores (lstmkit.eval.metrics), over the classes of both splits."""
    index = {c: i for i, c in enumerate(np.unique(np.concatenate([y_true, y_pred])))}
    t = np.array([index[c] for c in y_true])
    p = np.array([index[c] for c in y_pred])
    m = classification_metrics(t, p, len(index))
    return {k: m[k] for k in ("accuracy", "macro_f1", "balanced_accuracy")}


def _estimator(name: str, seed: int):
    if name == "minirocket":
        from aeon.classification.convolution_based import MiniRocketClassifier

        return MiniRocketClassifier(random_state=seed)
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    return KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw")


def run_baselines(names: Sequence[str], x_train: Sequence, y_train: np.ndarray, x_test: Sequence, y_test: np.ndarray,
                  seed: int = 0, predictions: bool = False) -> dict[str, dict]:
    """``{name: what metrics.json records}`` for each baseline in ``names`` (see the module doc):
    fitted on (x_train, y_train) only, then scored on (x_test, y_test). ``predictions``: each entry also
    holds its predicted labels (``predictions``, in the order of ``x_test``; for analysis, not recorded)."""
    names = check_baselines(names, "baselines")
    if not names:
        return {}
    if not (_numeric(x_train) and _numeric(x_test)):
        return {n: {"skipped": "text (token) input: these baselines need numeric series"} for n in names}
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    length = fit_padding(x_train)  # the training split alone sets the length
    X_train, _ = to_panel(x_train, length)
    X_test, truncated = to_panel(x_test, length)
    if truncated:
        log.info(f"baselines: {truncated} test series longer than the longest training series ({length} steps) "
                 "truncated to it")
    out = {}
    for name in names:
        if name == "knn_dtw":
            cost = float(len(X_train)) * len(X_test) * length ** 2 * X_train.shape[1]
            if cost > KNN_DTW_MAX_COST:
                out[name] = {"skipped": f"cost n_train*n_test*T^2*D = {cost:.2e} > {KNN_DTW_MAX_COST:.0e}"}
                log.info(f"baseline knn_dtw skipped: {out[name]['skipped']}")
                continue
        est = _estimator(name, seed)
        with warnings.catch_warnings():
            # aeon's numba DTW kernel casts uint64 to int64 internally (window sizes); nothing of ours to fix
            warnings.filterwarnings("ignore", message=".*unsafe cast from uint64 to int64.*")
            t0 = time.perf_counter()
            est.fit(X_train, y_train)
            fit_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            pred = est.predict(X_test)
            predict_seconds = time.perf_counter() - t0
        out[name] = {**_score(y_test, np.asarray(pred)), "train_seconds": round(fit_seconds, 3),
                     "predict_seconds": round(predict_seconds, 3), "padded_length": length,
                     "truncated_test": truncated}
        if predictions:
            out[name]["predictions"] = np.asarray(pred).tolist()
        log.info(f"baseline {name}: test accuracy {out[name]['accuracy']:.4f} (fit {fit_seconds:.2f} s)")
    return out


def baselines_section(metrics: dict) -> list[tuple[str, list[str]]]:
    """The report's section comparing the model with the baselines (from metrics.json)."""
    base = metrics.get("baselines") or {}
    if not base:
        return []
    rows = [f"| this run's model | {100 * metrics['test']['accuracy']:.2f}% | {100 * metrics['test']['macro_f1']:.2f}% "
            f"| {metrics['train_seconds']:.1f} s |"]
    for name, b in base.items():
        if "skipped" in b:
            rows.append(f"| {name} | skipped: {b['skipped']} | | |")
        else:
            rows.append(f"| {name} | {100 * b['accuracy']:.2f}% | {100 * b['macro_f1']:.2f}% | "
                        f"{b['train_seconds']:.2f} s "
                        f"(+ {b['predict_seconds']:.2f} s to predict) |")
    length = next((b["padded_length"] for b in base.values() if "padded_length" in b), None)
    note = (f"Baselines (aeon) fitted on the same training split, scored on the same test split; raw values, "
            f"series padded with zeros to the longest training series ({length} steps)" if length else
            "Baselines (aeon) fitted on the same training split, scored on the same test split")
    truncated = next((b["truncated_test"] for b in base.values() if b.get("truncated_test")), 0)
    if truncated:
        note += f", {truncated} longer test series truncated to it"
    return [("Baselines (test)", [note + ".", "", "| model | test accuracy | macro-F1 | train time |",
                                  "|---|---|---|---|", *rows])]
