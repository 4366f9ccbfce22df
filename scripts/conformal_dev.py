"""Dump what a conformal calibration rule needs from one development-fold run (issue 23, part 4).

Trains a preset once on a development fold (its test window moved inside the training part, the
folds of ``scripts/forecast_dev.py`` or ``--set`` overrides) and writes, to an ``.npz``:

- ``cal_*``: the selection ensemble's forecasts from every origin of the validation end, each up to
  the end of the fold's training part (what :class:`lstmkit.eval.conformal.RollingConformal` is
  calibrated on): actual, point, and the sample-path quantiles at :data:`QS`, per (origin, step);
- ``win_*``: the final ensemble's forecasts at the fold window's rolling origins (the fold's "test",
  which lies inside the preset's training part): the same arrays.

Any calibration rule can then be scored offline on the fold window without retraining
(``scripts/conformal_rules.py``). Nothing at or after the preset's real test start is read.

    python scripts/conformal_dev.py forecast/airline --fold 1956-57 --seeds 0 1 2 --out runs/conformal-dev
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from forecast_dev import FOLDS  # noqa: E402  (scripts/ is on sys.path when run as a script)
from heavy_lock import held  # noqa: E402
from lstmkit.cli import resolve_config  # noqa: E402
from lstmkit.data.splits import series_validation  # noqa: E402
from lstmkit.tasks.forecast import _prepare, fit_ensemble  # noqa: E402

QS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)


def _forecasts(fc, series, jobs, H: int) -> dict:
    """Forecasts of (series, origin, steps) jobs, padded to H steps with NaN."""
    C = len(fc.targets)
    out = {k: [] for k in ("y", "f", "q", "origin", "level")}
    for s, o, h in jobs:
        got = fc.predict(s.head(o), h)
        pad = H - h
        y = np.pad(s.values[o:o + h, 0], (0, pad), constant_values=np.nan)
        f = np.pad(got.point[:, 0], (0, pad), constant_values=np.nan)
        q = np.pad(np.quantile(got.samples[:, :, 0], QS, axis=0), ((0, 0), (0, pad)), constant_values=np.nan)
        out["y"].append(y)
        out["f"].append(f)
        out["q"].append(q)
        out["origin"].append(o)
        out["level"].append(float(s.values[o - 1, 0]))  # the last observed value
    assert C == 1, "one target"
    return {k: np.array(v) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset")
    p.add_argument("--fold", required=True, help="a fold of FOLDS, a new name with --set, or 'train': the preset's own "
                   "training part, without a window (the final ensemble's forecasts from the calibration origins "
                   "instead, ``fin_*``: to compare its spread with the selection ensemble's)")
    p.add_argument("--set", nargs="*", default=[], help="extra overrides (a fold's own come from FOLDS)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="runs/conformal-dev")
    p.add_argument("--lock", default=None)
    args = p.parse_args()
    folds = FOLDS[args.preset]
    overrides = [*(folds[args.fold] if args.fold in folds else []), *args.set]
    for seed in args.seeds:
        config, _ = resolve_config(args.preset, [*overrides, f"train.seed={seed}"])
        data = _prepare(config)
        H = config.evaluate.horizon
        n_train = [n for n, _ in data.splits]
        with held(args.lock):
            t = time.perf_counter()
            fc, results, _, sel = fit_ensemble(data.series, n_train, config, data.columns, data.calendar)
            secs = time.perf_counter() - t
        val = series_validation(n_train, config.val_size, H)[0]
        cal_jobs = [(s.head(n), o, min(H, n - o)) for s, (n, _) in zip(data.series, data.splits)
                    for o in range(n - val, n)]
        stride = config.evaluate.stride or H
        cal = _forecasts(sel, data.series, cal_jobs, H)
        if args.fold == "train":  # the real test part is never read: the final model on the calibration origins
            win_jobs, tag, win = cal_jobs, "fin", _forecasts(fc, data.series, cal_jobs, H)
        else:
            win_jobs = [(s.head(e), o, H) for s, (n, e) in zip(data.series, data.splits)
                        for o in range(n, e - H + 1, stride)]
            tag, win = "win", _forecasts(fc, data.series, win_jobs, H)
        tf = config.transform
        out = Path(args.out) / f"{args.preset.replace('/', '-')}-{args.fold}-s{seed}.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, **{f"cal_{k}": v for k, v in cal.items()}, **{f"{tag}_{k}": v for k, v in win.items()},
                 qs=np.array(QS), log=bool(tf.log), power=np.nan if tf.power is None else tf.power, horizon=H, val=val, seconds=secs,
                 best_epoch=np.array([r.best_epoch for r in results]))
        print(f"{out}: {len(cal_jobs)} calibration forecasts, {len(win_jobs)} {tag} forecasts, {secs:.0f}s", flush=True)


if __name__ == "__main__":
    main()
