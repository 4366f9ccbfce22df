"""What ``evaluate.intervals: auto`` would have reported on the development folds (issue 23, part 3):
from the JSON lines of ``scripts/forecast_dev.py --log``, per preset, fold and candidate, the fold's
"test" coverage (a window inside the training part) at 80 / 95% of the model's intervals, the conformal
ones, and the kind ``auto`` picks from each run's own validation block
(:func:`lstmkit.tasks.forecast_scoring.choose_intervals`), with how often it picked conformal.

    python scripts/forecast_auto.py runs/forecast-dev/p3.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from lstmkit.tasks.forecast_scoring import choose_intervals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log")
    latest = {}  # a run repeated in the log counts once (its latest line)
    for line in open(ap.parse_args().log):
        r = json.loads(line)
        latest[(r["preset"], r["fold"], " ".join(r["set"]) or "(preset)", r["seed"])] = r
    groups = defaultdict(list)
    for (*key, _), r in latest.items():
        groups[tuple(key)].append(r)
    print("| preset | fold | candidate | seeds | model 80 / 95 | conformal 80 / 95 | auto 80 / 95 | auto picked conformal |")
    print("|---|---|---|---|---|---|---|---|")
    for (preset, fold, cand), runs in groups.items():
        cov = {"model": [], "conformal": [], "auto": []}
        picked = 0
        for r in runs:
            levels = r["test"].get("coverage_levels", {})
            kind = choose_intervals(r["val"], r["level"])[0] if "conformal" in levels else "model"
            picked += kind == "conformal"
            for k in ("model", "conformal"):
                if k in levels:
                    cov[k].append((levels[k]["0.8"], levels[k]["0.95"]))
            cov["auto"].append((levels[kind]["0.8"], levels[kind]["0.95"]))
        cell = {k: " / ".join(f"{m:.3f}" for m in np.mean(v, axis=0)) if v else "—" for k, v in cov.items()}
        print(f"| {preset} | {fold} | {cand} | {len(runs)} | {cell['model']} | {cell['conformal']} | {cell['auto']} "
              f"| {picked} of {len(runs)} |")


if __name__ == "__main__":
    main()
