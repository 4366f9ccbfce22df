"""Per-unit summaries of recorded LSTM gates over a dataset (:func:`lstmkit.nn.gates.record_gates`).

- **Saturation** (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent
  networks", Fig. 3): for every unit and gate (input i, forget f, output o), the fraction of valid
  steps with the gate below 0.1 (*left*-saturated: closed) and above 0.9 (*right*-saturated: open). A
  unit whose forget gate is right-saturated most of the time keeps its cell for long stretches.
- **Memory horizon** of a unit, from its forget gate: ``1 / (1 - mean f)``, in steps -- the mean
  lifetime of what the cell holds if each step keeps it with probability ``f`` (a geometric lifetime;
  the cell's own contribution after k steps is scaled by ``prod f``, whose expected decay this
  reads). Capped at ``1e6`` for ``mean f`` = 1 to rounding. ``half_life`` is the number of steps
  after which the product of the *typical* (geometric-mean) forget gate falls to one half:
  ``ln 0.5 / mean(ln f)``.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn.gates import Trace

__all__ = ["GATES", "unit_summary", "LOW", "HIGH", "HORIZON_CAP"]

GATES = {"input": "i", "forget": "f", "output": "o"}
LOW, HIGH = 0.1, 0.9
HORIZON_CAP = 1.0e6


def _valid_rows(a, valid) -> np.ndarray:
    """(B, T, H) tensor, (B, T) mask -> (n valid steps, H) float64."""
    return a[valid].double().cpu().numpy()


def unit_summary(traces: list[Trace]) -> dict:
    """One layer and direction over many calls (the traces of each batch): per unit saturation of every
    gate, forget-gate horizon and half-life, and the mean of every gate and |c|; plus the steps counted."""
    rows = {k: np.concatenate([_valid_rows(getattr(t, k), t.valid) for t in traces]) for k in ("i", "f", "o", "c")}
    steps = len(rows["f"])
    out: dict = {"layer": traces[0].layer, "direction": traces[0].direction, "steps": int(steps),
                 "replay_error": max(t.replay_error for t in traces), "saturation": {}}
    for gate, key in GATES.items():
        a = rows[key]
        out["saturation"][gate] = {"left": (a < LOW).mean(0).round(6).tolist(),
                                   "right": (a > HIGH).mean(0).round(6).tolist(), "mean": a.mean(0).round(6).tolist()}
    f = rows["f"]
    mean_f = f.mean(0)
    horizon = np.where(mean_f < 1 - 1 / HORIZON_CAP, 1.0 / np.maximum(1 - mean_f, 1 / HORIZON_CAP), HORIZON_CAP)
    log_f = np.log(np.clip(f, 1e-12, 1.0)).mean(0)
    half = np.where(log_f < 0, math.log(0.5) / np.minimum(log_f, -1e-12), HORIZON_CAP)
    out["horizon"] = np.minimum(horizon, HORIZON_CAP).round(4).tolist()
    out["half_life"] = np.minimum(half, HORIZON_CAP).round(4).tolist()
    out["cell_abs_mean"] = np.abs(rows["c"]).mean(0).round(6).tolist()
    return out
