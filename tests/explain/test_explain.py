"""Attributions, the deletion check and the unit summaries on cases whose answer is known."""

import math

import numpy as np
import pytest
import torch

pytest.importorskip("captum")

from lstmkit.explain.attribution import area, deletion_curves, integrated_gradients  # noqa: E402
from lstmkit.explain.units import unit_summary  # noqa: E402
from lstmkit.nn import LSTM  # noqa: E402
from lstmkit.nn.gates import Trace  # noqa: E402


def test_integrated_gradients_is_complete_on_an_lstm():
    torch.manual_seed(0)
    lstm = LSTM(3, 8, batch_first=True, dtype=torch.float64).eval()
    head = torch.nn.Linear(8, 1, dtype=torch.float64)

    def score(x):
        out, _ = lstm(x)
        return torch.sigmoid(head(out[:, -1]))[:, 0]

    x = torch.randn(6, 3, dtype=torch.float64)
    r = integrated_gradients(score, x, torch.zeros_like(x), n_steps=32)
    assert r["attributions"].shape == (6, 3)
    assert abs(r["sum"] - (r["f_x"] - r["f_baseline"])) <= r["delta"] + 1e-9
    assert r["delta"] < 1e-6 and abs(r["f_x"] - r["f_baseline"]) > 1e-3  # completeness is not vacuous


def _known_model():
    """F(x) = sigmoid(3 x[2] + 1.5 x[5] - 2 x[0]) over a (T, 1) series: steps 2 and 5 support it."""
    w = torch.zeros(8)
    w[2], w[5], w[0] = 3.0, 1.5, -2.0
    return lambda x: torch.sigmoid((x[..., 0] * w).sum(-1))


def test_deletion_check_passes_for_the_true_ranking_and_fails_for_the_reverse():
    score = _known_model()
    x = torch.ones(8, 1, dtype=torch.float64)
    b = torch.zeros_like(x)
    ig = integrated_gradients(score, x, b, n_steps=64)
    per_step = ig["attributions"].sum(1).numpy()
    assert list(np.argsort(-per_step)[:2]) == [2, 5] and per_step[0] < 0 and np.allclose(per_step[[1, 3, 4, 6, 7]], 0)
    good = deletion_curves(score, x, b, per_step, draws=20, seed=0)
    assert good["passed"] and good["auc_top"] < good["auc_random"]
    assert good["top"][0] == pytest.approx(float(score(x[None])[0]))
    assert good["top"][1] == pytest.approx(float(score(torch.where(torch.arange(8)[:, None] == 2, 0.0, x)[None])[0]))
    assert good["drop_top_k"] > good["drop_random_k"]
    bad = deletion_curves(score, x, b, -per_step, draws=20, seed=0)
    assert not bad["passed"] and bad["auc_top"] > bad["auc_random"]
    assert len(good["top"]) == len(good["random_mean"]) == 9 and good["k_fraction"][-1] == 1.0


def test_area_is_the_trapezoid_over_the_deleted_fraction():
    assert area(np.array([1.0, 0.0])) == 0.5
    assert area(np.array([1.0, 1.0, 1.0])) == 1.0
    assert area(np.array([0.0, 1.0, 0.0])) == 0.5


def _trace(f_value, i_values):
    B, T, H = 1, 4, 2
    full = lambda v: torch.full((B, T, H), v, dtype=torch.float64)  # noqa: E731
    i = torch.tensor(i_values, dtype=torch.float64).reshape(B, T, 1).expand(B, T, H).clone()
    return Trace(0, 0, i=i, f=full(f_value), g=full(0.0), o=full(0.5), c=full(1.0), h=full(0.0),
                 valid=torch.ones(B, T, dtype=torch.bool))


def test_unit_summary_saturation_and_horizon():
    s = unit_summary([_trace(0.95, [0.05, 0.5, 0.95, 0.99])])
    assert s["steps"] == 4
    assert s["saturation"]["input"]["left"] == [0.25, 0.25] and s["saturation"]["input"]["right"] == [0.5, 0.5]
    assert s["saturation"]["forget"]["right"] == [1.0, 1.0] and s["saturation"]["output"]["left"] == [0.0, 0.0]
    assert s["horizon"] == pytest.approx([20.0, 20.0])  # 1 / (1 - 0.95)
    assert s["half_life"] == pytest.approx([math.log(0.5) / math.log(0.95)] * 2, rel=1e-4)


def test_unit_summary_skips_padded_steps():
    t = _trace(0.5, [0.0, 0.0, 1.0, 1.0])
    t.valid[0, 2:] = False
    t.i[0, 2:] = float("nan")
    s = unit_summary([t])
    assert s["steps"] == 2 and s["saturation"]["input"]["left"] == [1.0, 1.0]
