"""Our Box-Cox against SciPy's: the same transform to rounding, and where (and why) they part."""

import numpy as np
import pytest
from scipy.special import boxcox, inv_boxcox

from lstmkit.boxcox import box_cox, check_power, inverse_box_cox
from lstmkit.data.transforms import SeriesTransform

LAMBDAS = [0.1, 0.25, 1 / 3, 0.5, 1.0, 2.0]


@pytest.mark.parametrize("lam", LAMBDAS)
def test_box_cox_and_its_inverse_equal_scipy(lam):
    y = np.r_[0.0, np.random.default_rng(0).random(500) * 1000, 1e-6, 1.0, 5000.0]
    z = box_cox(y, lam)
    np.testing.assert_allclose(z, boxcox(y, lam), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inverse_box_cox(z, lam), inv_boxcox(z, lam), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inverse_box_cox(z, lam), y, rtol=1e-10, atol=1e-10)


def test_where_ours_departs_from_scipy():
    # below the floor -1/lambda (the image of 0) SciPy's inverse is NaN; ours is 0, the series' lower bound
    z = np.array([-2.5, -5.0])
    assert np.isnan(inv_boxcox(z, 0.5)).all()
    np.testing.assert_array_equal(inverse_box_cox(z, 0.5), [0.0, 0.0])
    # a negative value is an error naming the data, not a NaN
    assert np.isnan(boxcox(np.array([-1.0]), 0.5)).all()
    with pytest.raises(ValueError, match=r"power \(Box-Cox lambda 0.5\) needs train >= 0; found negative values"):
        box_cox(np.array([1.0, -1.0]), 0.5, "train")
    # lambda 0 is the log, spelled log: true; as a power it is refused with the way to ask for it
    for bad in (0, 0.0, -0.5):
        with pytest.raises(ValueError, match=r"power must be null or a Box-Cox lambda > 0 \(log: true is lambda = 0\)"):
            check_power(bad)
    y = np.array([0.5, 1.0, 4.0, 9.0])
    levels = SeriesTransform(log=True, standardize=False).fit(y).transform(y)[:, 0]
    np.testing.assert_allclose(levels, boxcox(y, 0.0), rtol=1e-15)
