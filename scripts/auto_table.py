"""Measure ``classify/auto`` on datasets over seeds and print the docs/results.md tables.

    OMP_NUM_THREADS=1 python scripts/auto_table.py                       # the six development datasets, seeds 0 1 2
    python scripts/auto_table.py gunpoint italypower --seeds 0            # a subset
    python scripts/auto_table.py --from-log runs/auto/runs.jsonl          # the tables again, no training

Each run is ``lstmkit train classify/auto --set data.name=NAME --set train.seed=S`` (run directory under
--runs), taken under the shared lock file --lock one run at a time (``--lock ''``: no lock), and one
JSON line per run is appended to --log: the auto ensemble's test scores, the baselines of the same
run (MiniRocket, 1-NN DTW) with their fit times, the wall time of the whole run, the choice and every
candidate's CV score, the members' own test accuracies and the test accuracies of the candidates not
chosen (scored after the run, for the record). Nothing here chooses anything from a test score.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lstmkit.cli import resolve_config  # noqa: E402
from lstmkit.tasks.classify import train_classifier  # noqa: E402
from heavy_lock import held  # noqa: E402  (scripts/ is on sys.path when run as a script)

DATASETS = ["gunpoint", "italypower", "basicmotions", "japanesevowels", "digits", "mnist1d"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="*", default=DATASETS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--preset", default="classify/auto")
    p.add_argument("--runs", default="runs/auto")
    p.add_argument("--log", default="runs/auto/runs.jsonl")
    p.add_argument("--lock", default="/tmp/lstmkit-heavy.lock")
    p.add_argument("--from-log")
    args = p.parse_args()
    if args.from_log:
        return tables([json.loads(line) for line in Path(args.from_log).read_text().splitlines()])
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        for seed in args.seeds:
            config, _ = resolve_config(args.preset, [*args.set, f"data.name={name}", f"train.seed={seed}",
                                                     "train.progress=off"])
            out = Path(args.runs) / f"{name}-s{seed}"
            with held(args.lock):
                t0 = time.perf_counter()
                m = train_classifier(config, out)
                wall = time.perf_counter() - t0
            row = {"dataset": name, "seed": seed, "set": args.set, "test": m["test"], "val_cv": m["val"],
                   "baselines": m["baselines"], "wall_seconds": wall, "train_seconds": m["train_seconds"],
                   "threads": m["threads"], "auto": m.get("auto"), "ensemble": m.get("ensemble"), "run": str(out)}
            with open(args.log, "a") as f:
                f.write(json.dumps(row) + "\n")
            mr = m["baselines"].get("minirocket", {})
            print(f"  {name} seed {seed}: auto {100 * m['test']['accuracy']:.2f}% ({m['auto']['chosen']}), "
                  f"MiniRocket {100 * mr.get('accuracy', float('nan')):.2f}%, {wall:.0f} s", flush=True)
    tables([json.loads(line) for line in Path(args.log).read_text().splitlines()])


def _ms(values) -> str:
    a = 100 * np.asarray(values, dtype=float)
    return f"{a.mean():.2f} ± {a.std():.2f}"


def _base(r: dict, name: str) -> float:
    b = r["baselines"].get(name) or {}
    return b.get("accuracy", np.nan)


def tables(rows: list[dict]) -> None:
    groups: dict[str, list[dict]] = {}
    order = {name: i for i, name in enumerate(DATASETS)}
    for r in sorted(rows, key=lambda r: (order.get(r["dataset"], len(order)), r["seed"])):
        groups.setdefault(r["dataset"], []).append(r)
    print("| dataset | classify/auto test accuracy % | MiniRocket % | 1-NN DTW % | auto wall / run | MiniRocket fit | "
          "chosen (per seed) | auto per seed |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rs in groups.items():
        knn = [_base(r, "knn_dtw") for r in rs]
        knn_s = "skipped (cost bound)" if np.all(np.isnan(knn)) else _ms(knn)
        mr_fit = np.mean([(r["baselines"].get("minirocket") or {}).get("train_seconds", np.nan) for r in rs])
        walls = [r["wall_seconds"] for r in rs]
        auto_acc, mr_acc = [r["test"]["accuracy"] for r in rs], [_base(r, "minirocket") for r in rs]
        print(f"| {name} | **{_ms(auto_acc)}** | {_ms(mr_acc)} "
              f"| {knn_s} | {np.mean(walls):.0f} s (max {np.max(walls):.0f}) "
              f"| {mr_fit:.1f} s | {', '.join(_kept(r) for r in rs)} | "
              f"{', '.join('%.2f' % (100 * r['test']['accuracy']) for r in rs)} |")
    print()
    print("| dataset | ensemble (auto) % | one member of it (mean) % | gain from the ensemble | every candidate's "
          "fold ensemble % (mean over seeds; runs) | selection gain vs a random candidate | vs always lstm_fcn | "
          "fold models alone % (refits: runs) | gain from the refits |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rs in groups.items():
        ens = np.array([r["test"]["accuracy"] for r in rs])
        single = np.array([(r["ensemble"] or {}).get("member_test_accuracy_mean", r["test"]["accuracy"]) for r in rs])
        per_cand: dict[str, list[float]] = {}
        mean_cand, fixed = [], []
        for r in rs:
            accs = []
            for c in r["auto"]["candidates"]:
                # the chosen candidate's own fold ensemble: the run's model, unless model.top > 1 averaged more
                acc = c.get("test_accuracy_after", r["test"]["accuracy"] if c["name"] == r["auto"]["chosen"] else None)
                if acc is not None:
                    per_cand.setdefault(c["name"], []).append(acc)
                    accs.append(acc)
            mean_cand.append(np.mean(accs))
            first = next((c for c in r["auto"]["candidates"] if c["name"] == "lstm_fcn"), None)
            fixed.append(None if first is None else first.get(
                "test_accuracy_after", r["test"]["accuracy"] if r["auto"]["chosen"] == "lstm_fcn" else None))
        cands = ", ".join(f"{k} {100 * np.mean(v):.2f} ({len(v)})" for k, v in per_cand.items())
        # model.refit: the chosen candidate's fold models alone (scored after the run), where refits ran
        folds_only = [((r["auto"].get("refit") or {}).get("folds_only_test_accuracy_after")) for r in rs]
        with_refits = [(e, f) for e, f in zip(ens, folds_only) if f is not None]
        refit_cols = ("n/a (no refit) | n/a" if not with_refits else
                      f"{_ms([f for _, f in with_refits])} ({len(with_refits)}) | "
                      f"{100 * np.mean([e - f for e, f in with_refits]):+.2f}")
        print(f"| {name} | {_ms(ens)} | {_ms(single)} | {100 * (ens - single).mean():+.2f} | {cands} | "
              f"{100 * (ens - np.array(mean_cand)).mean():+.2f} | {_gain(ens, fixed)} | {refit_cols} |")


def _kept(r: dict) -> str:
    """The candidate(s) whose fold models a run averaged (``model.top`` > 1: several, best first)."""
    return " + ".join(r["auto"].get("averaged") or [r["auto"]["chosen"]])


def _gain(ens: np.ndarray, fixed: list) -> str:
    """The ensemble's mean gain over the same runs' lstm_fcn fold ensemble (runs where it ran)."""
    pairs = [(e, f) for e, f in zip(ens, fixed) if f is not None]
    return "n/a" if not pairs else f"{100 * np.mean([e - f for e, f in pairs]):+.2f}"


if __name__ == "__main__":
    main()
