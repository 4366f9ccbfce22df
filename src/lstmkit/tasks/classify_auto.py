"""``model.name: auto``: one command for any classification dataset, chosen on the training split alone.

``lstmkit train classify/auto --set data.name=ucr:NAME`` (or ``--set data.train=FILE``) runs:

1. **Stratified k-fold cross-validation** (scikit-learn ``StratifiedKFold``, ``model.folds``, default 3,
   fewer when a class has fewer series; shuffled with ``train.seed``) of each candidate in
   ``model.candidates`` (default: :data:`DEFAULT_CANDIDATES`). Fold model ``i`` trains on the other
   folds (its standardisation fitted there) from seed ``train.seed * 1000 + i`` and keeps the weights
   of its best epoch on its held-out fold (``train.monitor``, early stopping); the candidate's CV score
   is the mean accuracy of its fold models on their held-out folds. (The held-out fold both stops the
   fold model and scores it, so CV scores are slightly optimistic -- equally for every candidate.)
2. **Choice**: the candidate with the best mean CV accuracy (ties: the lower mean CV loss); only
   candidates whose every fold ran are eligible (unless none did). ``model.top: N`` (default 1) keeps
   the N best eligible candidates in this order (fewer when fewer ran), the first being the chosen one.
3. **Ensemble**: the chosen candidate's k fold models, class probabilities averaged (every training
   series is in k-1 of their training parts) -- with ``model.top: N``, the fold models of the N kept
   candidates, each model weighing the same -- plus ``model.refit`` (default 0) **refits**: models of the
   chosen candidate trained on *all* training series (standardisation fitted on all of them) from seeds
   ``train.seed * 1000 + k + r``, replaying the learning rates of the fold model whose best epoch is the
   median of the fold models' best epochs, up to that epoch (no validation, no early stopping; the final
   weights kept). Every member weighs the same in the average.

The test split is not read until the run scores the finished ensemble (:func:`train_auto` only sees
the training split); the candidates not chosen are scored on it afterwards, for the record only
(``auto.candidates[].test_accuracy_after``), to measure what the selection gained.

Recipes (:func:`recipe`) depend on the data's shape only, never on its name:

- ``lstm_fcn``: LSTM-FCN as in Karim et al. 2017 (dimension shuffle, 8 cells, LSTM dropout 0.8) for
  equal-length series; LSTM over time (64 cells, lengths) for unequal ones.
- ``mlstm_fcn``: MLSTM-FCN (squeeze-and-excite), LSTM over time with lengths, 64 cells, dropout 0.5.
- ``bilstm_attention``: a bidirectional LSTM (64 per direction) with attention pooling.
- **Long series** (more than :data:`LONG` steps): the FCN models average the series over windows of
  ``ceil(T / 256)`` steps first (``stride``; a strided front end, so the convolutions and the LSTM see
  at most 256 steps); ``bilstm_attention`` is skipped (a step-by-step LSTM over thousands of steps
  does not fit the budget).
- Batches of ``clip(n_fit / 8, 8, train.batch_size)`` series (rounded down to a power of two), and at
  most ``max(30, 600 / steps per epoch)`` epochs (``train.epochs`` caps it) with early stopping after
  ``max(10, epochs x model.patience)`` epochs without improvement (:data:`DEFAULT_PATIENCE` 0.1; plateau
  patience half of it): a few hundred optimizer steps on tiny data
  instead of a thousand one-step epochs, and few epochs on large data.

**Budget** (``train.budget_seconds``; :data:`DEFAULT_BUDGET` when null): checked before each fold. A
candidate is not started when the time left is less than what the previous candidates took on average
(status ``skipped (budget)``), a candidate whose next fold would not fit stops there (``incomplete``);
the first fold of the first candidate always runs, and a fold once started runs to its end, so a run
can exceed the budget by about one fold's time. The report lists every candidate with its status.
Each refit is checked too, before it starts: it is not started when the time spent plus its estimate (the
chosen candidate's mean fold time, scaled by the refit's series and epochs against a fold model's) would
exceed the budget, and the refits not started are listed (``auto.refit``); the ensemble is then the fold
models and the refits that ran. No refit is guaranteed, so the budget caps this stage (a refit once started
runs to its end, so the refits can take a run past the budget by about one refit).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from typing import Sequence

import numpy as np

from .classify_ensemble import EnsembleClassifier, Fitted, member_scores

__all__ = ["DEFAULT_CANDIDATES", "DEFAULT_BUDGET", "DEFAULT_PATIENCE", "LONG", "check_auto", "recipe", "train_auto",
           "cv_splits", "refit_schedule", "refit_estimate", "refit_chosen", "cross_validate", "nested_cross_validate"]

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES = ("lstm_fcn", "mlstm_fcn", "bilstm_attention")
DEFAULT_BUDGET = 180.0  # seconds of search (= training) when train.budget_seconds is null
DEFAULT_FOLDS = 3
LONG = 512  # steps: longer series get the strided front end
MAX_STEPS = 600  # optimizer steps a fold model may take (before early stopping)
_KEYS = ("name", "candidates", "folds", "refit", "top", "patience")
DEFAULT_PATIENCE = 0.1  # early stopping after max(10, patience x the epoch cap) epochs without improvement


def check_auto(model: dict, train) -> None:
    """Validate a ``model: {name: auto, candidates: [...], folds: k}`` section; errors name the field."""
    unknown = [k for k in model if k not in _KEYS]
    if unknown:
        raise ValueError(f"model.{unknown[0]}: model.name auto takes only {', '.join(_KEYS[1:])} (it chooses the "
                         "architecture and its settings itself)")
    candidates = model.get("candidates", list(DEFAULT_CANDIDATES))
    if isinstance(candidates, str) or not isinstance(candidates, (list, tuple)) or not candidates:
        raise ValueError(f"model.candidates must be a non-empty list from {', '.join(DEFAULT_CANDIDATES)}, "
                         f"got {candidates!r}")
    for c in candidates:
        if c not in DEFAULT_CANDIDATES:
            raise ValueError(f"model.candidates: unknown candidate {c!r}; valid: {', '.join(DEFAULT_CANDIDATES)}")
    if len(set(candidates)) != len(candidates):
        raise ValueError(f"model.candidates lists a candidate twice: {list(candidates)}")
    folds = model.get("folds", DEFAULT_FOLDS)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"model.folds must be an int >= 2, got {folds!r}")
    refit = model.get("refit", 0)
    if isinstance(refit, bool) or not isinstance(refit, int) or refit < 0:
        raise ValueError(f"model.refit must be an int >= 0 (models of the chosen candidate refit on all training "
                         f"series, added to its fold models), got {refit!r}")
    top = model.get("top", 1)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= len(candidates):
        raise ValueError(f"model.top must be an int from 1 to the number of model.candidates ({len(candidates)}): the "
                         f"fold models of that many best candidates by CV are averaged, got {top!r}")
    patience = model.get("patience", DEFAULT_PATIENCE)
    if isinstance(patience, bool) or not isinstance(patience, (int, float)) or not 0 < patience <= 1:
        raise ValueError(f"model.patience must be a number in (0, 1]: a fold model stops after max(10, patience x its "
                         f"epoch cap) epochs without improvement, got {patience!r}")
    if train.ensemble != 1:
        raise ValueError(f"train.ensemble={train.ensemble} does not apply to model.name auto: its ensemble is the "
                         f"chosen candidate's model.folds={folds} fold models")


def recipe(name: str, lengths: Sequence[int], n_fit: int, train,
           patience_fraction: float = DEFAULT_PATIENCE) -> tuple[dict | None, dict, str]:
    """(model spec or None when the candidate does not apply, train overrides, a note) for candidate
    ``name`` on training series of these ``lengths``, ``n_fit`` of which a fold model trains on;
    ``patience_fraction`` is ``model.patience``."""
    longest, equal = int(max(lengths)), min(lengths) == max(lengths)
    stride = math.ceil(longest / 256) if longest > LONG else 1
    if name == "bilstm_attention":
        if longest > LONG:
            return None, {}, f"not run: series of {longest} steps (> {LONG}) are too long for a step-by-step LSTM"
        spec = {"name": "rnn_classifier", "cell": "lstm", "hidden_size": 64, "bidirectional": True,
                "pooling": "attention", "dropout": 0.3}
    elif name == "lstm_fcn" and equal:
        spec = {"name": "lstm_fcn", "hidden_size": 8, "lstm_dropout": 0.8, "dimension_shuffle": True}
    else:
        spec = {"name": name, "hidden_size": 64, "lstm_dropout": 0.5, "dimension_shuffle": False}
    if stride > 1 and spec["name"] != "rnn_classifier":
        spec["stride"] = stride
    batch = int(min(train.batch_size, max(8, 2 ** int(math.log2(max(1, n_fit / 8))))))
    steps = math.ceil(n_fit / batch)
    epochs = int(min(train.epochs, max(30, math.ceil(MAX_STEPS / steps))))
    patience = max(10, int(epochs * patience_fraction + 1e-9))  # + 1e-9: 0.1 x epochs floors as epochs // 10
    overrides = {"batch_size": batch, "epochs": epochs, "early_stopping": patience,
                 "plateau_patience": max(5, patience // 2)}
    return spec, overrides, f"stride {stride}" if stride > 1 else ""


def cv_splits(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (train indices, held-out indices) pairs of the training split; k is lowered to
    the smallest class's count (at least 2)."""
    from sklearn.model_selection import StratifiedKFold

    _, counts = np.unique(labels, return_counts=True)
    k = min(folds, int(counts.min()))
    if k < 2:
        raise ValueError(f"model.name auto cross-validates on the training split, but a class has "
                         f"{int(counts.min())} training series; each class needs at least 2")
    if k < folds:
        log.info(f"model.folds={folds} lowered to {k}: the smallest class has {int(counts.min())} training series")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed % 2**32)
    return [(tr, va) for tr, va in skf.split(np.zeros(len(labels)), labels)]


