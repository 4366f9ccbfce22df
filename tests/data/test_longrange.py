import numpy as np
import pytest

from lstmkit.data.longrange import ADDING_BASELINE_MSE, adding_problem, copy_task


def test_adding_problem_targets_and_baseline():
    x, y = adding_problem(4000, 50, seed=3)
    assert x.shape == (4000, 50, 2) and y.shape == (4000,) and x.dtype == np.float32
    marks = x[..., 1]
    assert (marks.sum(1) == 2).all()
    assert (marks[:, :25].sum(1) == 1).all() and (marks[:, 25:].sum(1) == 1).all()  # one marker per half
    np.testing.assert_allclose((x[..., 0] * marks).sum(1), y, rtol=1e-6)
    assert abs(float(((y - 1.0) ** 2).mean()) - ADDING_BASELINE_MSE) < 0.01  # always answering 1
    x2, y2 = adding_problem(4000, 50, seed=3)
    assert (x2 == x).all() and (y2 == y).all()
    assert not (adding_problem(10, 50, seed=4)[1] == y[:10]).all()


def test_copy_task_layout():
    x, y = copy_task(5, 40, seed=0, symbols=8, length=10)
    assert x.shape == (5, 40, 10) and y.shape == (5, 10)
    tokens = x.argmax(-1)
    assert (tokens[:, :10] == y + 1).all()
    assert (tokens[:, 40 - 11] == 9).all()  # the recall marker
    assert (tokens[:, 10:29] == 0).all() and (tokens[:, 30:] == 0).all()
    with pytest.raises(ValueError, match="T must be an int >= 21"):
        copy_task(5, 20, seed=0)
