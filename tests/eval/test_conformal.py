import numpy as np
import pytest

from lstmkit.eval.conformal import (RollingConformal, ScoreScale, SplitConformal, conformal_from_dict,
                                    conformal_quantile, min_scores)


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


def _ragged(rng, counts, scale):
    """Scaled scores |e| / s for steps with ``counts`` origins each; e ~ N(0, (scale_k s)^2)."""
    return [np.abs(rng.standard_normal(n)) * c for n, c in zip(counts, scale)]


def test_rolling_conformal_covers_exchangeable_scores_at_every_level():
    """Scores of a model whose spread is off by a factor per step (0.5x .. 2x): the rolling
    multipliers undo it, per step where a step has enough scores, pooled over the short steps."""
    rng = np.random.default_rng(1)
    h = 6
    counts, scale = [40, 39, 38, 37, 12, 10], np.array([0.5, 0.8, 1.0, 1.5, 2.0, 2.0])
    for level in (0.5, 0.8, 0.95):
        covered = []
        for _ in range(300):
            cp = RollingConformal.fit(_ragged(rng, counts, scale))
            q = cp.multipliers(h, level)
            test = np.abs(rng.standard_normal((20, h))) * scale  # new scaled scores at every step
            covered.append((test <= q).mean(axis=0))
        cov = np.mean(covered, axis=0)
        assert (cov[:4] >= level - 0.01).all() and (cov[:4] <= level + 0.06).all(), (level, cov)
        assert abs(cov[4:].mean() - level) <= 0.06, (level, cov)  # the two short steps share one pooled multiplier


def test_rolling_multipliers_pool_the_short_steps_and_scale_the_spread():
    scores = [np.arange(1.0, 20.0), np.arange(1.0, 20.0) * 2, np.arange(10.0) + 50, np.arange(9.0) + 100]
    cp = RollingConformal.fit(scores)
    q = cp.multipliers(4, 0.5)
    assert q[0] == conformal_quantile(scores[0], 0.5) and q[1] == conformal_quantile(scores[1], 0.5)
    assert q[2] == q[3] == conformal_quantile(np.r_[scores[2], scores[3]], 0.5)  # the steps with < 19 scores, pooled
    lo, hi = cp.interval(np.ones((1, 4)), np.array([[1.0, 1.0, 2.0, 3.0]]), 0.5)
    np.testing.assert_allclose(hi[0] - 1, q * [1, 1, 2, 3])
    np.testing.assert_allclose(1 - lo, hi - 1)
    # a pool too small for its level: all scores are pooled rather than an unbounded interval
    q95 = RollingConformal.fit([np.ones(30), np.ones(2) * 5]).multipliers(2, 0.95)
    assert q95[1] == conformal_quantile(np.r_[np.ones(30), np.ones(2) * 5], 0.05) and np.isfinite(q95).all()
    assert "2 steps per step" in cp.method and "2 pooled (19 origins)" in cp.method


def test_rolling_round_trip_and_errors():
    cp = RollingConformal.fit([[0.5, 1.0, 2.0], [1.0]], min_per_step=2)
    back = conformal_from_dict(cp.to_dict())
    assert isinstance(back, RollingConformal)
    np.testing.assert_array_equal(back.multipliers(2, 0.5), cp.multipliers(2, 0.5))
    legacy = SplitConformal.fit(np.ones((3, 2)), np.zeros((3, 2)), np.ones((3, 2)))
    assert isinstance(conformal_from_dict(legacy.to_dict()), SplitConformal)  # runs saved before rolling calibration
    with pytest.raises(ValueError, match="at least one score for step 1"):
        RollingConformal.fit([[], [1.0]])
    with pytest.raises(ValueError, match="finite and non-negative"):
        RollingConformal.fit([[1.0, -1.0]])
    with pytest.raises(ValueError, match="calibrated for 2 steps"):
        cp.multipliers(3, 0.8)
    with pytest.raises(ValueError, match="malformed"):
        conformal_from_dict({"kind": "rolling"})
    with pytest.raises(ValueError, match="malformed"):
        conformal_from_dict([1, 2])


def test_min_scores_is_the_fewest_with_a_bounded_quantile():
    for level in (0.5, 0.8, 0.9, 0.95, 0.99):
        n = min_scores(1 - level)
        assert np.isfinite(conformal_quantile(np.ones(n), 1 - level)), level
        assert n == 1 or conformal_quantile(np.ones(n - 1), 1 - level) == np.inf, level
    assert (min_scores(0.05), min_scores(0.01), min_scores(0.2), min_scores(0.5)) == (19, 99, 4, 1)
    with pytest.raises(ValueError, match="alpha"):
        min_scores(1.0)


