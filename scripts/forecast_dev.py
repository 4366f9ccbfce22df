"""Compare forecasting recipes on development folds cut from the training part only (issue 23).

A fold moves the test window of a preset inside its training part (``data.test_start`` /
``data.test_end``, optionally a shorter horizon or validation end), so its "test" scores are
scores on training data: the real test part is never loaded into a score. Each candidate (a list
of ``--set`` overrides) runs on every fold with every seed, and the script prints, per fold and
candidate: the point metric per seed (mean ± std), OWA against the fold's SARIMA, the CRPS against
the best baseline's, and the coverage of the model's and the conformal intervals at 50/80/95%.

    python scripts/forecast_dev.py forecast/airline --candidates scripts/candidates/airline-dev.yaml
    python scripts/forecast_dev.py forecast/sunspots --candidates scripts/candidates/sunspots-dev.yaml

The folds of each preset are ``FOLDS`` below (every window ends before the preset's test start).
One JSON line per run goes to --log.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from lstmkit.cli import resolve_config  # noqa: E402
from lstmkit.tasks.forecast import train_forecaster  # noqa: E402
from heavy_lock import held  # noqa: E402  (scripts/ is on sys.path when run as a script)

# pseudo-test windows inside each preset's training part (airline: before 1958-01; sunspots: before
# 1921; co2: before 1992-01)
FOLDS = {
    "forecast/airline": {
        "1955-57": ["data.test_start=1955-01", "data.test_end=1957-12", "val_size=24"],
        "1956-57": ["data.test_start=1956-01", "data.test_end=1957-12", "evaluate.horizon=24", "val_size=24"],
    },
    "forecast/sunspots": {
        "1881-1920": ["data.test_start=1881", "data.test_end=1920"],
        "1841-1880": ["data.test_start=1841", "data.test_end=1880"],
    },
    "forecast/co2": {
        "1982-91": ["data.test_start=1982-01", "data.test_end=1991-12"],
        "1972-81": ["data.test_start=1972-01", "data.test_end=1981-12"],
    },
}
LEVELS = ("0.5", "0.8", "0.95")


def _ms(v) -> str:
    v = [x for x in v if x is not None]
    return "n/a" if not v else f"{np.mean(v):.3f} ± {np.std(v):.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset")
    p.add_argument("--candidates", required=True, help="YAML list of override lists ([] = the preset as it is)")
    p.add_argument("--metric", default="mape", choices=("mae", "rmse", "mape", "smape", "mase", "owa", "crps"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--folds", nargs="*", default=None, help="names of FOLDS[preset] (default: all)")
    p.add_argument("--runs", default="/tmp/forecast-dev")
    p.add_argument("--log", default="runs/forecast-dev/runs.jsonl")
    p.add_argument("--lock", default=None, help="a lock file taken (flock) around each training")
    args = p.parse_args()
    candidates = yaml.safe_load(Path(args.candidates).read_text())
    folds = FOLDS[args.preset]
    names = args.folds or list(folds)
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    for i, overrides in enumerate(candidates):
        for fold in names:
            runs = []
            for seed in args.seeds:
                config, _ = resolve_config(args.preset, [*folds[fold], *overrides, f"train.seed={seed}"])
                out = Path(args.runs) / f"{args.preset.replace('/', '-')}-c{i}-{fold}-s{seed}"
                with held(args.lock):
                    start = time.perf_counter()
                    m = train_forecaster(config, out)
                    m["wall_seconds"] = time.perf_counter() - start
                runs.append(m)
                with open(log, "a") as f:
                    f.write(json.dumps({"stage": "dev", "preset": args.preset, "fold": fold, "seed": seed,
                                        "set": overrides, **m}) + "\n")
            t = [r["test"] for r in runs]
            b = runs[0]["baselines"]
            sar = next((v for k, v in b.items() if k.startswith("sarima")), None)
            crps_b = {k: v["crps"] for k, v in b.items() if v.get("crps") is not None}
            best = min(crps_b, key=crps_b.get) if crps_b else None
            cov = {k: " / ".join(_ms([x["coverage_levels"][k][L] for x in t]) for L in LEVELS)
                   for k in t[0].get("coverage_levels", {})}
            print(f"c{i} {' '.join(overrides) or '(preset)'} | fold {fold}: {args.metric} "
                  f"{_ms([x[args.metric] for x in t])} [{', '.join(f'{x[args.metric]:.2f}' for x in t)}]"
                  f" | OWA {_ms([x['owa'] for x in t])} (SARIMA {sar['owa'] if sar else float('nan'):.3f})"
                  f" | CRPS {_ms([x.get('crps') for x in t])} (best baseline {best} "
                  f"{crps_b.get(best, float('nan')):.3f}) | coverage 50/80/95 " + "; ".join(
                      f"{k} {v}" for k, v in cov.items()) + f" | epochs {[r['best_epoch'] for r in runs]}", flush=True)


if __name__ == "__main__":
    main()
