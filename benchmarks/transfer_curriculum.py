"""The measurements of docs/results.md's "Transfer learning" and "Curriculum by length" sections.

Every run is one ``lstmkit train`` command under the shared heavy-work lock; each finished run adds a
row (label, seed, the command, test/val metrics, epochs, seconds, the history's per-epoch validation
accuracy and wall time) to ``--jsonl``. Reproduce a section with:

    python benchmarks/transfer_curriculum.py transfer-mnist1d --root /tmp/i20runs --jsonl docs/transfer_runs.jsonl
    python benchmarks/transfer_curriculum.py transfer-pixelrnn --root /tmp/i20runs --jsonl docs/transfer_runs.jsonl
    python benchmarks/transfer_curriculum.py curriculum --root /tmp/i20runs --jsonl docs/curriculum_runs.jsonl

Choices (all made before looking at any test score): MNIST-1D's preset LSTM-FCN, pretrained once
(seed 0, 30 epochs at most) on classes 0-4, then fine-tuned / trained from scratch with the preset's
recipe on a stratified 5 % of classes 5-9's training series (``data.split_seed`` 0: the same 100 series
for every seed); PixelRNN (Row LSTM preset) pretrained once on digits 0-4 (20 epochs at most), then 20 %
of digits 5-9's training images; curriculum: see :func:`curriculum`.

Time to reach (curriculum): the training seconds until the validation accuracy first reaches a level
fixed in advance (0.95 on JapaneseVowels, whose validation split has 54 series; 0.9 on GunPoint, 10
series), read from the TensorBoard events the runs log (``train.logger: tensorboard``: one event per
epoch, after its validation): ``t(e) = wall(e) - (wall(last) - train_seconds)``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

LOCK = "/tmp/lstmkit-heavy.lock"
SEEDS = (0, 1, 2)


def train(label: str, seed: int, args: list[str], out: Path, jsonl: Path, **extra) -> dict:
    """One ``lstmkit train`` under the lock (skipped when ``out`` already holds a finished run)."""
    cmd = [sys.executable, "-m", "lstmkit", "train", *args, "--set", f"train.seed={seed}", "--set",
           "train.progress=off", "--out", str(out)]
    if not (out / "metrics.json").is_file():
        if out.exists():
            cmd.append("--overwrite")
        t0 = time.perf_counter()
        subprocess.run(["flock", LOCK, *cmd], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        wall = time.perf_counter() - t0
    else:
        wall = None
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text()) if (out / "history.json").is_file() else []
    seconds = _event_seconds(out / "tensorboard" / "model", metrics.get("train_seconds"))
    for r in history:
        if r["epoch"] in seconds:
            r["seconds"] = round(seconds[r["epoch"]], 3)
    row = {"label": label, "seed": seed, "command": "lstmkit " + shlex.join(cmd[3:]), "test": metrics["test"],
           "val": metrics["val"], "epochs": metrics.get("epochs"), "best_epoch": metrics.get("best_epoch"),
           "train_seconds": metrics.get("train_seconds"), "wall_seconds": wall, "run": str(out), **extra,
           "val_curve": [{k: r[k] for k in r if k in ("epoch", "val_accuracy", "val_loss", "seconds")}
                         for r in history]}
    with jsonl.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{label} seed {seed}: test {metrics['test']}", flush=True)
    return row


def _event_seconds(log_dir: Path, train_seconds: float | None) -> dict[int, float]:
    """{epoch: training seconds at the end of its validation} from a run's TensorBoard events (empty without)."""
    if not log_dir.is_dir() or train_seconds is None:
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    events = acc.Scalars("val_loss")
    if not events:
        return {}
    start = events[-1].wall_time - train_seconds
    return {e.step: e.wall_time - start for e in events}


def transfer_mnist1d(root: Path, jsonl: Path) -> None:
    pre = root / "mnist1d-pre-0to4"
    train("mnist1d pretrain 0-4", 0, ["classify/mnist1d", "--set", "data.classes=[0,1,2,3,4]", "--set",
                                       "train.epochs=30", "--set", "train.early_stopping=10"], pre, jsonl)
    target = ["classify/mnist1d", "--set", "data.classes=[5,6,7,8,9]", "--set", "data.train_fraction=0.05"]
    for seed in SEEDS:
        train("mnist1d 5-9 (5%) scratch", seed, target, root / f"mnist1d-scratch-s{seed}", jsonl)
        train("mnist1d 5-9 (5%) fine-tuned", seed, [*target, "--init-from", str(pre)], root / f"mnist1d-ft-s{seed}",
              jsonl)