def _row(name: str, status: str, **kw) -> dict:
    return {"name": name, "status": status, "model": None, "train": None, "cv_accuracy": None,
            "cv_accuracy_std": None, "cv_loss": None, "fold_accuracy": [], "epochs": [], "seconds": 0.0, **kw}


def train_auto(x: Sequence, y: np.ndarray, config, on_prepared=None) -> Fitted:
    """Cross-validate the candidates on the training split (x, y), choose, and return the chosen
    candidate's fold models as the ensemble (see the module doc). Never sees the test split."""
    from .classifier import fit_classifier

    d, train, model = config.data, config.train, config.model
    candidates = list(model.get("candidates", DEFAULT_CANDIDATES))
    budget = train.budget_seconds if train.budget_seconds is not None else DEFAULT_BUDGET
    y = np.asarray(y)
    splits = cv_splits(y, model.get("folds", DEFAULT_FOLDS), train.seed)
    k = len(splits)
    lengths = [len(s) for s in x]
    n_fit = min(len(tr) for tr, _ in splits)
    start = time.perf_counter()
    rows, fitted = [], {}
    for name in candidates:
        spec, overrides, note = recipe(name, lengths, n_fit, train, model.get("patience", DEFAULT_PATIENCE))
        if spec is None:
            rows.append(_row(name, note))
            continue
        done = [r["seconds"] for r in rows if r["status"] in ("complete", "incomplete")]
        if done and time.perf_counter() - start + float(np.mean(done)) > budget:
            rows.append(_row(name, "skipped (budget)"))
            log.warning(f"auto: candidate {name} not started: train.budget_seconds={budget:g} would be exceeded")
            continue
        t0 = time.perf_counter()
        members, results, vals, seeds = [], [], [], []
        for i, (tr, va) in enumerate(splits):
            per_fold = (time.perf_counter() - t0) / max(1, i)
            if i > 0 and time.perf_counter() - start + per_fold > budget:
                log.warning(f"auto: candidate {name} stopped after {i} of {k} folds: budget spent")
                break
            seed = train.seed * 1000 + i
            fold_train = replace(train, seed=seed, **overrides)
            clf, result, val = fit_classifier(x, y, spec, fold_train, d.normalize, d.min_freq, d.max_vocab,
                                              augment=d.augment, split=(tr, va),
                                              on_prepared=on_prepared if not fitted and i == 0 else None)
            members.append(clf), results.append(result), vals.append(val), seeds.append(seed)
            log.info(f"auto: {name} fold {i + 1}/{k}: held-out accuracy {val['accuracy']:.4f}, loss {val['loss']:.4f}, "
                     f"best epoch {result.best_epoch}/{result.epochs}, {result.seconds:.1f} s")
        acc = [v["accuracy"] for v in vals]
        rows.append(_row(name, "complete" if len(members) == k else "incomplete", model=spec,
                         train=overrides, note=note, cv_accuracy=float(np.mean(acc)),
                         cv_accuracy_std=float(np.std(acc)), cv_loss=float(np.mean([v["loss"] for v in vals])),
                         fold_accuracy=acc, epochs=[r.epochs for r in results], seconds=time.perf_counter() - t0))
        fitted[name] = (members, results, vals, seeds)
        log.info(f"auto: {name} CV accuracy {rows[-1]['cv_accuracy']:.4f} ± {rows[-1]['cv_accuracy_std']:.4f} "
                 f"({len(members)}/{k} folds, {rows[-1]['seconds']:.0f} s)")
    ranked = _ranked(rows)
    chosen, kept = ranked[0], ranked[:model.get("top", 1)]
    val = {key: float(np.mean([v[key] for v in fitted[chosen][2]])) for key in fitted[chosen][2][0]}
    members, results, vals, seeds = ([item for name in kept for item in fitted[name][j]] for j in range(4))
    info = {"folds": k, "budget_seconds": budget, "chosen": chosen, "averaged": kept,
            "search_seconds": time.perf_counter() - start, "candidates": rows}
    row = next(r for r in rows if r["name"] == chosen)
    refits, refit_results, refit_seeds, info["refit"] = refit_chosen(
        x, y, config, row, fitted[chosen][1], n_fit, k, start, budget)
    members, results = members + refits, results + refit_results
    vals, seeds = vals + [{"accuracy": None, "loss": None}] * len(refits), seeds + refit_seeds
    info["seconds"] = time.perf_counter() - start
    # the eligible candidates' fold models in rank order: the nested mode scores the two best averaged
    parts = {"folds": fitted[chosen][0], "refits": refits, "ranked": [fitted[name][0] for name in ranked],
             "several": len(candidates) > 1}

    def after_test(x_test, y_test) -> dict:
        """Scored after the run's test scores: every other candidate's fold ensemble, for the record (with
        ``model.top`` > 1 the chosen one's too, which is then not the model)."""
        for row in rows:
            if row["name"] in fitted and (row["name"] != chosen or len(kept) > 1):
                ens = EnsembleClassifier(fitted[row["name"]][0])
                row["test_accuracy_after"] = ens.evaluate(x_test, y_test)[0]["accuracy"]
                row["member_test_accuracy_after"] = [m["accuracy"] for m in member_scores(ens, x_test, y_test)]
        every = [m for name in fitted for m in fitted[name][0]]
        if len(fitted) > 1:  # all candidates' fold models averaged: what skipping the choice would give
            info["all_candidates_test_accuracy_after"] = EnsembleClassifier(every).evaluate(x_test, y_test)[0]["accuracy"]
        if refits:  # the chosen candidate's fold models alone, and its refits alone: what the refits changed
            for key, part in (("folds_only", parts["folds"]), ("refits_only", parts["refits"])):
                accuracy = EnsembleClassifier(part).evaluate(x_test, y_test)[0]["accuracy"]
                info["refit"][f"{key}_test_accuracy_after"] = accuracy
        return {"auto": info}

    classifier = EnsembleClassifier(members) if len(members) > 1 else members[0]
    return Fitted(classifier, results, vals, time.perf_counter() - start, seeds, val, {"auto": info}, [], after_test,
                  parts)


