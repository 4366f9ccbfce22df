"""Run classification presets over seeds and print docs/results.md rows (mean ± std, wall time).

    python scripts/accuracy_table.py classify/digits classify/gunpoint --seeds 0 1 2
    python scripts/accuracy_table.py classify/gunpoint --label "plain LSTM" \\
        --set 'model={name: rnn_classifier, hidden_size: 128, pooling: mean}'
    python scripts/accuracy_table.py --from-log runs/table/runs.jsonl   # the table again, no training
    python scripts/accuracy_table.py classify/auto --cv --set data.name=gunpoint --seeds 0   # training split only

    python scripts/accuracy_table.py classify/auto --nested 5 --set data.name=italypower --seeds 0  # whole recipe

``--cv`` (for recipe development; ``model.name: auto`` configs) runs only the cross-validated search
on the training split and prints every candidate's CV accuracy: no test split is scored, no run
directory written. Choose recipes with these numbers, never with test scores. ``--nested K`` scores the
whole recipe (search, choice, ensemble) by an outer K-fold of the training split, beside MiniRocket on
the same folds, and every candidate's fold ensemble beside the choice: still no test split. With
``--set model.refit=R`` it also scores, on the same folds with the same fold models, the chosen
candidate's fold models alone, with its first refit, with all R, and the refits alone. Each outer fold's
``errors`` (in --log) lists the held-out series the recipe and MiniRocket miss and how many fold models of
each candidate miss each one (``votes``); the table prints how many each misses alone and both miss.

Each run writes its run directory under --runs (default runs/table/<preset>-<label>-s<seed>),
and one JSON line per run is appended to --log, so a table can be rebuilt without rerunning.
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("presets", nargs="*")
    p.add_argument("--from-log", help="print the table from a runs.jsonl written earlier, without training")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--label", default="preset")
    p.add_argument("--runs", default="runs/table")
    p.add_argument("--log", default="runs/table/runs.jsonl")
    p.add_argument("--cv", action="store_true", help="cross-validated scores on the training split only (auto configs)")
    p.add_argument("--nested", type=int, metavar="K", help="the whole auto recipe scored by an outer K-fold of the "
                   "training split, beside MiniRocket (training split only)")
    args = p.parse_args()
    if args.from_log:
        return table_from_log(args.from_log)
    if not args.presets:
        p.error("give presets to run, or --from-log")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    if args.cv or args.nested:
        return cv_table(args)
    for preset in args.presets:
        accs, f1s, walls = [], [], []
        for seed in args.seeds:
            config, _ = resolve_config(preset, [*args.set, f"train.seed={seed}", "train.progress=off"])
            out = Path(args.runs) / f"{preset.replace('/', '-')}-{args.label.replace(' ', '_')}-s{seed}"
            t0 = time.perf_counter()
            m = train_classifier(config, out)
            wall = time.perf_counter() - t0
            accs.append(m["test"]["accuracy"])
            f1s.append(m["test"]["macro_f1"])
            walls.append(wall)
            with open(args.log, "a") as f:
                f.write(json.dumps({"preset": preset, "label": args.label, "seed": seed, "set": args.set,
                                    "test": m["test"], "val": m["val"], "epochs": m["epochs"],
                                    "best_epoch": m["best_epoch"], "train_seconds": m["train_seconds"],
                                    "wall_seconds": wall, "threads": m["threads"], "run": str(out)}) + "\n")
            print(f"  {preset} [{args.label}] seed {seed}: test {100 * accs[-1]:.2f}%  val {100 * m['val']['accuracy']:.2f}%"
                  f"  epochs {m['epochs']} (best {m['best_epoch']})  {wall:.0f} s", flush=True)
        print(_row(preset, args.label, accs, f1s, walls), flush=True)


def cv_table(args) -> None:
    """Every candidate's CV accuracy per seed (training split only), one JSON line per seed in --log."""
    from lstmkit.tasks.classify_auto import cross_validate, nested_cross_validate

    for preset in args.presets:
        for seed in args.seeds:
            config, _ = resolve_config(preset, [*args.set, f"train.seed={seed}", "train.progress=off"])
            if config.model.get("name") != "auto":
                raise SystemExit(f"--cv needs a model.name auto config; {preset} has {config.model.get('name')!r}")
            t0 = time.perf_counter()
            if args.nested:
                info = nested_cross_validate(config, args.nested)
                wall = time.perf_counter() - t0
                with open(args.log, "a") as f:
                    f.write(json.dumps({"preset": preset, "label": args.label, "seed": seed, "set": args.set,
                                        "nested": info, "wall_seconds": wall}) + "\n")
                print(f"| {preset} {' '.join(args.set)} | seed {seed} | auto {100 * info['auto']:.2f}% | MiniRocket "
                      f"{100 * info['minirocket']:.2f}% | " + " | ".join(
                          f"{c}: {'-' if a is None else f'{100 * a:.2f}%'}" for c, a in info["candidates"].items())
                      + " | " + ", ".join(f"{v}: {'-' if a is None else f'{100 * a:.2f}%'}"
                                          for v, a in info["ensembles"].items())
                      + f" | chosen {', '.join(f['chosen'] for f in info['folds'])} | missed "
                      + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in info["misses"].items())
                      + f" | {wall:.0f} s |", flush=True)
                continue
            info = cross_validate(config)
            wall = time.perf_counter() - t0
            with open(args.log, "a") as f:
                f.write(json.dumps({"preset": preset, "label": args.label, "seed": seed, "set": args.set, "cv": info,
                                    "wall_seconds": wall}) + "\n")
            print(f"| {preset} {' '.join(args.set)} | seed {seed} | chosen {info['chosen']} | "
                  + " | ".join(f"{r['name']}: " + (f"{100 * r['cv_accuracy']:.2f}% ({r['seconds']:.0f} s)"
                                                   if r["cv_accuracy"] is not None else r["status"])
                               for r in info["candidates"]) + f" | {wall:.0f} s |", flush=True)


def _row(preset: str, label: str, accs, f1s, walls) -> str:
    a, f = 100 * np.array(accs), 100 * np.array(f1s)
    return (f"| {preset} | {label} | {a.mean():.2f} ± {a.std():.2f} | {f.mean():.2f} ± {f.std():.2f} | "
            f"{np.mean(walls):.0f} s (max {np.max(walls):.0f}) | {', '.join(f'{v:.2f}' for v in a)} |")


def table_from_log(path: str) -> None:
    groups: dict[tuple, list[dict]] = {}
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        groups.setdefault((r["preset"], r["label"]), []).append(r)
    print("| preset | model | test accuracy % | test macro-F1 % | wall per run | per seed |")
    print("|---|---|---|---|---|---|")
    for (preset, label), rs in groups.items():
        print(_row(preset, label, [r["test"]["accuracy"] for r in rs], [r["test"]["macro_f1"] for r in rs],
                   [r["wall_seconds"] for r in rs]))


if __name__ == "__main__":
    main()
