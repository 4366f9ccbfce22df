"""The classification task's commands on a saved run: ``lstmkit predict`` and ``lstmkit evaluate``.

Both read the user's files with the run's own data settings filling what the command line leaves
out (a long file's id, time, label and feature columns; an ``.npz`` layout); see
``docs/classify.md`` ("CSV files") for the formats.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .registry import Prediction

__all__ = ["predict_run", "given", "PREDICT_OPTIONS", "EVALUATE_OPTIONS"]

_READ = ("format", "label_column", "layout", "id_column", "time_column")
PREDICT_OPTIONS = (*_READ, "text_column")
EVALUATE_OPTIONS = (*_READ, "labels")


def _input_format(clf, fmt: str) -> str:
    """A text model reads CSV files as text,label; anything else goes by suffix."""
    return "text" if clf.pre.kind == "tokens" and fmt == "auto" else fmt


def _read_options(options: dict, clf, path: str) -> tuple[object, dict]:
    """(label column, load_inputs options) for ``path``: the command line's, with the run's own data
    settings filling the rest (a long file's id, time, label and feature columns; an .npz layout)."""
    from ..data.inputs import format_of

    saved, kind = clf.meta.get("data") or {}, format_of(path, _input_format(clf, options.get("format") or "auto"))
    layout, id_column, time_column = options.get("layout"), options.get("id_column"), options.get("time_column")
    if kind != "long":
        if id_column or time_column:
            raise ValueError("--id-column and --time-column apply to long CSV files (--format long)")
        return options.get("label_column"), {"layout": layout or (saved.get("layout") if kind == "npz" else None)}
    if saved.get("format") != "long":
        saved = {}
    return options.get("label_column") or saved.get("label_column"), {
        "id_column": id_column or saved.get("id_column"), "feature_columns": saved.get("feature_columns"),
        "time_column": time_column or saved.get("time_column"), "layout": layout}


def given(run, data: str | None, options: dict) -> tuple[object, str]:
    """What ``lstmkit evaluate RUN [--data ...]`` scores a classification run on
    (:func:`lstmkit.tasks.lifecycle.evaluate_run`): its test split (``data`` None), a dataset's test split (a
    name) or a labelled file; the saved classifier (its members) alone, without the baselines."""
    from .classify import DataConfig, _Data, load_classifier, load_data, load_inputs

    clf = load_classifier(run.out)
    if (options.get("layout") or options.get("id_column") or options.get("time_column")) \
            and not (data and Path(data).is_file()):
        raise ValueError("--layout, --id-column and --time-column describe a --data FILE; the run's own test split "
                         "and dataset names are read as they were trained")
    if data is None:
        _, (x, y) = load_data(run.config.data)
        source = "the run's test split"
    elif Path(data).is_file():
        label_column, read = _read_options(options, clf, data)
        x, y = load_inputs(data, _input_format(clf, options.get("format") or "auto"), options.get("labels"),
                           label_column, **read)
        if y is None:
            raise ValueError(f"{data} has no labels to evaluate against")
        source = data
    else:
        _, (x, y) = load_data(DataConfig(name=data))
        source = f"the test split of {data}"
    return _Data(None, (x, y), classifier=clf), source


def predict_run(run, input: str, options: dict) -> Prediction:
    """The class and the probability of every class for each sample of ``input``: CSV rows, or
    JSON when ``options["output"]`` ends in .json; a long file's rows carry its ids."""
    from .classify import load_classifier, load_inputs

    if input is None:
        raise ValueError("predict needs an INPUT file for a classify run (.npz, .csv, .ts, IDX)")
    clf = load_classifier(run)
    label_column, read = _read_options(options, clf, input)
    x, _, ids = load_inputs(input, _input_format(clf, options.get("format") or "auto"), label_column=label_column,
                            text_column=options.get("text_column") or "text",
                            labelled=options.get("label_column") is not None, ids=True, **read)
    proba = clf.predict_proba(x)
    classes = clf.classes
    predicted = clf.pre.labels.decode(proba.argmax(1))
    first = (lambda i: {"index": i}) if ids is None else (lambda i: {"index": i, "id": str(ids[i])})  # noqa: E731
    output = options.get("output")
    if output and str(output).endswith(".json"):
        rows = [{**first(i), "class": c, "probabilities": dict(zip(map(str, classes), map(float, p)))}
                for i, (c, p) in enumerate(zip(predicted, proba))]
        text = json.dumps(rows, indent=1, default=str)
    else:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([*first(0), "class", *(f"p_{c}" for c in classes)])
        for i, (c, p) in enumerate(zip(predicted, proba)):
            w.writerow([*first(i).values(), c, *(f"{v:.6f}" for v in p)])
        text = buf.getvalue()
    return Prediction(text, {"predictions": len(predicted)}, f"{len(predicted)} predictions")
