"""What picks a forecasting member's epoch (``select``) and which intervals a run reports
(``evaluate.intervals: auto``), issue 23."""

import json

import numpy as np
import pytest
import torch

from lstmkit.data.transforms import SeriesTransform
from lstmkit.models.forecaster import ForecasterConfig, LSTMForecaster
from lstmkit.tasks.forecast import load_forecaster, train_forecaster
from lstmkit.tasks.forecast_io import evaluate_run
from lstmkit.tasks.forecast_scoring import choose_intervals, epoch_scores, integrate_errors

from .test_forecast import _config, sales_csv  # noqa: F401 (a fixture)


def _difference(e: np.ndarray, m: int, first: bool) -> np.ndarray:
    """A level error path (n,) with zero errors before step 1, seasonally (m) then first differenced."""
    pad = np.concatenate([np.zeros(m + 1), e])
    d = pad[m:] - pad[:-m] if m else pad
    d = np.diff(d) if first else d[1:]
    return d[-len(e):]


@pytest.mark.parametrize("m, first", [(0, True), (3, False), (3, True), (12, True)])
def test_integrate_undoes_the_differencing_of_the_errors(m, first):
    rng = np.random.default_rng(0)
    level = rng.standard_normal((2, 5, 7, 1))  # (B, T, n, C) level errors
    scale = np.array([[2.0], [0.5]])
    d = np.apply_along_axis(_difference, 2, level, m, first) / scale[:, None, None, :]
    tf = SeriesTransform(seasonal_period=m, difference=first)
    got = integrate_errors(torch.as_tensor(d), torch.as_tensor(scale), tf)
    np.testing.assert_allclose(got.numpy(), level, atol=1e-12)


@torch.no_grad()  # as the training loop validates
def test_validation_scores_every_origin_of_the_validation_end():
    torch.manual_seed(0)
    model = LSTMForecaster(ForecasterConfig(num_targets=1, horizon=3, hidden_size=4, likelihood="gaussian")).double()
    x = torch.randn(1, 20, 1, dtype=torch.float64)
    lengths = torch.tensor([20])
    err, mask = model.errors(x, lengths, (14, 20))
    assert mask[0, :14].sum() == 0 and mask[0, 14:].sum(1).tolist() == [3, 3, 3, 2, 1, 0]
    # by hand: the point forecast of every origin 14..19 and step k with t + k inside the series
    h, _ = model.encode(x, lengths)
    mu = model.point(model._direct(h, None))[0, :, :, 0]  # (T, n)
    pairs = [(mu[t, k] - x[0, t + 1 + k, 0]) ** 2 for t in range(14, 20) for k in range(3) if t + 1 + k < 20]
    scores = epoch_scores("mse", np.ones((1, 1)), SeriesTransform())(model, [(x, lengths, torch.tensor([[14, 20]]))])
    assert scores["mse"] == pytest.approx(float(sum(pairs) / len(pairs)), rel=1e-12)
    assert scores["loss"] == scores["mse"] and scores["nll"] == pytest.approx(float(model.loss(x, lengths, (14, 20))))
    # 'level' on an undifferenced, unscaled series is the same squared error; 'loss' selects the NLL
    assert scores["level"] == pytest.approx(scores["mse"], rel=1e-12)
    by_nll = epoch_scores("loss", np.ones((1, 1)), SeriesTransform())(model, [(x, lengths, torch.tensor([[14, 20]]))])
    assert by_nll["loss"] == by_nll["nll"]


@pytest.mark.parametrize("select, key", [("loss", "val_nll"), ("level", "val_level"), ("mse", "val_mse")])
def test_the_member_epoch_is_the_best_by_select(sales_csv, tmp_path, select, key):  # noqa: F811
    cfg = _config(sales_csv, val_size=24, select=select, ensemble=2,
                  transform={"log": False, "seasonal_period": 12, "difference": True})
    metrics = train_forecaster(cfg, tmp_path / "out")
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert len(history) == 2
    for rows, best in zip(history, metrics["best_epoch"]):
        values = [r[key] for r in rows]
        assert {"val_nll", "val_mse", "val_level"} <= set(rows[0]) and [r["val_loss"] for r in rows] == values
        assert best == 1 + int(np.argmin(values))


def test_select_and_intervals_validate_themselves(sales_csv):  # noqa: F811
    with pytest.raises(ValueError, match="select must be one of 'loss', 'mse', 'level', got 'nll'"):
        _config(sales_csv, select="nll")
    with pytest.raises(ValueError, match="evaluate.intervals must be one of 'model', 'conformal', 'auto', got 'both'"):
        cfg = _config(sales_csv)
        type(cfg.evaluate)(intervals="both")


def test_choose_intervals_takes_the_kind_closer_to_nominal_on_validation():
    val = {"coverage_levels": {"model": {"0.5": 0.9, "0.8": 0.97, "0.95": 1.0}},
           "conformal_cv_coverage": {"0.5": 0.55, "0.8": 0.78, "0.95": 0.9}}
    kind, gaps = choose_intervals(val, 0.8)
    assert kind == "conformal"
    assert gaps == pytest.approx({"model": (0.4 + 0.17 + 0.05) / 3, "conformal": (0.05 + 0.02 + 0.05) / 3})
    val["coverage_levels"]["model"] = {"0.5": 0.5, "0.8": 0.8, "0.95": 0.95}
    assert choose_intervals(val, 0.8)[0] == "model"
    assert choose_intervals({**val, "conformal_cv_coverage": dict(val["coverage_levels"]["model"])}, 0.8)[0] == "model"
    assert choose_intervals({**val, "conformal_cv_coverage": None}, 0.8) == ("model", {"model": 0.0})
    # a level beside the reported ones counts too
    val["conformal_cv_coverage"] = {"0.5": 0.5, "0.8": 0.8, "0.9": 0.9, "0.95": 0.95}
    val["coverage_levels"]["model"]["0.9"] = 0.7
    assert choose_intervals(val, 0.9)[0] == "conformal"


def test_auto_intervals_are_chosen_on_validation_and_kept_by_evaluate(sales_csv, tmp_path):  # noqa: F811
    cfg = _config(sales_csv, val_size=24)
    cfg.evaluate.intervals = "auto"
    metrics = train_forecaster(cfg, tmp_path / "out")
    val, test = metrics["val"], metrics["test"]
    kind, gaps = choose_intervals(val, cfg.evaluate.level)
    assert val["intervals_chosen"] == kind and val["intervals_gap"] == pytest.approx(gaps)
    assert set(gaps) == {"model", "conformal"} and test["intervals"] == kind
    assert test["coverage"] == test["coverage_levels"][kind]["0.8"]
    assert load_forecaster(tmp_path / "out").meta["intervals"] == kind
    again = evaluate_run(tmp_path / "out")
    assert again["test"] == test and again["baselines"] == metrics["baselines"]


def test_auto_intervals_without_a_calibration_are_the_models(sales_csv, tmp_path):  # noqa: F811
    cfg = _config(sales_csv, val_size=4)  # shorter than the horizon (6): no validation scores, no calibration
    cfg.evaluate.intervals = "auto"
    metrics = train_forecaster(cfg, tmp_path / "out")
    assert set(metrics["val"]) == {"loss"}  # nothing to choose on, so no choice recorded
    assert metrics["test"]["intervals"] == "model" and set(metrics["test"]["coverage_levels"]) == {"model"}
    assert load_forecaster(tmp_path / "out").meta["intervals"] == "model"
