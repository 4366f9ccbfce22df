"""bf16-mixed against float32 training of the digits preset, same seed: test accuracy and speed-up.

    PYTHONPATH=src python benchmarks/cuda_precision.py --device cuda --out precision.json

Each precision is one ``lstmkit train classify/digits`` run (the exact commands are printed and
saved in the JSON) with ``train.seed``, ``train.device`` and ``train.precision`` set; the
speed-up is float32's training seconds per epoch over bf16-mixed's (early stopping may end the
two runs at different epochs), and the total training time is given too. ``--epochs N``
shortens both runs (the CPU rehearsal uses it to check the plumbing; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run(precision: str, device: str, seed: int, epochs: int | None, out: Path) -> dict:
    cmd = [sys.executable, "-m", "lstmkit", "-q", "train", "classify/digits", "--out", str(out), "--overwrite",
           "--set", f"train.seed={seed}", "--set", f"train.device={device}", "--set", f"train.precision={precision}"]
    if epochs is not None:
        cmd += ["--set", f"train.epochs={epochs}"]
    print("$ python", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)  # the CLI prints metrics.json, read below
    m = json.loads((out / "metrics.json").read_text())
    return {"precision": precision, "command": "lstmkit " + " ".join(cmd[3:]), "test_accuracy": m["test"]["accuracy"],
            "epochs": m["epochs"], "best_epoch": m["best_epoch"], "train_seconds": m["train_seconds"],
            "seconds_per_epoch": m["train_seconds"] / m["epochs"], "device": m["device"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs (rehearsal only)")
    p.add_argument("--out", required=True, help="JSON file to write")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(prec, args.device, args.seed, args.epochs, Path(tmp) / prec) for prec in ("32", "bf16-mixed")]
    fp32, bf16 = rows
    result = {"preset": "classify/digits", "seed": args.seed, "device": args.device, "runs": rows,
              "accuracy_difference_points": round(100 * (bf16["test_accuracy"] - fp32["test_accuracy"]), 2),
              "speedup_per_epoch": round(fp32["seconds_per_epoch"] / bf16["seconds_per_epoch"], 3),
              "speedup_total": round(fp32["train_seconds"] / bf16["train_seconds"], 3),
              "epochs_override": args.epochs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    for r in rows:
        print(f"{r['precision']:<10}: test accuracy {100 * r['test_accuracy']:.2f}%, {r['epochs']} epochs "
              f"(best {r['best_epoch']}), {r['train_seconds']:.1f} s ({r['seconds_per_epoch']:.3f} s/epoch) on {r['device']}")
    print(f"bf16-mixed - fp32: {result['accuracy_difference_points']:+.2f} points; speed-up per epoch "
          f"{result['speedup_per_epoch']}x, total {result['speedup_total']}x")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