def transfer_pixelrnn(root: Path, jsonl: Path) -> None:
    pre = root / "pixelrnn-pre-0to4"
    base = ["generate/digits-row", "--set", "baselines=[{name: independent_pixels}]"]
    train("pixelrnn pretrain 0-4", 0, [*base, "--set", "data.classes=[0,1,2,3,4]", "--set", "train.epochs=20"],
          pre, jsonl)
    target = [*base, "--set", "data.classes=[5,6,7,8,9]", "--set", "data.train_fraction=0.2"]
    for seed in SEEDS:
        train("pixelrnn 5-9 (20%) scratch", seed, target, root / f"pixelrnn-scratch-s{seed}", jsonl)
        train("pixelrnn 5-9 (20%) fine-tuned", seed, [*target, "--init-from", str(pre)],
              root / f"pixelrnn-ft-s{seed}", jsonl)


def curriculum(root: Path, jsonl: Path) -> None:
    """JapaneseVowels (variable length 7-29) with its preset (MLSTM-FCN) capped at 100 epochs, and GunPoint
    (150 equal-length steps: the curriculum crops windows) with a bidirectional LSTM classifier, 60 epochs."""
    jv = ["classify/japanesevowels", "--set", "train.epochs=100", "--set", "train.early_stopping=null"]
    gp = ["classify/gunpoint", "--set", "model={name: rnn_classifier, hidden_size: 32, pooling: mean}",
          "--set", "train.epochs=60", "--set", "train.early_stopping=null", "--set", "train.lr=0.003"]
    for name, args in (("japanesevowels", jv), ("gunpoint", gp)):
        for seed in SEEDS:
            for cur in ("none", "length"):
                train(f"{name} curriculum={cur}", seed, [*args, "--set", f"train.curriculum={cur}", "--set",
                                                         "train.logger=tensorboard"],
                      root / f"cur-{name}-{cur}-s{seed}", jsonl, dataset=name, curriculum=cur)


def _mean_std(values) -> str:
    import statistics

    values = list(values)
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def _reach(row: dict, level: float) -> tuple[int | None, float | None]:
    """(epoch, training seconds) at which validation accuracy first reaches ``level`` (None, None if never)."""
    for r in row["val_curve"]:
        if r.get("val_accuracy", 0.0) >= level:
            return r["epoch"], r.get("seconds")
    return None, None


REACH = {"japanesevowels": 0.95, "gunpoint": 0.9}


def summary(root: Path, jsonl: Path) -> None:
    """Markdown tables of the rows in ``jsonl`` (mean ± std over seeds; the seeds' values listed)."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["label"], []).append(r)
    print("| label | seeds | test | per seed | epochs (best) | train s |")
    print("|---|---|---|---|---|---|")
    for label, rs in groups.items():
        key = "accuracy" if "accuracy" in rs[0]["test"] else "nll"
        per_seed = ", ".join(f"{r['test'][key]:.4f}" for r in rs)
        epochs = ", ".join(f"{r['epochs']} ({r['best_epoch']})" for r in rs)
        print(f"| {label} | {len(rs)} | {key} {_mean_std(r['test'][key] for r in rs)} | {per_seed} | {epochs} | "
              f"{_mean_std(r['train_seconds'] for r in rs)} |")
        if "dataset" in rs[0]:
            level = REACH[rs[0]["dataset"]]
            reach = [_reach(r, level) for r in rs]
            print(f"|   time to val accuracy ≥ {level} | | epochs {[e for e, _ in reach]} | seconds "
                  f"{[None if t is None else round(t, 2) for _, t in reach]} | | |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("transfer-mnist1d", "transfer-pixelrnn", "curriculum", "summary"))
    p.add_argument("--root", type=Path, required=True, help="folder for the run directories")
    p.add_argument("--jsonl", type=Path, required=True, help="rows are appended here")
    a = p.parse_args()
    a.root.mkdir(parents=True, exist_ok=True)
    {"transfer-mnist1d": transfer_mnist1d, "transfer-pixelrnn": transfer_pixelrnn,
     "curriculum": curriculum, "summary": summary}[a.what](a.root, a.jsonl)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
