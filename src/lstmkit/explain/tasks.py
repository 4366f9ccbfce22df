"""The tasks' ``explain`` hooks (named in their registry entries as ``"lstmkit.explain.tasks:<function>"``
and resolved when ``lstmkit explain`` runs, so Captum is imported only then).

- classification: the explained scalar is the softmax probability of the sample's predicted class;
  the baseline is zeros in the model's normalised input space, i.e. the training mean of every
  feature (the run's standardisation is fitted on its training part), or plain zeros for a run that
  did not normalise.
- forecasting: the explained scalar is the first forecast step of the first target, in the model's
  transformed space (after the run's log/difference/standardisation transforms), averaged over the
  ensemble members; the input is the history's encoder rows (targets and covariates); the baseline is
  zeros in that space (the transformed training mean).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .core import Subject, explain

__all__ = ["explain_classifier_run", "explain_forecaster_run", "EXPLAIN_OPTIONS"]

EXPLAIN_OPTIONS = ("index", "out", "unit_samples", "faithfulness_samples", "n_steps", "draws", "seed")


def _settings(options: dict) -> dict:
    return {k: options[k] for k in ("unit_samples", "faithfulness_samples", "n_steps", "draws", "seed")
            if options.get(k) is not None}


def _out(run, options: dict) -> Path:
    return Path(options.get("out") or Path(run) / "explain")


def explain_classifier_run(run, input: str | None, options: dict) -> dict:
    """``lstmkit explain RUN INPUT``: INPUT a series file (as ``lstmkit predict`` reads) or ``test`` (the
    run's own test split)."""
    from ..tasks.classify import DataConfig, load_classifier, load_data, load_inputs
    from ..tasks.classify_ensemble import EnsembleClassifier
    from ..tasks.classify_io import _input_format, _read_options

    clf = load_classifier(run)
    ensemble = None
    if isinstance(clf, EnsembleClassifier):  # train.ensemble or model.name auto: one member is explained
        ensemble = (f"this run is an ensemble of {len(clf.members)} models whose probabilities are averaged; "
                    f"this explains member 0 (saved at the run's top level); the others: lstmkit explain "
                    f"{Path(run) / 'members' / '<i>'} (i = 1..{len(clf.members) - 1})")
        clf = clf.members[0]
    if clf.pre.kind == "tokens":
        raise ValueError("explain works on numeric series; this run classifies text (token ids have no "
                         "input-space baseline for Integrated Gradients)")
    labels = None
    if input in (None, "test"):
        saved = clf.meta.get("data")
        if not saved:
            raise ValueError(f"{run}: model.json records no data source; pass an INPUT file")
        _, (raw, labels) = load_data(DataConfig(**saved))
        source = "the run's test split"
    else:
        label_column, read = _read_options(options, clf, input)
        raw, labels = load_inputs(input, _input_format(clf, options.get("format") or "auto"), label_column=label_column,
                                  labelled=options.get("label_column") is not None, **read)
        source = str(input)
    dtype = getattr(torch, clf.dtype)
    model = clf.model.cpu().eval()
    inputs = [torch.as_tensor(a, dtype=dtype) for a in clf.pre.inputs(raw)]
    classes = clf.classes
    D = inputs[0].shape[1]
    features = list((clf.meta.get("data") or {}).get("feature_columns") or []) or [f"x{d}" for d in range(D)]

    def run_model(x, lengths):
        return model(x, lengths)

    def score_for(i: int):
        x = inputs[i]
        n = x.shape[0]
        with torch.no_grad():
            proba = torch.softmax(model(x[None], torch.tensor([n])).double(), 1)[0]
        c = int(proba.argmax())

        def score(batch):
            lengths = torch.full((batch.shape[0],), n, dtype=torch.long)
            return torch.softmax(model(batch, lengths), 1)[:, c]

        target = {"what": f"probability of class {classes[c]!r} (predicted)", "class": str(classes[c]),
                  "probabilities": {str(k): round(float(p), 6) for k, p in zip(classes, proba)}}
        if labels is not None:
            target["true_class"] = str(labels[i])
        return score, target

    info = {"task": "classify", "run": str(run), "input": source, "model": clf.spec.get("name"),
            **({"ensemble": ensemble} if ensemble else {})}
    if clf.spec.get("dimension_shuffle", clf.spec.get("name") in ("lstm_fcn", "mlstm_fcn")):
        info["note"] = ("dimension shuffle: this model's LSTM reads the series' D features as its steps, so the "
                        "gates' 'steps' are features; the attributions are over the series' own steps")
    normalised = clf.pre.standardizer is not None
    subject = Subject(model, inputs, run_model, score_for, torch.zeros_like,
                      "zeros in the model's normalised input space: the training mean of every feature" if normalised
                      else "zeros (this run did not normalise its inputs)", features, info)
    index = int(options.get("index") or 0)
    return explain(subject, index, _out(run, options), **_settings(options))


def explain_forecaster_run(run, input: str | None, options: dict) -> dict:
    """``lstmkit explain RUN [INPUT]``: INPUT a CSV history (as ``lstmkit predict`` reads), or none /
    ``test`` for the run's own series (each to its end); ``--index`` picks the series."""
    from ..tasks.forecast import load_forecaster, read_forecast_input, saved_series

    fc = load_forecaster(run)
    if input in (None, "test"):
        series = saved_series(fc)
        futures = [None] * len(series)
        source = "the run's own series, to their end"
    else:
        history, future = read_forecast_input(input, fc, gaps=options.get("gaps") or "error")
        series, futures, source = [history], [future], str(input)
    C = len(fc.targets)
    members = nn.ModuleList(fc.models).eval()
    inputs, knowns = [], []
    for s, future in zip(series, futures):
        tf = fc.transform_for(s.name, s.values[:, :C])
        inputs.append(torch.as_tensor(fc.inputs(s.values, s.times, tf), dtype=torch.float64))
        _, known = fc._future_known(s.times, fc.horizon, future)
        knowns.append(torch.as_tensor(known, dtype=torch.float64))
    columns = [*fc.targets, *fc.past, *fc.future]
    D = inputs[0].shape[1]
    features = columns + [f"calendar{j}" for j in range(D - len(columns))]

    def run_model(x, lengths):
        return [m.encode(x, lengths) for m in members]

    def score_for(i: int):
        known = knowns[i]

        def score(batch):
            kn = known[None].expand(batch.shape[0], -1, -1) if known.shape[1] else None
            points = []
            for m in members:
                out, state = m.encode(batch)
                points.append(m.point(m.forecast(out[:, -1], state, batch[:, -1, :C], kn))[:, 0, 0])
            return torch.stack(points).mean(0)

        with torch.no_grad():
            value = float(score(inputs[i][None])[0])
        return score, {"what": f"first-step forecast of {fc.targets[0]!r} (transformed scale)",
                       "series": series[i].name, "forecast_transformed": round(value, 6),
                       "members": len(members)}

    subject = Subject(members, inputs, run_model, score_for, torch.zeros_like,
                      "zeros in the model's transformed input space: the transformed training mean", features,
                      {"task": "forecast", "run": str(run), "input": source})
    index = int(options.get("index") or 0)
    return explain(subject, index, _out(run, options), **_settings(options))
