"""Summarise forecasting runs' intervals and probabilistic scores over seeds (docs/results.md,
"Forecasts a user can rely on, part 1"): coverage at 50/80/95% of the model's sample-path and the
split-conformal intervals on the test part, the validation numbers the choice between them is
made on, and the CRPS / pinball losses of the LSTM and the baselines.

    python scripts/forecast_intervals.py RUNS/airline-s0 RUNS/airline-s1 ...

Each argument is a run directory written by ``lstmkit train forecast/<preset> --out DIR``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _ms(values: list) -> str:
    if any(v is None for v in values):
        return "n/a"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    runs = [json.loads((r / "metrics.json").read_text()) for r in ap.parse_args().runs]
    test, val = [r["test"] for r in runs], [r["val"] for r in runs]
    print(f"{len(runs)} runs; conformal method: {val[0].get('conformal_method')}")
    print("| intervals | where | 50% | 80% | 95% | width |\n|---|---|---|---|---|---|")
    levels = ("0.5", "0.8", "0.95")
    print("| model | validation | " + " | ".join(_ms([v["coverage_levels"]["model"][L] for v in val]) for L in levels)
          + " | |")
    print("| conformal | validation (2-fold cross-fit) | " + " | ".join(
        _ms([(v.get("conformal_cv_coverage") or {}).get(L) for v in val]) for L in levels) + " | |")
    for kind in ("model", "conformal"):
        print(f"| {kind} | test | " + " | ".join(_ms([t["coverage_levels"][kind][L] for t in test]) for L in levels)
              + f" | {_ms([t['width_by_kind'][kind] for t in test])} |")
    print("\n| method | CRPS (test) | pinball lower / median / upper (test) | MAE (test) | CRPS (val) |\n|---|---|---|---|---|")
    pin = ("lower", "median", "upper")
    print(f"| LSTM | {_ms([t['crps'] for t in test])} | "
          + " / ".join(_ms([t[f'pinball_{k}'] for t in test]) for k in pin)
          + f" | {_ms([t['mae'] for t in test])} | {_ms([v['crps'] for v in val])} |")
    if all(t.get("crps_conformal") is not None for t in test):
        print(f"| LSTM, paths rescaled to the conformal intervals | {_ms([t['crps_conformal'] for t in test])} | | | |")
    for name, b in runs[0]["baselines"].items():
        vb = runs[0]["val_baselines"].get(name, {})
        cell = lambda d, k: "—" if d.get(k) is None else f"{d[k]:.3f}"  # noqa: E731
        print(f"| {name} | {cell(b, 'crps')} | " + " / ".join(cell(b, f"pinball_{k}") for k in pin)
              + f" | {b['mae']:.3f} | {cell(vb, 'crps')} |")
    steps = len(test[0]["coverage_by_step"]["model"])
    if steps > 1:
        block = 12 if steps % 12 == 0 else steps
        for kind in ("model", "conformal"):
            by = np.mean([t["coverage_by_step"][kind] for t in test], axis=0)
            print(f"{kind} coverage by blocks of {block} steps:", [round(float(by[i:i + block].mean()), 3)
                                                                for i in range(0, steps, block)])


if __name__ == "__main__":
    main()
