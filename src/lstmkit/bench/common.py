"""What every ``lstmkit bench`` command shares: timing, the machine description, and the output
directory (a printed table, ``NAME.json``, ``NAME.csv``, plots and ``report.md``).

Timing follows nanoGPT's ``bench.py`` and timm's ``benchmark.py``: untimed warm-up calls first,
then the median of several timed calls, references timed in the same process.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..checkpoint import atomic_write_bytes

__all__ = ["show", "median_seconds", "machine_info", "markdown_table", "write_outputs", "check_positive_ints",
           "power_law_fit"]


def show(text: str) -> None:
    """A bench command's result on stdout (the commands' only output channel besides logging;
    the measuring functions never write)."""
    sys.stdout.write(text.rstrip("\n") + "\n")


def median_seconds(fn: Callable[[], object], warmup: int = 3, repeats: int = 7, sync: Callable[[], None] | None = None,
                   ) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls after ``warmup`` untimed ones.
    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each clock read on asynchronous devices."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"warmup must be >= 0 and repeats >= 1, got warmup={warmup}, repeats={repeats}")
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict:
    """The facts a reader needs to compare numbers: CPU/GPU, cores, threads, library versions and
    the allocator settings of this process."""
    info = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "onednn": _onednn_version(),
        "platform": platform.platform(),
        "malloc_env": {k: os.environ[k] for k in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_") if k in os.environ},
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
        info["driver"] = _nvidia_driver()
    return info


def _nvidia_driver() -> str | None:
    """The NVIDIA driver's version as nvidia-smi reports it; None where nvidia-smi is absent."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def _onednn_version() -> str | None:
    """oneDNN's version from torch's build description (e.g. "v3.12.0"), None if not built in."""
    for line in torch.__config__.show().splitlines():
        if "MKL-DNN" in line or "oneDNN" in line:
            words = [w for w in line.split() if w.startswith("v") and w[1:2].isdigit()]
            if words:
                return words[0]
    return None


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """Rows as a Markdown table over ``columns`` (missing cells are blank; floats to 4 digits)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_outputs(out_dir: str | os.PathLike, name: str, rows: Sequence[dict], columns: Sequence[str], meta: dict,
                  report: str) -> dict[str, Path]:
    """Write ``NAME.json`` ({"meta", "rows"}), ``NAME.csv`` (all keys of all rows) and ``report.md``
    into ``out_dir`` atomically; plots are drawn by the command itself. Returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{name}.json", "csv": out / f"{name}.csv", "report": out / "report.md"}
    atomic_write_bytes(paths["json"], json.dumps({"meta": meta, "rows": list(rows)}, indent=1,
                                                 default=_jsonable).encode())
    keys = list(columns) + sorted({k for r in rows for k in r} - set(columns))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(r[k]) if isinstance(r.get(k), (dict, list)) else r.get(k) for k in keys})
    atomic_write_bytes(paths["csv"], buf.getvalue().encode())
    atomic_write_bytes(paths["report"], report.encode())
    return paths


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def check_positive_ints(name: str, values: Sequence[int]) -> list[int]:
    """A grid axis: a non-empty list of positive ints (clear error otherwise)."""
    values = list(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be a non-empty list of positive ints, got {values!r}")
    return values


def power_law_fit(x: Sequence[float], y: Sequence[float]) -> dict:
    """Least-squares fit of log y = a + k log x: the exponent k with its standard error and a 95%
    interval (Student t, n - 2 degrees of freedom), plus the prefactor exp(a) and R^2.

    Needs at least 3 points with distinct x; all values must be positive and finite."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    if len(np.unique(x)) < 3:
        raise ValueError(f"a power-law fit needs at least 3 distinct x values, got {np.unique(x).tolist()}")
    if not (np.isfinite(x).all() and np.isfinite(y).all() and (x > 0).all() and (y > 0).all()):
        raise ValueError("a power-law fit needs positive, finite x and y")
    lx, ly = np.log(x), np.log(y)
    A = np.stack([np.ones_like(lx), lx], axis=1)
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    resid = ly - A @ coef
    n = len(x)
    dof = n - 2
    s2 = float(resid @ resid) / dof if dof > 0 else 0.0
    cov = s2 * np.linalg.inv(A.T @ A)
    se = float(np.sqrt(cov[1, 1]))
    t = _t_quantile_975(dof)
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    return {"exponent": float(coef[1]), "stderr": se, "ci95": [float(coef[1] - t * se), float(coef[1] + t * se)],
            "prefactor": float(np.exp(coef[0])), "r2": 1.0 - float(resid @ resid) / ss_tot if ss_tot > 0 else 1.0,
            "n": n}


def _t_quantile_975(dof: int) -> float:
    """Two-sided 95% Student-t quantile (scipy ships with scikit-learn, a dependency of the
    training extras)."""
    if dof < 1:
        return float("inf")
    from scipy.stats import t

    return float(t.ppf(0.975, dof))
