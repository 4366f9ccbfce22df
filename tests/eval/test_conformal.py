import numpy as np
import pytest

from lstmkit.eval.conformal import SplitConformal, conformal_quantile


def test_finite_sample_quantile():
    scores = np.arange(1.0, 10.0)  # n = 9
    assert conformal_quantile(scores, 0.2) == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert conformal_quantile(scores, 0.5) == 5.0
    assert conformal_quantile(scores, 0.05) == np.inf  # ceil(10 * 0.95) = 10 > 9
    with pytest.raises(ValueError, match="non-empty finite"):
        conformal_quantile([], 0.2)


def test_per_step_and_pooled_intervals_cover_exchangeable_residuals():
    rng = np.random.default_rng(0)
    h, sd = 4, np.array([1.0, 2.0, 3.0, 4.0])

    def draw(n):
        return rng.standard_normal((n, h)) * sd, np.zeros((n, h)), np.tile(sd, (n, 1))

    for n_cal, per_step in ((200, True), (10, False)):
        y, f, spread = draw(n_cal)
        cp = SplitConformal.fit(y, f, spread)
        assert cp.per_step == per_step
        covered = []
        for _ in range(200):  # coverage over calibration sets and test points: >= 0.8, near it
            y, f, spread = draw(n_cal)
            cp = SplitConformal.fit(y, f, spread)
            yt, ft, st = draw(50)
            lo, hi = cp.interval(ft, st, 0.8)
            covered.append(((yt >= lo) & (yt <= hi)).mean())
        assert 0.79 <= np.mean(covered) <= 0.86


def test_pooled_interval_follows_the_model_spread():
    y = np.array([[1.0, 2.0], [-1.0, -4.0]])
    cp = SplitConformal.fit(y, np.zeros_like(y), np.array([[1.0, 2.0], [1.0, 2.0]]))
    lo, hi = cp.interval(np.zeros((1, 2)), np.array([[1.0, 2.0]]), 0.5)
    q = conformal_quantile([1.0, 1.0, 1.0, 2.0], 0.5)  # normalised residuals
    np.testing.assert_allclose(hi, [[q, 2 * q]])
    np.testing.assert_allclose(lo, -hi)


def test_conformal_errors():
    with pytest.raises(ValueError, match="same"):
        SplitConformal.fit(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="positive"):
        SplitConformal.fit(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)))
    cp = SplitConformal.fit(np.zeros((20, 3)), np.zeros((20, 3)), np.ones((20, 3)))
    with pytest.raises(ValueError, match="calibrated for 3 steps"):
        cp.interval(np.zeros((1, 4)), np.ones((1, 4)), 0.8)


def test_round_trip_through_plain_lists():
    y = np.random.default_rng(0).normal(size=(5, 3))
    cp = SplitConformal.fit(y, np.zeros_like(y), np.ones_like(y))
    back = SplitConformal.from_dict(cp.to_dict())
    for a, b in zip(cp.interval(np.zeros((1, 3)), np.ones((1, 3)), 0.8), back.interval(np.zeros((1, 3)), np.ones((1, 3)), 0.8)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="malformed"):
        SplitConformal.from_dict({"residuals": []})
