"""Run forecasting presets over seeds and print docs/results.md rows: the LSTM's metrics as mean ± std,
the baselines (deterministic, fitted in the same runs) beside them, and the wall time per run.

    python scripts/forecast_table.py forecast/airline forecast/sunspots --seeds 0 1 2 3 4

Each run writes its run directory under --runs/<preset>-s<seed>; one JSON line per run goes to --log.
``--blocks 12`` also prints each method's mean signed percentage error per block of 12 forecast
steps (e.g. per test year of airline), read from the runs' forecasts.csv: where the error comes from.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lstmkit.cli import resolve_config  # noqa: E402
from lstmkit.tasks.forecast import train_forecaster  # noqa: E402

KEYS = ("mae", "rmse", "mape", "smape", "mase", "owa", "coverage")


def _fmt(values: list) -> str:
    v = [x for x in values if x is not None]
    if not v:
        return "n/a"
    return f"{np.mean(v):.3f} ± {np.std(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("presets", nargs="+")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--runs", default="runs/forecast")
    p.add_argument("--log", default="runs/forecast/runs.jsonl")
    p.add_argument("--blocks", type=int, default=0, help="print the signed %% error per block of this many steps")
    args = p.parse_args()
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    for preset in args.presets:
        runs, outs = [], []
        for seed in args.seeds:
            config, _ = resolve_config(preset, [*args.set, f"train.seed={seed}"])
            out = Path(args.runs) / f"{preset.replace('/', '-')}-s{seed}"
            start = time.perf_counter()
            m = train_forecaster(config, out)
            m["wall_seconds"] = time.perf_counter() - start
            runs.append(m)
            outs.append(out)
            with open(args.log, "a") as f:
                f.write(json.dumps({"preset": preset, "seed": seed, "set": args.set, **m}) + "\n")
        print(f"\n{preset} ({len(runs)} seeds; wall {_fmt([r['wall_seconds'] for r in runs])} s per run)")
        print(test_table(runs))
        if args.blocks:
            print(block_table(outs, args.blocks))


def test_table(runs: list[dict]) -> str:
    """The LSTM's test metrics over runs (mean ± std) and the baselines of the same runs."""
    lines = ["| method | " + " | ".join(KEYS) + " |", "|---|" + "---|" * len(KEYS),
             "| LSTM | " + " | ".join(_fmt([r["test"].get(k) for r in runs]) for k in KEYS) + " |"]
    for name in runs[0]["baselines"]:
        lines.append(f"| {name} | " + " | ".join(_fmt([r["baselines"][name].get(k) for r in runs]) for k in KEYS) + " |")
    return "\n".join(lines)


def block_table(outs: list[Path], block: int) -> str:
    """Mean signed percentage error, 100 (forecast - actual) / actual, per block of ``block``
    forecast steps, for the LSTM (mean ± std over runs) and each baseline (from the first run)."""
    tables = []
    for out in outs:
        with open(out / "forecasts.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        methods = ["forecast"] + [k for k in rows[0] if k not in
                                  ("series", "target", "origin", "time", "step", "actual", "forecast", "lower", "upper")]
        step = np.array([int(r["step"]) for r in rows])
        actual = np.array([float(r["actual"]) for r in rows])
        per = {}
        for name in methods:
            err = 100 * (np.array([float(r[name]) for r in rows]) - actual) / actual
            per[name] = [err[(step - 1) // block == b].mean() for b in range((step.max() - 1) // block + 1)]
        tables.append(per)
    n = len(tables[0]["forecast"])
    head = [f"steps {b * block + 1}-{(b + 1) * block}" for b in range(n)]
    lines = ["| method | " + " | ".join(head) + " |", "|---|" + "---|" * n,
             "| LSTM | " + " | ".join(_fmt([t["forecast"][b] for t in tables]) for b in range(n)) + " |"]
    lines += [f"| {name} | " + " | ".join(f"{v:.3f}" for v in tables[0][name]) + " |"
              for name in tables[0] if name != "forecast"]
    return "mean signed % error per block of forecast steps\n" + "\n".join(lines)


if __name__ == "__main__":
    main()
