"""lstmkit.LSTMClassifier against scikit-learn's estimator checks, plus sequence-specific behaviour."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from lstmkit import LSTMClassifier

# Small and quick, still able to learn the checks' blobs (>= 83% training accuracy is required).
FAST = dict(hidden_size=16, epochs=60, early_stopping=None, lr=1e-2, batch_size=32)


@parametrize_with_checks([LSTMClassifier(**FAST)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