def refit_schedule(results: list) -> tuple[list[float], int]:
    """(learning rates, fold index): the rates of the fold model whose best epoch is the median of the
    fold models' best epochs (the lower median for an even count), up to and including that epoch."""
    order = sorted(range(len(results)), key=lambda i: (results[i].best_epoch, i))
    i = order[(len(order) - 1) // 2]
    best = max(1, results[i].best_epoch)
    return [float(row["lr"]) for row in results[i].history[:best]], i


def refit_estimate(seconds: float, results: list, n_all: int, n_fit: int, epochs: int) -> float:
    """The expected seconds of one refit: the chosen candidate's mean fold time (``seconds`` over its
    ``results``), scaled by the series (``n_all / n_fit``) and epochs (``epochs`` / mean fold epochs)."""
    mean_epochs = max(1.0, float(np.mean([r.epochs for r in results])))
    return seconds / len(results) * (n_all / n_fit) * (epochs / mean_epochs)


def refit_chosen(x: Sequence, y: np.ndarray, config, row: dict, results: list, n_fit: int, k: int,
                 start: float, budget: float) -> tuple[list, list, list, dict]:
    """``model.refit`` models of the chosen candidate (``row``) on all training series, each replaying
    :func:`refit_schedule` of its fold models, each started only when its estimated time still fits the
    budget. Returns (classifiers, fit results, seeds, the ``auto.refit`` record)."""
    from .classifier import Classifier, _evaluate, _loss, prepare_training
    from .trainer import fit

    d, train, wanted = config.data, config.train, config.model.get("refit", 0)
    record = {"requested": wanted, "trained": 0, "seeds": [], "seconds": []}
    if wanted == 0:
        return [], [], [], record
    schedule, source = refit_schedule(results)
    estimate = refit_estimate(row["seconds"], results, len(y), n_fit, len(schedule))
    record.update(epochs=len(schedule), schedule_from_fold=source, estimate_seconds=estimate)
    everything = np.arange(len(y))
    classifiers, fits, seeds = [], [], []
    for r in range(wanted):
        spent = time.perf_counter() - start
        if spent + estimate > budget:
            log.warning(f"auto: {wanted - r} of {wanted} refits not started: train.budget_seconds={budget:g} would be "
                        f"exceeded ({spent:.0f} s spent, about {estimate:.0f} s each)")
            break
        seed = train.seed * 1000 + k + r
        refit_train = replace(train, seed=seed, **row["train"])
        t0 = time.perf_counter()
        # prepare_training needs a validation part; the replay never evaluates or selects with it
        p = prepare_training(x, y, row["model"], refit_train, d.normalize, d.min_freq, d.max_vocab, d.augment,
                             split=(everything, everything[:1]))
        result = fit(p.model, p.train_set.batches, [], _loss, _evaluate, refit_train, lr_schedule=schedule)
        p.model.eval()
        classifiers.append(Classifier(p.model, p.pre, p.spec)), fits.append(result), seeds.append(seed)
        record["seconds"].append(time.perf_counter() - t0)
        log.info(f"auto: refit {r + 1}/{wanted} of {row['name']} on all {len(y)} training series: {len(schedule)} "
                 f"epochs, {record['seconds'][-1]:.1f} s")
    record.update(trained=len(classifiers), seeds=seeds,
                  status="complete" if len(classifiers) == wanted else "skipped (budget)" if not classifiers
                  else "partial (budget)")
    return classifiers, fits, seeds, record


def _ranked(rows: list[dict]) -> list[str]:
    """The eligible candidates, best first: complete ones by mean CV accuracy (ties: lower CV loss); when
    none completed, the incomplete ones. The first is the chosen candidate."""
    ran = [r for r in rows if r["status"] == "complete"] or [r for r in rows if r["status"] == "incomplete"]
    if not ran:
        raise ValueError("model.name auto: no candidate applies to this data: "
                         + "; ".join(f"{r['name']}: {r['status']}" for r in rows))
    return [r["name"] for r in sorted(ran, key=lambda r: (-r["cv_accuracy"], r["cv_loss"]))]


def auto_section(info: dict) -> tuple[str, list[str]]:
    """The report's section: every candidate's CV score, time and status, and the choice."""
    lines = [f"Chosen on the training split alone: stratified {info['folds']}-fold cross-validation, budget "
             f"{info['budget_seconds']:g} s (search took {info['search_seconds']:.0f} s). The model is "
             + (f"the fold models of the {len(info['averaged'])} best candidates ({', '.join(info['averaged'])})"
                if len(info.get("averaged", [])) > 1 else f"the chosen candidate's {info['folds']} fold models")
             + (f" and its {info['refit']['trained']} refit(s)" if (info.get("refit") or {}).get("trained") else "")
             + ", class probabilities averaged.", "",
             "| candidate | status | CV accuracy | CV loss | per fold | epochs | time |",
             "|---|---|---|---|---|---|---|"]
    for r in info["candidates"]:
        mark = " **(chosen)**" if r["name"] == info["chosen"] else ""
        if r["cv_accuracy"] is None:
            lines.append(f"| {r['name']}{mark} | {r['status']} | | | | | |")
            continue
        lines.append(f"| {r['name']}{mark} | {r['status']} | {100 * r['cv_accuracy']:.2f} ± "
                     f"{100 * r['cv_accuracy_std']:.2f}% | {r['cv_loss']:.4f} | "
                     f"{', '.join(f'{100 * a:.1f}' for a in r['fold_accuracy'])} | "
                     f"{', '.join(map(str, r['epochs']))} | "
                     f"{r['seconds']:.0f} s |")
    refit = info.get("refit") or {}
    if refit.get("requested"):
        taken = ", ".join(f"{t:.0f} s" for t in refit["seconds"]) or "none started"
        lines += ["", f"Refits (model.refit={refit['requested']}): {refit['trained']} model(s) of {info['chosen']} "
                  f"trained on all training series for {refit['epochs']} epochs (the learning rates of fold "
                  f"{refit['schedule_from_fold'] + 1}, whose best epoch is the folds' median), averaged with the fold "
                  f"models ({refit['status']}; about {refit['estimate_seconds']:.0f} s each estimated; taken: {taken})."]
        if "folds_only_test_accuracy_after" in refit:
            lines += ["", f"For the record (test split, after the run, no choice used it): the fold models alone "
                      f"{100 * refit['folds_only_test_accuracy_after']:.2f}%, the refits alone "
                      f"{100 * refit['refits_only_test_accuracy_after']:.2f}%."]
    after = [r for r in info["candidates"] if "test_accuracy_after" in r]
    if after:
        lines += ["", ("Each candidate's fold ensemble alone" if any(r["name"] == info["chosen"] for r in after)
                       else "Not chosen") + ", scored on the test split after the run for the record only (what the "
                  "selection gained; no choice used it): "
                  + ", ".join(f"{r['name']} {100 * r['test_accuracy_after']:.2f}%" for r in after)
                  + (f"; all candidates' fold models averaged {100 * info['all_candidates_test_accuracy_after']:.2f}%"
                     if "all_candidates_test_accuracy_after" in info else "") + "."]
    return "Model selection (auto)", lines


def cross_validate(config) -> dict:
    """The search of an auto config on its training split alone, without a run directory or any test
    score: ``auto`` info (every candidate's CV scores, the choice). For recipe development
    (``scripts/accuracy_table.py --cv``)."""
    from .classify_data import load_data

    (x, y), _ = load_data(config.data)  # the test part is loaded with it, never looked at
    return train_auto(x, y, config).extra_metrics["auto"]


def nested_cross_validate(config, outer: int = 5) -> dict:
    """The whole recipe -- search, choice and ensemble -- scored without the test split: an outer
    stratified ``outer``-fold split of the training split (shuffled with ``train.seed + 1``), the
    auto search run on each outer training part and its model scored on the outer held-out part,
    with MiniRocket fitted and scored on the same parts. Every candidate's own fold ensemble is
    scored on the held-out part too, so what the choice gains shows beside it. For recipe
    development (``scripts/accuracy_table.py --nested``): no run directory, no test score."""
    from ..eval.classify_baselines import run_baselines
    from .classify_data import load_data

    (x, y), _ = load_data(config.data)  # the test part is loaded with it, never looked at
    y = np.asarray(y)
    folds = []
    for j, (tr, held) in enumerate(cv_splits(y, outer, config.train.seed + 1)):
        x_fit, x_held = [x[i] for i in tr], [x[i] for i in held]
        fitted = train_auto(x_fit, y[tr], config)
        info = fitted.after_test(x_held, y[held])["auto"]  # the candidates not chosen, on the held-out part
        chosen = fitted.classifier.evaluate(x_held, y[held])[0]["accuracy"]
        ensembles = _variants(fitted.parts, x_held, y[held])
        # every candidate's fold ensemble (the chosen one's without its refits, as the others)
        candidates = {r["name"]: r.get("test_accuracy_after", ensembles["folds"] if r["name"] == info["chosen"]
                                       else None) for r in info["candidates"]}
        mr = run_baselines(["minirocket"], x_fit, y[tr], x_held, y[held], seed=config.train.seed,
                           predictions=True)["minirocket"]
        candidates["all (averaged)"] = info.get("all_candidates_test_accuracy_after")
        folds.append({"n": len(held), "auto": chosen, "chosen": info["chosen"], "candidates": candidates,
                      "ensembles": ensembles, "minirocket": mr["accuracy"],
                      "errors": _errors(fitted, info, held, x_held, y[held], mr.get("predictions")),
                      "search_seconds": info["search_seconds"], "seconds": info["seconds"],
                      "refits": info["refit"]["trained"],
                      "status": {r["name"]: r["status"] for r in info["candidates"]},
                      "epochs": {r["name"]: r["epochs"] for r in info["candidates"]}})
        log.info(f"nested fold {j + 1}: auto ({info['chosen']}) {chosen:.4f}, MiniRocket {mr['accuracy']:.4f}")
    n = np.array([f["n"] for f in folds], dtype=float)

    def pooled(values) -> float | None:  # accuracy over all held-out series (folds weighted by size)
        v = np.array(values, dtype=float)
        return None if np.isnan(v).any() else float((v * n).sum() / n.sum())

    names = list(folds[0]["candidates"])
    variants = list(dict.fromkeys(v for f in folds for v in f["ensembles"]))
    return {"outer_folds": len(folds), "auto": pooled([f["auto"] for f in folds]),
            "minirocket": pooled([f["minirocket"] for f in folds]),
            "candidates": {c: pooled([np.nan if f["candidates"][c] is None else f["candidates"][c] for f in folds])
                           for c in names},
            "ensembles": {v: pooled([f["ensembles"].get(v, np.nan) for f in folds]) for v in variants},
            "misses": _misses(folds), "folds": folds}


def _misses(folds: list[dict]) -> dict:
    """Held-out series missed by the recipe only, by MiniRocket only, by both (counts over all outer folds)."""
    auto = {i for f in folds for i in f["errors"]["auto"]}
    if any("minirocket" not in f["errors"] for f in folds):
        return {"auto": len(auto)}
    base = {i for f in folds for i in f["errors"]["minirocket"]}
    return {"auto_only": len(auto - base), "minirocket_only": len(base - auto), "both": len(auto & base)}


def _errors(fitted: Fitted, info: dict, held: np.ndarray, x_held: Sequence, y_held: np.ndarray, baseline) -> dict:
    """The held-out series (training-split indices) the recipe and MiniRocket get wrong, and for each of
    them how many fold models of each eligible candidate get it wrong (``votes``): a miss every model
    shares is not one more members would fix."""
    wrong = {"auto": np.asarray(fitted.classifier.predict(x_held)) != y_held}  # masks over the held-out part
    if baseline is not None:  # None where a test stubs the baseline
        wrong["minirocket"] = np.asarray(baseline) != y_held
    missed = np.flatnonzero(np.logical_or.reduce(list(wrong.values())))
    votes = {str(held[j]): {} for j in missed}
    if missed.size:
        for name, members in zip(_ranked(info["candidates"]), fitted.parts["ranked"]):
            misses = sum(np.asarray(m.predict([x_held[j] for j in missed])) != y_held[missed] for m in members)
            for j, n in zip(missed, misses):
                votes[str(held[j])][name] = f"{n}/{len(members)}"
    return {**{k: [int(i) for i in held[w]] for k, w in wrong.items()}, "votes": votes}


def _variants(parts: dict, x_held: Sequence, y_held: np.ndarray) -> dict:
    """The held-out accuracy of the chosen candidate's ensembles with and without its refits: the fold
    models alone (``model.refit: 0``), with the first refit, with every refit, and the refits alone; and,
    when the config has several candidates, the fold models of the two best averaged (``model.top: 2``,
    the chosen one alone when only one was eligible)."""
    folds, refits = parts["folds"], parts["refits"]
    options = {"folds": folds}
    if parts.get("several"):
        options["top 2 (averaged)"] = [m for members in parts["ranked"][:2] for m in members]
    if refits:
        options["folds + 1 refit"] = folds + refits[:1]
        if len(refits) > 1:
            options[f"folds + {len(refits)} refits"] = folds + refits
        options[f"{len(refits)} refit{'s' if len(refits) > 1 else ''} only"] = refits
    return {name: EnsembleClassifier(m).evaluate(x_held, y_held)[0]["accuracy"] for name, m in options.items()}
