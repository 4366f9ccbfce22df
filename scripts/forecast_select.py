"""Choose a forecasting recipe on validation only, then measure the choice on the test split.

Each candidate (a list of ``--set`` overrides on a preset) is trained with ``--seeds``; the
pipeline scores every run on the validation end of its training part with the selection runs
(fitted without that end, the same origins and horizon as the test), and the candidate with the
best mean validation ``--metric`` wins. Only then is the winner trained with ``--final-seeds`` and
its test metrics printed beside the baselines of the same runs. The decision reads
``metrics["val"]`` alone; the selection table never shows a test number.

    python scripts/forecast_select.py forecast/airline --candidates scripts/candidates/airline.yaml --metric mape
    python scripts/forecast_select.py forecast/sunspots --candidates scripts/candidates/sunspots.yaml --metric mae

One JSON line per run goes to --log (stage "select" or "final").
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
from forecast_table import _fmt, test_table  # noqa: E402  (scripts/ is on sys.path when run as a script)

from lstmkit.cli import resolve_config  # noqa: E402
from lstmkit.tasks.forecast import train_forecaster  # noqa: E402


def _run(preset: str, overrides: list[str], seed: int, out: Path, log: Path, stage: str) -> dict:
    config, _ = resolve_config(preset, [*overrides, f"train.seed={seed}"])
    start = time.perf_counter()
    m = train_forecaster(config, out)
    m["wall_seconds"] = time.perf_counter() - start
    with open(log, "a") as f:
        f.write(json.dumps({"stage": stage, "preset": preset, "seed": seed, "set": overrides, **m}) + "\n")
    return m


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset")
    p.add_argument("--candidates", required=True, help="YAML list of override lists ([] = the preset as it is)")
    p.add_argument("--metric", default="mape", choices=("mae", "rmse", "mape", "smape", "mase", "owa"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds per candidate (selection)")
    p.add_argument("--final-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--runs", default="runs/forecast-select")
    p.add_argument("--log", default="runs/forecast-select/runs.jsonl")
    args = p.parse_args()
    candidates = yaml.safe_load(Path(args.candidates).read_text())
    if not isinstance(candidates, list) or not all(isinstance(c, list) for c in candidates):
        raise SystemExit(f"{args.candidates}: expected a YAML list of lists of KEY=VALUE overrides")
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    name = args.preset.replace("/", "-")
    table = []
    for i, overrides in enumerate(candidates):
        vals = [_run(args.preset, overrides, s, Path(args.runs) / f"{name}-c{i}-s{s}", log, "select")["val"]
                for s in args.seeds]
        score = [v[args.metric] for v in vals]
        table.append((float(np.mean(score)), i, overrides, score))
        print(f"candidate {i} {overrides}: validation {args.metric} {_fmt(score)}", flush=True)
    table.sort()
    print(f"\n{args.preset}: validation {args.metric} (mean ± std over seeds {args.seeds}), best first")
    print(f"| candidate | overrides | validation {args.metric} |\n|---|---|---|")
    for mean, i, overrides, score in table:
        print(f"| {i} | {' '.join(overrides) or '(preset)'} | {_fmt(score)} |")
    best = table[0][2]
    print(f"\nchosen: {' '.join(best) or '(preset)'}; test runs with seeds {args.final_seeds}")
    runs = [_run(args.preset, best, s, Path(args.runs) / f"{name}-final-s{s}", log, "final") for s in args.final_seeds]
    print(f"\n{args.preset} + {best} ({len(runs)} seeds; wall {_fmt([r['wall_seconds'] for r in runs])} s per run)")
    print(test_table(runs))
    print("per seed " + args.metric + ": " + ", ".join(f"{r['test'][args.metric]:.3f}" for r in runs))


if __name__ == "__main__":
    main()
