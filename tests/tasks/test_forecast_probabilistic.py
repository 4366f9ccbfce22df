"""Probabilistic scores, split-conformal intervals and the fan chart of a forecasting run."""

import csv
import json

import numpy as np
import pytest

from lstmkit.eval.forecast_metrics import crps_from_samples
from lstmkit.tasks.forecast import train_forecaster

from .test_forecast import FAST, _config, _write_csv, sales_csv  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def conformal_run(sales_csv, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("run") / "out"
    cfg = _config(sales_csv, val_size=24)
    cfg.evaluate.intervals = "conformal"
    return out, train_forecaster(cfg, out)


def test_crps_and_pinball_for_the_model_and_baselines_with_a_distribution(conformal_run):
    out, metrics = conformal_run
    saved = json.loads((out / "metrics.json").read_text())
    for scores in [saved["test"], saved["val"]]:
        assert {"crps", "pinball_lower", "pinball_median", "pinball_upper"} <= set(scores)
        assert scores["crps"] > 0
    for split in ("baselines", "val_baselines"):
        for name, scores in saved[split].items():
            assert ("crps" in scores) == (not name.startswith("naive2")), name
    # the median's pinball loss is half the MAE of the median; CRPS <= MAE of any point (here: the median)
    t = saved["test"]
    assert t["crps"] <= 2 * t["pinball_median"] + 1e-12
    # the same paths rescaled to the conformal intervals: another distribution, scored on test only
    assert t["crps_conformal"] > 0 and t["crps_conformal"] != t["crps"] and "crps_conformal" not in saved["val"]
    report = (out / "report.md").read_text()
    assert "| CRPS |" in report and "## Interval coverage (test)" in report


def test_conformal_intervals_are_reported_by_level_and_step(conformal_run):
    out, metrics = conformal_run
    test, val = metrics["test"], metrics["val"]
    assert test["intervals"] == "conformal"
    assert set(test["coverage_levels"]) == {"model", "conformal"}
    assert set(test["coverage_levels"]["model"]) == {"0.5", "0.8", "0.95"}
    assert all(len(v) == 6 for v in test["coverage_by_step"].values())  # horizon 6
    assert test["coverage"] == test["coverage_levels"]["conformal"]["0.8"]
    # rolling: every validation origin whose model window ends by the end of the training part (24 - 6 + 1)
    assert val["conformal_method"].startswith("rolling") and "(19 origins)" in val["conformal_method"]
    assert set(val["conformal_cv_coverage"]) == {"0.5", "0.8", "0.95"}
    with open(out / "forecasts.csv") as f:
        rows = list(csv.DictReader(f))
    a = np.array([float(r["actual"]) for r in rows])
    lo, hi = np.array([float(r["lower"]) for r in rows]), np.array([float(r["upper"]) for r in rows])
    assert test["coverage"] == pytest.approx(((a >= lo) & (a <= hi)).mean())
    lo50, lo95 = np.array([float(r["lower_0.5"]) for r in rows]), np.array([float(r["lower_0.95"]) for r in rows])
    assert (lo95 <= lo).all() and (lo <= lo50).all()  # nested fan
    assert "By horizon step" in (out / "report.md").read_text()


def test_conformal_calibration_never_reads_the_test_part(conformal_run, sales_csv, tmp_path):  # noqa: F811
    """Changing the test actuals moves the test scores but not the conformal calibration (on the
    validation end with the selection model); the widths follow the model's spread, which reads the
    actuals before each origin."""
    out, metrics = conformal_run
    with open(sales_csv) as f:
        rows = list(csv.reader(f))
    for r in rows[-12:]:  # every column of the test part: targets, past and future covariates
        r[1], r[2], r[3] = f"{float(r[1]) * 1.5:.4f}", f"{float(r[2]) + 3:.4f}", str(1 - int(r[3]))
    cfg = _config(_write_csv(tmp_path / "sales.csv", rows[1:], rows[0]), val_size=24)
    cfg.evaluate.intervals = "conformal"
    other = train_forecaster(cfg, tmp_path / "out")
    assert other["val"] == metrics["val"]
    from lstmkit.tasks.forecast import load_forecaster

    saved = [load_forecaster(d).meta["conformal"] for d in (out, tmp_path / "out")]
    assert saved[0] == saved[1] and saved[0]["kind"] == "rolling"
    assert other["test"]["crps"] != metrics["test"]["crps"]


def test_model_crps_is_the_crps_of_its_sample_paths(sales_csv, tmp_path):  # noqa: F811
    from lstmkit.tasks.forecast import load_forecaster

    out = tmp_path / "out"
    cfg = _config(sales_csv, train={**FAST, "epochs": 2})
    cfg.evaluate.intervals = "model"  # the model's intervals scored (the default, auto, may pick conformal)
    metrics = train_forecaster(cfg, out)
    fc = load_forecaster(out)
    from lstmkit.tasks.forecast import load_forecast_series, split_points

    cfg = _config(sales_csv)
    s = load_forecast_series(cfg.data)[0]
    n_train, _ = split_points(s, cfg.data, 6)
    ys, draws = [], []
    for o in (n_train, n_train + 3, n_train + 6):
        f = fc.predict(s.head(o), 6, s.values[o : o + 6, 2:])
        ys.append(s.values[o : o + 6, 0])
        draws.append(f.samples[:, :, 0])
    assert metrics["test"]["crps"] == pytest.approx(crps_from_samples(np.array(ys), np.stack(draws, 1)), rel=1e-9)
    assert metrics["test"]["intervals"] == "model"
    assert "crps_conformal" in metrics["test"]  # conformal intervals are scored beside the model's
    assert metrics["test"]["coverage"] == metrics["test"]["coverage_levels"]["model"]["0.8"]


def test_predict_and_evaluate_reproduce_the_runs_conformal_intervals(conformal_run):
    from lstmkit.eval.conformal import conformal_from_dict
    from lstmkit.tasks.forecast import load_forecaster, saved_series
    from lstmkit.tasks.forecast_io import evaluate_run, predict_run

    out, metrics = conformal_run
    fc = load_forecaster(out)
    assert fc.meta["intervals"] == "conformal"
    got = evaluate_run(out)
    assert got["test"] == metrics["test"] and got["baselines"] == metrics["baselines"]
    s = saved_series(fc)[0]
    own = fc.predict(s, 6, np.zeros((6, 1)))
    cp = conformal_from_dict(fc.meta["conformal"])
    lo, hi = cp.interval(own.point.T, (own.upper - own.lower).T, fc.level)
    _write_future(out / "future.csv", s, own)
    rows = list(csv.DictReader(predict_run(out, str(out / "future.csv"), {}).text.splitlines()))
    np.testing.assert_allclose([float(r["lower"]) for r in rows], lo[0], rtol=1e-9)
    np.testing.assert_allclose([float(r["upper"]) for r in rows], hi[0], rtol=1e-9)


def _write_future(path, s, own) -> None:
    """A CSV of the saved series ``s`` plus one row per step of forecast ``own`` with future promo 0."""
    with open(path, "w") as f:
        f.write("date,sales,temp,promo\n")
        for t, row in zip(s.times, s.values):
            f.write(f"{str(t)[:10]},{row[0]},{row[1]},{row[2]}\n")
        for t in own.times:
            f.write(f"{str(t)[:10]},,,0\n")


def test_window_calibration_keeps_the_split_conformal_of_the_test_like_origins(sales_csv, tmp_path):  # noqa: F811
    cfg = _config(sales_csv, val_size=24)
    cfg.evaluate.intervals, cfg.evaluate.calibration = "conformal", "window"
    metrics = train_forecaster(cfg, tmp_path / "out")
    assert metrics["val"]["conformal_method"].startswith("pooled")  # 5 validation forecasts: fewer than 19 per step
    from lstmkit.tasks.forecast import load_forecaster

    saved = load_forecaster(tmp_path / "out").meta["conformal"]
    assert "kind" not in saved and set(saved) == {"residuals", "normalised", "per_step"}
    with pytest.raises(ValueError, match="evaluate.calibration must be 'rolling' or 'window'"):
        type(cfg.evaluate)(calibration="last")


def test_transform_scale_calibrates_log_residuals_and_predict_reproduces_them(sales_csv, tmp_path):  # noqa: F811
    """evaluate.conformal_scale=transform: the saved scores are |log y - log f| of the selection model's
    validation forecasts, the run's conformal intervals are f exp(±q), and predict gives them back."""
    from lstmkit.eval.conformal import conformal_from_dict
    from lstmkit.tasks.forecast import load_forecaster, saved_series
    from lstmkit.tasks.forecast_io import predict_run

    cfg = _config(sales_csv, val_size=24, train={**FAST, "epochs": 2},
                  transform={"log": True, "seasonal_period": 12, "difference": False})
    cfg.evaluate.intervals, cfg.evaluate.conformal_scale = "conformal", "transform"
    out = tmp_path / "out"
    metrics = train_forecaster(cfg, out)
    assert "on the log scale" in metrics["val"]["conformal_method"]
    fc = load_forecaster(out)
    cp = conformal_from_dict(fc.meta["conformal"])
    assert cp.scale.kind == "transform" and cp.scale.log
    assert 0 < np.median(np.concatenate(cp.scores)) < 0.2  # log residuals of a level-50..80 series, not absolute ones
    with open(out / "forecasts.csv") as f:
        rows = list(csv.DictReader(f))
    point = np.array([float(r["forecast"]) for r in rows])
    lo, hi = np.array([float(r["lower"]) for r in rows]), np.array([float(r["upper"]) for r in rows])
    np.testing.assert_allclose(np.log(hi / point), np.log(point / lo), rtol=1e-9)  # symmetric on the log scale
    q = cp.multipliers(6, 0.8)
    np.testing.assert_allclose(np.log(hi / point).reshape(-1, 6), np.broadcast_to(q, (len(rows) // 6, 6)), rtol=1e-9)
    s = saved_series(fc)[0]
    own = fc.predict(s, 6, np.zeros((6, 1)))
    _write_future(out / "future.csv", s, own)
    got = list(csv.DictReader(predict_run(out, str(out / "future.csv"), {}).text.splitlines()))
    np.testing.assert_allclose([float(r["upper"]) for r in got], own.point[:, 0] * np.exp(q), rtol=1e-9)
    with pytest.raises(ValueError, match="evaluate.conformal_scale must be 'spread' or 'transform'"):
        type(cfg.evaluate)(conformal_scale="relative")