def test_a_step_too_short_for_the_level_is_pooled_and_too_few_scores_are_unbounded():
    """At 99% a step needs 99 scores for a bounded quantile: steps with 50 share the pooled quantile
    (not inf) while at 95% each uses its own; with fewer than 99 scores in all, 99% is unbounded."""
    rng = np.random.default_rng(3)
    scores = [rng.random(150), rng.random(50) + 1, rng.random(50) + 2]
    cp = RollingConformal.fit(scores)
    q99, q95 = cp.multipliers(3, 0.99), cp.multipliers(3, 0.95)
    assert q99[0] == conformal_quantile(scores[0], 0.01)
    assert q99[1] == q99[2] == conformal_quantile(np.r_[scores[1], scores[2]], 0.01) and np.isfinite(q99).all()
    np.testing.assert_array_equal(q95, [conformal_quantile(v, 0.05) for v in scores])
    small = RollingConformal.fit([rng.random(40), rng.random(30)])
    assert np.isinf(small.multipliers(2, 0.99)).all()  # 70 scores < 99: documented as unbounded, not clamped
    lo, hi = small.interval(np.zeros((1, 2)), np.ones((1, 2)), 0.99)
    assert np.isinf(lo).all() and np.isinf(hi).all()


def test_transform_scale_keeps_coverage_when_the_level_grows():
    """Multiplicative errors y = f exp(e), e exchangeable, calibrated on low levels (f ~ 100) and used
    on levels ten times higher: on the log scale the intervals cover at the nominal rate; absolute
    residuals (spread scale with a constant spread) under-cover badly."""
    rng = np.random.default_rng(4)
    n_cal, n_test, level = 60, 40, 0.9
    cover = {"transform": [], "spread": []}
    for _ in range(200):
        f_cal = 100 * (1 + 0.01 * np.arange(n_cal))
        y_cal = f_cal * np.exp(0.1 * rng.standard_normal(n_cal))
        f_test = 1000 * (1 + 0.01 * np.arange(n_test))
        y_test = f_test * np.exp(0.1 * rng.standard_normal(n_test))
        for kind in cover:
            scale = ScoreScale(kind, log=True)
            cp = RollingConformal.fit([scale.scores(y_cal, f_cal, np.ones(n_cal))], scale=scale)
            lo, hi = cp.interval(f_test[:, None], np.ones((n_test, 1)), level)
            cover[kind].append(((y_test >= lo[:, 0]) & (y_test <= hi[:, 0])).mean())
            assert (lo < f_test[:, None]).all() and (hi > f_test[:, None]).all()
    assert level - 0.01 <= np.mean(cover["transform"]) <= level + 0.04, np.mean(cover["transform"])
    assert np.mean(cover["spread"]) < 0.4


def test_transform_scale_intervals_invert_the_level_transform():
    f = np.array([[100.0, 400.0]])
    log = RollingConformal.fit([[np.log(1.1)] * 30, [np.log(1.2)] * 30], scale=ScoreScale("transform", log=True))
    lo, hi = log.interval(f, np.ones_like(f), 0.8)
    np.testing.assert_allclose(hi, f * [[1.1, 1.2]])
    np.testing.assert_allclose(lo, f / [[1.1, 1.2]])  # asymmetric on the original scale
    sq = ScoreScale("transform", power=0.5)  # Box-Cox 0.5: 2 (sqrt(y) - 1)
    np.testing.assert_allclose(sq.scores([16.0], [9.0], [1.0]), [2.0])
    lo, hi = RollingConformal.fit([[2.0] * 30], scale=sq).interval(np.array([[9.0]]), np.ones((1, 1)), 0.8)
    np.testing.assert_allclose([lo[0, 0], hi[0, 0]], [4.0, 16.0])
    lo, hi = RollingConformal.fit([[10.0] * 30], scale=sq).interval(np.array([[1.0]]), np.ones((1, 1)), 0.8)
    assert lo[0, 0] == 0.0 and hi[0, 0] == pytest.approx(36.0)  # below the floor: the series' bound 0
    ident = ScoreScale("transform")
    np.testing.assert_allclose(ident.scores([3.0], [1.0], [10.0]), [2.0])  # no transform: absolute residuals


def test_score_scale_round_trip_and_errors():
    cp = RollingConformal.fit([[0.1, 0.2, 0.3]], min_per_step=2, scale=ScoreScale("transform", log=True))
    back = conformal_from_dict(cp.to_dict())
    assert back.scale == cp.scale and "log scale" in back.method
    old = cp.to_dict()
    del old["scale"]  # a run saved before the scale was a choice
    assert conformal_from_dict(old).scale == ScoreScale()
    with pytest.raises(ValueError, match="conformal_scale must be one of 'spread', 'transform'"):
        ScoreScale("relative")
    with pytest.raises(ValueError, match="not both"):
        ScoreScale("transform", log=True, power=0.5)
    with pytest.raises(ValueError, match="positive"):
        ScoreScale("transform", log=True).scores([0.0], [1.0], [1.0])
