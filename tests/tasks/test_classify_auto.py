"""Baselines in every classification run, train.ensemble, and model.name auto (tiny data, seconds)."""

import json

import numpy as np
import pytest

from lstmkit.eval import classify_baselines
from lstmkit.eval.classify_baselines import fit_padding, run_baselines, to_panel
from lstmkit.tasks import classify_auto
from lstmkit.tasks.classify import ClassifyConfig, DataConfig, load_classifier, train_classifier
from lstmkit.tasks.classify_ensemble import ClassifyEvalConfig, ClassifyTrainConfig, EnsembleClassifier
from lstmkit.tasks.config import build
from lstmkit.tasks.classify_io import predict_run
from lstmkit.tasks.registry import get_task

from .helpers import waves, write_npz

TINY = dict(epochs=4, lr=0.01, batch_size=32, progress="off", early_stopping=None)
MODEL = {"name": "rnn_classifier", "hidden_size": 8, "pooling": "mean"}


def _files(root, n_train=60, n_test=30):
    return write_npz(root / "train.npz", n_train, seed=0), write_npz(root / "test.npz", n_test, seed=1)


def _config(root, model=None, baselines=(), **train):
    tr, te = _files(root)
    return ClassifyConfig(DataConfig(train=str(tr), test=str(te)), model or dict(MODEL),
                          ClassifyTrainConfig(**{**TINY, **train}), ClassifyEvalConfig(list(baselines)))


# ------------------------------------------------------------------------------- baselines

