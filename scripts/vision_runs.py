"""Collect the test metrics of vision run directories into docs/vision_runs.jsonl (one line per run).

    python scripts/vision_runs.py RUN_DIR [RUN_DIR ...] >> docs/vision_runs.jsonl

Each line: the preset's task, seed, the model's test metrics, each baseline's test metrics,
CPU and wall seconds, and the run's resolved config (so a line can be matched to its preset).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DROP = {"per_image", "per_class", "confusion_matrix", "examples", "mse_per_step", "ssim_per_step"}


def _slim(value):
    if isinstance(value, dict):
        return {k: _slim(v) for k, v in value.items() if k not in DROP}
    return value


def row(run: Path) -> dict:
    import yaml

    metrics = json.loads((run / "metrics.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    baselines = {name: _slim(b.get("test", b)) for name, b in (metrics.get("baselines") or {}).items()}
    return {"task": config.get("task"), "seed": config["train"]["seed"], "test": _slim(metrics["test"]),
            "baselines": baselines, "cpu_seconds": metrics.get("cpu_seconds"),
            "train_seconds": metrics.get("train_seconds"), "parameters": metrics.get("parameters"), "config": config}


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    for d in argv:
        sys.stdout.write(json.dumps(row(Path(d)), sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
