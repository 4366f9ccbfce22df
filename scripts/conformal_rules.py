"""Score conformal calibration rules on development-fold windows, offline (issue 23, part 4).

Reads the ``.npz`` files of ``scripts/conformal_dev.py`` (a selection ensemble's forecasts from every
origin of a fold's validation end, and the final ensemble's forecasts of the fold window, which lies
inside the preset's training part) and prints, per preset, fold and rule, the window coverage at
50 / 80 / 95% (mean over seeds), the mean |coverage - level| over those levels per run, averaged over seeds
(the criterion of ``evaluate.intervals: auto``) and the mean 80% width. Rules (:class:`lstmkit.eval.conformal.RollingConformal`
with ``scale``):

- ``spread``: |y - f| / s, s the model's 80% width (the rule of parts 2-3);
- ``transform``: |T(y) - T(f)|, T the preset's level transform (log, Box-Cox, else identity);
- ``transform-spread``: |T(y) - T(f)| / (T(u) - T(l)), the model's 80% interval (l, u) on that scale;
- ``spread-pooled``: as ``spread``, every step's scores pooled (``min_per_step`` above any step's count).

    python scripts/conformal_rules.py runs/conformal-dev/*.npz
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from lstmkit.eval.conformal import RollingConformal

LEVELS = (0.5, 0.8, 0.95)
RULES = ("spread", "transform", "transform-spread", "spread-pooled")


def _T(x, log: bool, power: float):
    if log:
        return np.log(x)
    if np.isfinite(power):
        return (np.sign(x) * np.abs(x) ** power - 1) / power
    return x


def _Tinv(z, log: bool, power: float):
    if log:
        return np.exp(z)
    if np.isfinite(power):
        v = z * power + 1
        return np.sign(v) * np.abs(v) ** (1 / power)
    return z


def intervals(d, rule: str) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """{level: (lower, upper)} of the window forecasts under ``rule``, calibrated on ``cal_*``."""
    qs = list(np.round(d["qs"], 3))
    lo, hi = qs.index(0.1), qs.index(0.9)
    log, power = bool(d["log"]), float(d["power"])
    y, f, q = d["cal_y"], d["cal_f"], d["cal_q"]
    wf, wq = d["win_f"], d["win_q"]
    if rule.startswith("spread"):
        score, wscale, T, Ti = np.abs(y - f) / (q[:, hi] - q[:, lo]), wq[:, hi] - wq[:, lo], (lambda x: x), (lambda z: z)
    else:
        T = lambda x: _T(x, log, power)  # noqa: E731
        Ti = lambda z: _Tinv(z, log, power)  # noqa: E731
        score = np.abs(T(y) - T(f))
        wscale = np.ones_like(wf)
        if rule == "transform-spread":
            score = score / (T(q[:, hi]) - T(q[:, lo]))
            wscale = T(wq[:, hi]) - T(wq[:, lo])
    H = y.shape[1]
    by_step = [score[:, k][np.isfinite(score[:, k])] for k in range(H)]
    cp = RollingConformal.fit(by_step, min_per_step=10 ** 9 if rule == "spread-pooled" else 19)
    out = {}
    for v in LEVELS:
        m = cp.multipliers(H, v)[None]
        out[v] = (Ti(T(wf) - m * wscale), Ti(T(wf) + m * wscale))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    groups = defaultdict(list)
    for p in ap.parse_args().files:
        m = re.match(r"(forecast-\w+)-(.+)-s(\d+)\.npz", Path(p).name)
        if m and m.group(2) != "train":
            groups[(m.group(1), m.group(2))].append(np.load(p))
    print("| preset | fold | seeds | rule | coverage 50 / 80 / 95 | gap | 80% width | model 50 / 80 / 95 |")
    print("|---|---|---|---|---|---|---|---|")
    for (preset, fold), ds in sorted(groups.items()):
        mq = []
        for d in ds:
            qs = list(np.round(d["qs"], 3))
            y, wq = d["win_y"], d["win_q"]
            mq.append([float(((y >= wq[:, qs.index(round((1 - v) / 2, 3))]) & (y <= wq[:, qs.index(round((1 + v) / 2, 3))])).mean())
                       for v in LEVELS])
        model = " / ".join(f"{c:.3f}" for c in np.mean(mq, axis=0))
        for rule in RULES:
            cov, width = [], []
            for d in ds:
                iv = intervals(d, rule)
                y = d["win_y"]
                cov.append([float(((y >= iv[v][0]) & (y <= iv[v][1])).mean()) for v in LEVELS])
                width.append(float(np.mean(iv[0.8][1] - iv[0.8][0])))
            c = np.mean(cov, axis=0)
            gap = float(np.mean(np.abs(np.array(cov) - np.array(LEVELS))))  # per run, then over seeds
            print(f"| {preset} | {fold} | {len(ds)} | {rule} | {' / '.join(f'{x:.3f}' for x in c)} | {gap:.3f} "
                  f"| {np.mean(width):.3g} | {model} |")


if __name__ == "__main__":
    main()