def test_baselines_are_in_metrics_and_report(tmp_path):
    metrics = train_classifier(_config(tmp_path, baselines=["minirocket", "knn_dtw"]), tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for name in ("minirocket", "knn_dtw"):
        b = saved["baselines"][name]
        assert 0 <= b["accuracy"] <= 1 and b["train_seconds"] >= 0 and "macro_f1" in b
        assert saved["epochs_by_role"][name] == 0
    assert saved["baselines"]["minirocket"]["accuracy"] > 0.6  # 3 separable classes of waves
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Baselines (test)" in report and "| minirocket |" in report and "| knn_dtw |" in report
    assert metrics["baselines"] == saved["baselines"]


def test_baselines_can_be_turned_off_and_bad_names_name_the_field(tmp_path):
    metrics = train_classifier(_config(tmp_path, baselines=[]), tmp_path / "out")
    assert metrics["baselines"] == {}
    with pytest.raises(ValueError, match=r"evaluate.baselines: unknown baseline 'rocket'.*minirocket, knn_dtw"):
        build(ClassifyConfig, {"data": {"name": "gunpoint"}, "evaluate": {"baselines": ["rocket"]}})
    with pytest.raises(ValueError, match="evaluate.baselines must be a list"):
        ClassifyEvalConfig("minirocket")


def test_padding_length_comes_from_the_training_split_only():
    rng = np.random.default_rng(0)
    train = [rng.normal(size=(n, 2)) for n in (10, 12, 14)]
    test = [rng.normal(size=(n, 2)) for n in (5, 30)]  # one test series longer than every training series
    length = fit_padding(train)
    assert length == 14  # not 30
    panel, truncated = to_panel(test, length)
    assert panel.shape == (2, 2, 14) and truncated == 1
    np.testing.assert_array_equal(panel[1], test[1][:14].T)  # its first 14 steps
    np.testing.assert_array_equal(panel[0, :, 5:], 0)  # zeros after the short one
    assert fit_padding([rng.normal(size=(4, 1))]) == classify_baselines.MIN_LENGTH


def test_baselines_never_see_the_test_lengths(monkeypatch):
    seen = []
    real = classify_baselines.fit_padding
    monkeypatch.setattr(classify_baselines, "fit_padding", lambda xs: seen.append([len(x) for x in xs]) or real(xs))
    X, lengths, y = waves(30, seed=0)
    train = [x[:n] for x, n in zip(X, lengths)]
    test = [np.ones((200, X.shape[2]))] * 4  # far longer than any training series
    out = run_baselines(["minirocket"], train, y, test, y[:4])
    assert seen == [[len(x) for x in train]]
    assert out["minirocket"]["padded_length"] == max(max(lengths), 9) and out["minirocket"]["truncated_test"] == 4
    assert "predictions" not in out["minirocket"]  # only on request, never in metrics.json
    out = run_baselines(["minirocket"], train, y, test, y[:4], predictions=True)
    assert len(out["minirocket"]["predictions"]) == 4
    assert out["minirocket"]["accuracy"] == np.mean(np.asarray(out["minirocket"]["predictions"]) == y[:4])


def test_knn_dtw_is_skipped_above_its_cost_bound(monkeypatch):
    monkeypatch.setattr(classify_baselines, "KNN_DTW_MAX_COST", 10.0)
    X, lengths, y = waves(20, seed=0)
    xs = [x[:n] for x, n in zip(X, lengths)]
    out = run_baselines(["knn_dtw"], xs, y, xs, y)
    assert "skipped" in out["knn_dtw"] and "cost" in out["knn_dtw"]["skipped"]


# -------------------------------------------------------------------------------- ensemble

def test_ensemble_averages_member_probabilities_and_reloads_all_members(tmp_path):
    cfg = _config(tmp_path, ensemble=3)
    metrics = train_classifier(cfg, tmp_path / "out")
    clf = load_classifier(tmp_path / "out")
    assert isinstance(clf, EnsembleClassifier) and len(clf.members) == 3
    X, lengths, y = waves(25, seed=5)
    series = [x[:n] for x, n in zip(X, lengths)]
    manual = np.mean([m.predict_proba(series) for m in clf.members], axis=0)
    np.testing.assert_allclose(clf.predict_proba(series), manual, rtol=0, atol=1e-12)
    assert clf.predict(series) == list(clf.pre.labels.decode(manual.argmax(1)))
    e = metrics["ensemble"]
    assert [m["seed"] for m in e["members"]] == [0, 1, 2] and len(e["members"]) == 3
    assert e["member_test_accuracy_mean"] == pytest.approx(np.mean([m["test_accuracy"] for m in e["members"]]))
    assert metrics["params"]["model"] == sum(p.numel() for m in clf.members for p in m.model.parameters())
    # evaluate and predict load every member: the same test score as the run's
    again = get_task("classify").rescore(tmp_path / "out")
    assert again["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    pred = predict_run(tmp_path / "out", str(tmp_path / "test.npz"), {})
    assert pred.summary["predictions"] == 30
    assert "## Ensemble" in (tmp_path / "out" / "report.md").read_text()
    with pytest.raises(ValueError, match="ensemble of 3 models"):
        clf.model


def test_ensemble_config_errors_name_the_field():
    with pytest.raises(ValueError, match="train.ensemble"):
        ClassifyTrainConfig(ensemble=0)
    with pytest.raises(ValueError, match="train.budget_seconds"):
        ClassifyTrainConfig(budget_seconds=-1)
    with pytest.raises(ValueError, match="train.ensemble=2 does not apply to model.name auto"):
        ClassifyConfig(DataConfig(name="gunpoint"), {"name": "auto"}, ClassifyTrainConfig(ensemble=2))


# ------------------------------------------------------------------------------------ auto

@pytest.mark.parametrize("model, match", [
    ({"name": "auto", "candidates": ["lstm_fcn", "resnet"]}, r"model.candidates: unknown candidate 'resnet'"),
    ({"name": "auto", "candidates": []}, r"model.candidates must be a non-empty list"),
    ({"name": "auto", "folds": 1}, r"model.folds must be an int >= 2"),
    ({"name": "auto", "hidden_size": 8}, r"model.hidden_size: model.name auto takes only candidates, folds"),
    ({"name": "auto", "refit": -1}, r"model.refit must be an int >= 0"),
    ({"name": "auto", "refit": True}, r"model.refit must be an int >= 0"),
    ({"name": "auto", "refit": "2"}, r"model.refit must be an int >= 0"),
    ({"name": "auto", "top": 0}, r"model.top must be an int from 1 to the number of model.candidates \(3\)"),
    ({"name": "auto", "candidates": ["lstm_fcn", "mlstm_fcn"], "top": 3},
     r"model.top must be an int from 1 to the number of model.candidates \(2\)"),
    ({"name": "auto", "top": True}, r"model.top must be an int"),
    ({"name": "auto", "top": 1.5}, r"model.top must be an int"),
    ({"name": "auto", "patience": 0}, r"model.patience must be a number in \(0, 1\]"),
    ({"name": "auto", "patience": 1.5}, r"model.patience must be a number in \(0, 1\]"),
    ({"name": "auto", "patience": True}, r"model.patience must be a number"),
    ({"name": "auto", "patience": "0.2"}, r"model.patience must be a number"),
])
def test_auto_config_errors_name_the_field(model, match):
    with pytest.raises(ValueError, match=match):
        ClassifyConfig(DataConfig(name="gunpoint"), model)


def _auto(root, **train):
    return _config(root, {"name": "auto", "candidates": ["lstm_fcn", "bilstm_attention"], "folds": 2},
                   **{"budget_seconds": 600, **train})


def test_auto_chooses_by_cv_before_the_test_split_is_touched(tmp_path, monkeypatch):
    """A spy on every classifier's evaluate: nothing scores the test split before the search is over,
    and the choice is the best CV accuracy."""
    from lstmkit.tasks import classify, classify_ensemble

    events = []
    real_train_auto = classify_auto.train_auto

    def spy_train_auto(*a, **k):
        fitted = real_train_auto(*a, **k)
        events.append("search done")
        return fitted
    monkeypatch.setattr(classify_auto, "train_auto", spy_train_auto)
    for cls in (classify.Classifier, classify_ensemble.EnsembleClassifier):
        real = cls.evaluate
        monkeypatch.setattr(cls, "evaluate", lambda self, x, y, _real=real: events.append("test") or _real(self, x, y))
    metrics = train_classifier(_auto(tmp_path), tmp_path / "out")
    assert events[0] == "search done" and "test" in events
    info = metrics["auto"]
    ran = [r for r in info["candidates"] if r["status"] == "complete"]
    assert len(ran) == 2 and all(len(r["fold_accuracy"]) == 2 for r in ran)
    best = min(ran, key=lambda r: (-r["cv_accuracy"], r["cv_loss"]))
    assert info["chosen"] == best["name"]
    other = next(r for r in ran if r["name"] != info["chosen"])
    assert "test_accuracy_after" in other  # scored after the run, for the record
    assert 0 <= info["all_candidates_test_accuracy_after"] <= 1
    assert metrics["val"]["accuracy"] == pytest.approx(best["cv_accuracy"])
    clf = load_classifier(tmp_path / "out")
    assert isinstance(clf, EnsembleClassifier) and len(clf.members) == 2
    assert get_task("classify").rescore(tmp_path / "out")["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Model selection (auto)" in report and "(chosen)" in report
    assert "all candidates' fold models averaged" in report


def test_nested_cv_scores_the_whole_recipe_on_training_series_only(tmp_path, monkeypatch):
    """--nested: every scored series is a training series, each one held out once; the test file's 30
    series are never scored; the pooled accuracies are the held-out-size-weighted means."""
    from lstmkit.tasks import classify, classify_ensemble

    scored = []
    for cls in (classify.Classifier, classify_ensemble.EnsembleClassifier):
        real = cls.evaluate
        monkeypatch.setattr(cls, "evaluate",
                            lambda self, x, y, _real=real: scored.append([s.tobytes() for s in x]) or _real(self, x, y))
    cfg = _auto(tmp_path)
    info = classify_auto.nested_cross_validate(cfg, outer=3)
    (x, _), (xt, _) = classify.load_data(cfg.data)
    train_bytes, test_bytes = {s.tobytes() for s in x}, {s.tobytes() for s in xt}
    assert scored and all(set(call) <= train_bytes for call in scored)
    assert not any(set(call) & test_bytes for call in scored)
    folds = info["folds"]
    assert info["outer_folds"] == 3 and sum(f["n"] for f in folds) == 60
    n = np.array([f["n"] for f in folds])
    for key in ("auto", "minirocket"):
        assert info[key] == pytest.approx(float((np.array([f[key] for f in folds]) * n).sum() / n.sum()))
    for f in folds:
        assert f["candidates"][f["chosen"]] == f["auto"]
        assert set(f["candidates"]) == {"lstm_fcn", "bilstm_attention", "all (averaged)"}
        assert 0 <= f["candidates"]["all (averaged)"] <= 1
        # model.refit: 0; two candidates, so the two best averaged (model.top: 2) is scored beside
        assert set(f["ensembles"]) == {"folds", "top 2 (averaged)"} and f["refits"] == 0
        assert f["ensembles"]["folds"] == pytest.approx(f["auto"]) and 0 <= f["ensembles"]["top 2 (averaged)"] <= 1
        # a budget-stopped outer fold shows itself: every candidate's status and fold-model epochs
        assert f["status"] == {"lstm_fcn": "complete", "bilstm_attention": "complete"}
        assert [len(e) for e in f["epochs"].values()] == [2, 2] and all(
            1 <= e <= TINY["epochs"] for es in f["epochs"].values() for e in es)
    assert info["ensembles"]["folds"] == pytest.approx(info["auto"]) and set(info["ensembles"]) == {
        "folds", "top 2 (averaged)"}
    # errors: the held-out series each one misses (training-split indices, each held out once), and how many
    # fold models of each candidate miss each such series
    missed = {"auto": set(), "minirocket": set()}
    for f in folds:
        e = f["errors"]
        for key in missed:
            assert len(e[key]) == round((1 - f[key]) * f["n"]) and not missed[key] & set(e[key])
            missed[key] |= set(e[key])
        assert set(e["votes"]) == {str(i) for i in e["auto"] + e["minirocket"]}
        for votes in e["votes"].values():
            assert set(votes) == {"lstm_fcn", "bilstm_attention"}
            assert all(v in ("0/2", "1/2", "2/2") for v in votes.values())
        for i in e["auto"]:  # an average misses only where a member does
            assert e["votes"][str(i)][f["chosen"]] != "0/2"
    assert all(i < 60 for key in missed for i in missed[key])
    assert info["misses"] == {"auto_only": len(missed["auto"] - missed["minirocket"]),
                              "minirocket_only": len(missed["minirocket"] - missed["auto"]),
                              "both": len(missed["auto"] & missed["minirocket"])}


def test_nested_cv_scores_the_ensembles_with_and_without_refits(tmp_path, monkeypatch):
    """With model.refit: 2 the nested mode scores, on the same held-out parts, the fold models alone (the
    recipe without refits), with one refit, with both, and the refits alone; the recipe's own score is
    the one with both, and each candidate's column stays its fold ensemble. (MiniRocket stubbed: the
    test above runs it.)"""
    monkeypatch.setattr(classify_baselines, "run_baselines", lambda *a, **k: {"minirocket": {"accuracy": 0.5}})
    cfg = _config(tmp_path, {"name": "auto", "candidates": ["lstm_fcn"], "folds": 2, "refit": 2}, budget_seconds=600)
    info = classify_auto.nested_cross_validate(cfg, outer=2)
    assert list(info["ensembles"]) == ["folds", "folds + 1 refit", "folds + 2 refits", "2 refits only"]
    for f in info["folds"]:
        assert f["refits"] == 2 and f["auto"] == pytest.approx(f["ensembles"]["folds + 2 refits"])
        assert f["candidates"]["lstm_fcn"] == pytest.approx(f["ensembles"]["folds"])
    assert info["auto"] == pytest.approx(info["ensembles"]["folds + 2 refits"]) and info["minirocket"] == 0.5
    assert set(info["misses"]) == {"auto"}  # the stubbed baseline has no predictions to compare


def test_top_averages_the_fold_models_of_the_best_candidates_in_cv_order(tmp_path, monkeypatch):
    """model.top: 2 of three candidates: the ensemble is the fold models of the two best by CV accuracy
    (the chosen one's first), the third's are left out; the nested mode's recipe score is then its
    "top 2 (averaged)" ensemble. (MiniRocket stubbed: a test above runs it.)"""
    from lstmkit.tasks import classify

    cfg = _config(tmp_path, {"name": "auto", "candidates": ["lstm_fcn", "bilstm_attention", "mlstm_fcn"], "folds": 2,
                             "top": 2}, budget_seconds=600)
    (x, y), _ = classify.load_data(cfg.data)
    fitted = classify_auto.train_auto(x, y, cfg)
    info = fitted.extra_metrics["auto"]
    rows = sorted(info["candidates"], key=lambda r: (-r["cv_accuracy"], r["cv_loss"]))
    assert info["averaged"] == [rows[0]["name"], rows[1]["name"]] and info["chosen"] == rows[0]["name"]
    ranked = fitted.parts["ranked"]
    assert len(ranked) == 3 and ranked[0] is fitted.parts["folds"]
    assert fitted.classifier.members == ranked[0] + ranked[1] and len(fitted.classifier.members) == 4
    assert not set(map(id, ranked[2])) & set(map(id, fitted.classifier.members))
    assert [v["accuracy"] for v in fitted.vals] == rows[0]["fold_accuracy"] + rows[1]["fold_accuracy"]
    assert fitted.val["accuracy"] == pytest.approx(rows[0]["cv_accuracy"])  # the chosen candidate's CV score
    after = fitted.after_test(x[:20], y[:20])["auto"]  # any series: the analysis, not a score of record
    for r, members in zip(rows, ranked):  # every candidate's own fold ensemble, the chosen one's too
        own = EnsembleClassifier(members).evaluate(x[:20], y[:20])[0]["accuracy"]
        assert r["test_accuracy_after"] == pytest.approx(own)
    title, lines = classify_auto.auto_section(after)
    assert f"the fold models of the 2 best candidates ({rows[0]['name']}, {rows[1]['name']})" in lines[0]
    assert any(line.startswith("Each candidate's fold ensemble alone, scored") for line in lines)
    monkeypatch.setattr(classify_baselines, "run_baselines", lambda *a, **k: {"minirocket": {"accuracy": 0.5}})
    nested = classify_auto.nested_cross_validate(cfg, outer=2)
    for f in nested["folds"]:
        assert f["auto"] == pytest.approx(f["ensembles"]["top 2 (averaged)"])
        assert f["candidates"][f["chosen"]] == pytest.approx(f["ensembles"]["folds"])


def test_auto_budget_skips_candidates_and_lists_them(tmp_path):
    cfg = _config(tmp_path, {"name": "auto", "candidates": ["bilstm_attention", "lstm_fcn", "mlstm_fcn"], "folds": 2},
                  budget_seconds=1e-6)
    metrics = train_classifier(cfg, tmp_path / "out")
    rows = {r["name"]: r for r in metrics["auto"]["candidates"]}
    assert rows["bilstm_attention"]["status"] == "incomplete" and len(rows["bilstm_attention"]["fold_accuracy"]) == 1
    assert rows["lstm_fcn"]["status"] == rows["mlstm_fcn"]["status"] == "skipped (budget)"
    assert metrics["auto"]["chosen"] == "bilstm_attention"
    assert "skipped (budget)" in (tmp_path / "out" / "report.md").read_text()


def test_refits_train_on_every_training_series_and_join_the_fold_models(tmp_path, monkeypatch):
    """model.refit: 2 adds two models of the chosen candidate, trained on all 60 training series (their
    standardisation fitted on all of them) for the median fold model's best epoch with its learning rates;
    the run saves and reloads all four members and records the refits."""
    from lstmkit.tasks import classify

    cfg = _config(tmp_path, {"name": "auto", "candidates": ["lstm_fcn"], "folds": 2, "refit": 2},
                  budget_seconds=600, early_stopping=2, epochs=6)
    (x, y), _ = classify.load_data(cfg.data)
    seen, real = [], classify_auto.train_auto
    monkeypatch.setattr(classify_auto, "train_auto", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    metrics = train_classifier(cfg, tmp_path / "out")
    fitted = seen[0]
    folds, refits = fitted.parts["folds"], fitted.parts["refits"]
    assert len(folds) == 2 and len(refits) == 2 and fitted.classifier.members == folds + refits
    record = fitted.extra_metrics["auto"]["refit"]
    schedule, source = classify_auto.refit_schedule(fitted.results[:2])
    assert record["trained"] == 2 and record["status"] == "complete" and record["seeds"] == [2, 3]
    assert fitted.member_seeds == [0, 1, 2, 3] and record["epochs"] == len(schedule)
    assert len(schedule) == max(1, fitted.results[source].best_epoch)
    for r in fitted.results[2:]:  # replayed: exactly the schedule's epochs and rates
        assert [row["lr"] for row in r.history] == pytest.approx(schedule)
    everything = np.concatenate([np.asarray(s, dtype=np.float64)[:, :] for s in x])
    for m in refits:
        np.testing.assert_allclose(m.pre.standardizer.mean, everything.mean(0), rtol=1e-5, atol=1e-6)
    for m in folds:  # a fold model's statistics come from its own training part, not every series
        assert not np.allclose(m.pre.standardizer.mean, everything.mean(0), rtol=1e-5, atol=1e-6)
    assert fitted.vals[2:] == [{"accuracy": None, "loss": None}] * 2
    assert len(load_classifier(tmp_path / "out").members) == 4 and metrics["ensemble"]["requested"] == 4
    refit = metrics["auto"]["refit"]
    assert 0 <= refit["folds_only_test_accuracy_after"] <= 1 and 0 <= refit["refits_only_test_accuracy_after"] <= 1
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Refits (model.refit=2): 2 model(s) of lstm_fcn" in report and "refit on all training data" in report


def test_refit_schedule_replays_the_median_fold_up_to_its_best_epoch():
    from lstmkit.tasks.trainer import FitResult

    def result(best, rates):
        return FitResult(history=[{"lr": r} for r in rates], best_epoch=best, epochs=len(rates))
    folds = [result(5, [1.0] * 8), result(2, [2.0] * 8), result(7, [3.0, 3.0, 3.0, 1.5, 1.5, 1.5, 0.7, 0.7])]
    assert classify_auto.refit_schedule(folds) == ([1.0] * 5, 0)
    folds[0] = result(9, [1.0] * 9)
    assert classify_auto.refit_schedule(folds) == ([3.0, 3.0, 3.0, 1.5, 1.5, 1.5, 0.7], 2)
    assert classify_auto.refit_schedule(folds[:2]) == ([2.0, 2.0], 1)  # even count: the lower median


@pytest.mark.parametrize("slack, trained, status", [(0.5, 0, "skipped (budget)"), (2.5, 1, "partial (budget)"),
                                                    (1e9, 2, "complete")])
def test_the_budget_caps_the_refits(tmp_path, monkeypatch, slack, trained, status):
    """Each refit starts only when the time spent plus its estimate fits train.budget_seconds (a fake clock
    in classify_auto: one second per reading), none is guaranteed, and the record says what ran."""
    from types import SimpleNamespace

    from lstmkit.tasks import classify

    cfg = _config(tmp_path, {"name": "auto", "candidates": ["lstm_fcn"], "folds": 2, "refit": 2}, budget_seconds=600)
    (x, y), _ = classify.load_data(cfg.data)
    searched = classify_auto.train_auto(x, y, replace_model(cfg, refit=0))
    row = searched.extra_metrics["auto"]["candidates"][0]
    schedule, _ = classify_auto.refit_schedule(searched.results)
    estimate = classify_auto.refit_estimate(row["seconds"], searched.results, len(y), 30, len(schedule))
    ticks = iter(range(1, 1000))
    monkeypatch.setattr(classify_auto, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    # readings: check 1 (spent 1), start 2, end 3; check 4 (spent 4), ...
    models, results, seeds, record = classify_auto.refit_chosen(x, y, replace_model(cfg, refit=2), row,
                                                                searched.results, 30, 2, 0.0, estimate + slack)
    assert record["trained"] == len(models) == len(results) == len(seeds) == trained
    assert record["status"] == status and record["estimate_seconds"] == pytest.approx(estimate)
    assert record["seconds"] == [1.0] * trained


def replace_model(cfg, **model):
    from dataclasses import replace

    return replace(cfg, model={**cfg.model, **model})


def test_a_tiny_budget_leaves_no_refit_and_the_fold_model_alone(tmp_path):
    cfg = _config(tmp_path, {"name": "auto", "candidates": ["lstm_fcn"], "folds": 2, "refit": 3}, budget_seconds=1e-6)
    metrics = train_classifier(cfg, tmp_path / "out")
    refit = metrics["auto"]["refit"]
    assert refit["trained"] == 0 and refit["status"] == "skipped (budget)" and refit["requested"] == 3
    assert "ensemble" not in metrics  # one fold model: no ensemble
    assert "(skipped (budget)" in (tmp_path / "out" / "report.md").read_text()


def test_cv_splits_are_stratified_and_lower_k_for_small_classes():
    y = np.array([0] * 6 + [1] * 2)
    splits = classify_auto.cv_splits(y, 5, seed=0)
    assert len(splits) == 2
    for tr, va in splits:
        assert set(y[va]) == {0, 1} and not set(tr) & set(va)
    with pytest.raises(ValueError, match="at least 2"):
        classify_auto.cv_splits(np.array([0, 0, 1]), 3, 0)


def test_long_series_get_the_strided_front_end():
    train = ClassifyTrainConfig(**TINY)
    spec, _, note = classify_auto.recipe("lstm_fcn", [2000] * 10, 100, train)
    assert spec["stride"] == 8 and "stride 8" in note
    spec, _, note = classify_auto.recipe("bilstm_attention", [2000] * 10, 100, train)
    assert spec is None and "too long" in note
    spec, _, _ = classify_auto.recipe("lstm_fcn", [100] * 10, 100, train)
    assert "stride" not in spec


@pytest.mark.parametrize("n_fit, fraction, epochs, stop, plateau", [
    (35, None, 120, 12, 6),  # the default: epochs / 10, plateau half of it (ItalyPowerDemand's nested folds)
    (35, 0.1, 120, 12, 6),
    (35, 0.2, 120, 24, 12),  # model.patience 0.2: epochs / 5
    (22, 0.2, 200, 40, 20),
    (2667, 0.2, 30, 10, 5),  # large data: a 30-epoch cap keeps the floor of 10 whatever the fraction
])
def test_patience_is_a_fraction_of_the_epoch_cap_with_a_floor_of_ten(n_fit, fraction, epochs, stop, plateau):
    train = ClassifyTrainConfig(**{**TINY, "epochs": 300, "batch_size": 64})
    args = () if fraction is None else (fraction,)
    _, overrides, _ = classify_auto.recipe("lstm_fcn", [24] * 10, n_fit, train, *args)
    assert (overrides["epochs"], overrides["early_stopping"], overrides["plateau_patience"]) == (epochs, stop, plateau)


def test_model_patience_reaches_every_fold_model(tmp_path, monkeypatch):
    from lstmkit.tasks import classifier

    seen, real = [], classifier.fit_classifier

    def spy(x, y, spec, train, *a, **k):
        seen.append((train.epochs, train.early_stopping))
        return real(x, y, spec, train, *a, **k)
    monkeypatch.setattr(classifier, "fit_classifier", spy)
    config = _config(tmp_path, {"name": "auto", "candidates": ["lstm_fcn"], "folds": 2, "patience": 0.5},
                     budget_seconds=600, epochs=40)
    classify_auto.train_auto(*_train_split(config), config)
    assert seen == [(40, 20), (40, 20)]


def _train_split(config):
    from lstmkit.tasks.classify_data import load_data

    (x, y), _ = load_data(config.data)
    return x, y


def test_strided_lstm_fcn_pools_valid_steps_only():
    import torch

    from lstmkit.models import create_model

    torch.manual_seed(0)
    model = create_model("lstm_fcn", input_size=2, num_classes=3, hidden_size=4, dimension_shuffle=False,
                         stride=4).eval()
    x = torch.randn(1, 10, 2)
    padded = torch.cat([x, torch.full((1, 6, 2), 99.0)], 1)
    torch.testing.assert_close(model(padded, torch.tensor([10])), model(x, torch.tensor([10])))
    pooled, n = model._pool(x, torch.tensor([10]))
    assert pooled.shape == (1, 3, 2) and int(n) == 3
    torch.testing.assert_close(pooled[0, 2], x[0, 8:10].mean(0))


def test_tune_over_an_auto_base_scores_trials_by_cv_without_the_test_split(tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    from lstmkit.tasks import tune
    from lstmkit.tasks.config import dump_yaml
    from lstmkit.tasks.tune import load_tune_config

    from .test_tune import Untouchable

    tr, te = _files(tmp_path)
    real = tune.load_data
    monkeypatch.setattr(tune, "load_data", lambda c: (real(c)[0], (Untouchable(), Untouchable())))
    (tmp_path / "base.yaml").write_text(dump_yaml({
        "task": "classify", "data": {"train": str(tr), "test": str(te)},
        "model": {"name": "auto", "candidates": ["lstm_fcn"], "folds": 2},
        "train": {"epochs": 2, "budget_seconds": 600}}))
    path = tmp_path / "t.yaml"
    path.write_text(dump_yaml({"base": "base.yaml",
                               "metric": "val_accuracy", "pruner": {"type": "none"},
                               "search": {"train.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2}}}))
    tune.run_tune(load_tune_config(path), tmp_path / "out", 1)
    rows = json.loads((tmp_path / "out" / "trials.json").read_text())
    rows = rows["trials"] if isinstance(rows, dict) else rows
    assert len(rows) == 1 and rows[0]["state"] == "COMPLETE" and 0 <= rows[0]["value"] <= 1


def test_the_auto_preset_builds():
    from lstmkit.cli import resolve_config

    config, _ = resolve_config("classify/auto", ["data.name=italypower"])
    assert config.model["name"] == "auto" and config.train.budget_seconds == classify_auto.DEFAULT_BUDGET
    assert config.model["top"] == 1 and config.model["refit"] == 0  # the chosen candidate's fold models alone
    assert config.model["patience"] == classify_auto.DEFAULT_PATIENCE == 0.1  # the recipe's epochs / 10
    assert config.evaluate.baselines == ["minirocket", "knn_dtw"]


def test_an_interrupted_ensemble_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """Killed in member 1's training, an ensemble run continues (member 0 from its finished checkpoint)
    to the metrics of a run never interrupted (deterministic mode)."""
    from lstmkit.tasks import classifier
    from lstmkit.tasks.lifecycle import resume_run

    from .test_resume import _interrupted, _untimed

    cfg = _config(tmp_path, ensemble=2, deterministic=True)
    reference = train_classifier(cfg, tmp_path / "reference")
    calls = _interrupted(monkeypatch, classifier, lambda d: d.name == "member1",
                         lambda: train_classifier(cfg, tmp_path / "run"))
    assert [d.name for d in calls] == ["member0", "member1"]
    resumed = resume_run(tmp_path / "run", "classify")
    assert _untimed(resumed) == _untimed(reference)
    assert not (tmp_path / "run" / "checkpoint").exists()
