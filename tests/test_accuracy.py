"""Accuracy on the official test splits (slow: `make test-all`). Each preset, 3 seeds, goal on the mean.

The same runs, with wall times and the published anchors, are tabulated in docs/results.md.
"""

import numpy as np
import pytest

from lstmkit.cli import resolve_config
from lstmkit.tasks.classify import train_classifier

GOALS = {  # preset -> goal for the mean test accuracy over seeds 0, 1, 2
    "classify/digits": 0.985,
    "classify/mnist1d": 0.980,
    "classify/gunpoint": 0.993,
    "classify/italypower": 0.965,
    "classify/basicmotions": 1.0,
    "classify/japanesevowels": 0.985,
}
# Goals the presets do not reach yet (measured means in docs/results.md). Strict: once a preset
# reaches its goal this test fails, so the marker has to go.
NOT_MET = {"classify/italypower": "96.08 ± 0.44% measured against the 96.5% goal"}


@pytest.mark.slow
@pytest.mark.parametrize("preset", [pytest.param(p, marks=pytest.mark.xfail(reason=NOT_MET[p], strict=True))
                                    if p in NOT_MET else p for p in sorted(GOALS)])
def test_preset_reaches_its_goal(preset, tmp_path):
    accs = []
    for seed in range(3):
        config, _ = resolve_config(preset, [f"train.seed={seed}", "train.progress=off"])
        metrics = train_classifier(config, tmp_path / f"seed{seed}")
        assert metrics["train_seconds"] < 300, f"{preset} seed {seed} took {metrics['train_seconds']:.0f} s"
        accs.append(metrics["test"]["accuracy"])
    assert np.mean(accs) >= GOALS[preset] - 1e-9, f"{preset}: {accs}"


FORECAST_GOALS = {  # preset -> (metric, goal for its mean over seeds 0-4): issue 4
    "forecast/sunspots": ("mae", 12.0),
    "forecast/airline": ("mape", 4.0),
}
FORECAST_NOT_MET = {"forecast/airline": "MAPE 4.75 ± 1.18 measured against the 4.0 goal: every method in the run "
                                        "overshoots the 1958 slump (docs/results.md)"}


@pytest.mark.slow
@pytest.mark.parametrize("preset", [pytest.param(p, marks=pytest.mark.xfail(reason=FORECAST_NOT_MET[p], strict=True))
                                    if p in FORECAST_NOT_MET else p for p in sorted(FORECAST_GOALS)])
def test_forecast_preset_reaches_its_goal(preset, tmp_path):
    from lstmkit.tasks.forecast import train_forecaster

    metric, goal = FORECAST_GOALS[preset]
    scores = []
    for seed in range(5):
        config, _ = resolve_config(preset, [f"train.seed={seed}", "train.progress=off"])
        metrics = train_forecaster(config, tmp_path / f"seed{seed}")
        assert metrics["train_seconds"] < 300, f"{preset} seed {seed} took {metrics['train_seconds']:.0f} s"
        scores.append(metrics["test"][metric])
    assert np.mean(scores) <= goal, f"{preset} {metric}: {scores}"
