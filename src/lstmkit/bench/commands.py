"""The ``lstmkit bench speed | scaling`` commands: arguments, the allocator comparison (each
setting measured in a fresh worker process, since glibc reads its tuning at start-up), tables,
plots and the report. ``compare`` and ``latency`` live in their own modules.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import multiprocessing
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch

from ..runtime import MALLOC_ENV
from .common import machine_info, markdown_table, show, write_outputs
from .scaling import AXES, MODELS, ScalingConfig, fit_exponents, run_scaling
from .speed import ROWS, SpeedConfig, measure_gemm_peak, run_speed
from .speed_check import bar_rows, check_bars, load_bars

__all__ = ["add_speed_arguments", "run_speed_command", "add_scaling_arguments", "run_scaling_command",
           "in_worker", "MALLOC_SETTINGS"]

log = logging.getLogger(__name__)

MALLOC_SETTINGS = ("default", "tuned")


@contextmanager
def _environ(changes: dict[str, str | None]):
    saved = {k: os.environ.get(k) for k in changes}
    try:
        for k, v in changes.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker(fn: Callable, arg, threads: int):
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return fn(arg), machine_info(getattr(arg, "device", "cpu"))  # the GPU's name and versions with --device cuda


def in_worker(fn: Callable, arg, malloc: str):
    """``fn(arg)`` in a fresh spawned process whose glibc allocator starts with the default
    settings or with the tuning of :mod:`lstmkit.runtime` (through the environment, as if the
    user had exported it). Returns (result, that process's machine_info())."""
    if malloc not in MALLOC_SETTINGS:
        raise ValueError(f"malloc must be one of {MALLOC_SETTINGS}, got {malloc!r}")
    env = dict(MALLOC_ENV) if malloc == "tuned" else {k: None for k in MALLOC_ENV}
    with _environ({**env, "LSTMKIT_MALLOC_TUNING": "0"}):
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
            return pool.submit(_worker, fn, arg, torch.get_num_threads()).result()


def _settings(malloc: str) -> list[str]:
    return list(MALLOC_SETTINGS) if malloc == "both" else [malloc]


def _measure(fn: Callable, arg, malloc: str) -> list[tuple[str, object, dict]]:
    """[(setting, result, machine)] for 'current' (this process as it is) or each setting."""
    if malloc == "current":
        return [("current", fn(arg), machine_info(getattr(arg, "device", "cpu")))]
    return [(s, *in_worker(fn, arg, s)) for s in _settings(malloc)]


def _add_common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--malloc", choices=("both", "default", "tuned", "current"), default="both",
                   help="glibc allocator settings to measure, each in a fresh process: default, tuned "
                        "(MALLOC_MMAP_MAX_=0, large MALLOC_TRIM_THRESHOLD_), both (default), or current "
                        "(this process as it is)")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--out", default=default_out, help=f"output directory (default {default_out})")


def _ints(text: str, name: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise ValueError(f"--{name} takes comma-separated ints, got {text!r}") from e


def _timing(args) -> dict:
    return {k: getattr(args, k) for k in ("warmup", "repeats") if getattr(args, k) is not None}


# ------------------------------------------------------------------------------------- speed


def add_speed_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shapes", default=None,
                   help="T,B,D,H tuples separated by ';' (default 28,64,28,128;100,32,8,128;500,16,1,64)")
    p.add_argument("--rows", default=None, help=f"comma-separated row names (default all): {', '.join(ROWS)}")
    p.add_argument("--modes", default="train,infer")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when a row exceeds its bar in lstmkit/bench/speed_bars.json (quoted in "
                        "docs/benchmarks.md); without --shapes/--rows, runs the bars' shapes and rows only")
    _add_common(p, "runs/bench/speed")


def speed_config(args) -> SpeedConfig:
    kw = _timing(args)
    if args.shapes:
        kw["shapes"] = [tuple(_ints(s, "shapes")) for s in args.shapes.split(";") if s.strip()]
    elif getattr(args, "check", False):
        kw["shapes"] = [tuple(s) for s in load_bars()["shapes"]]
    if args.rows:
        kw["rows"] = [r.strip() for r in args.rows.split(",") if r.strip()]
    elif getattr(args, "check", False):
        kw["rows"] = bar_rows(load_bars())
    return SpeedConfig(modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()), device=args.device, **kw)


def _pivot(rows: list[dict], mode: str) -> str:
    shapes = sorted({(r["T"], r["B"], r["D"], r["H"]) for r in rows}, key=lambda s: (s[0], s[1]))
    names = list(dict.fromkeys(r["row"] for r in rows))
    cells = {(r["row"], (r["T"], r["B"], r["D"], r["H"])): r for r in rows if r["mode"] == mode}
    header = ["row"] + [f"T={t},B={b},D={d},H={h}" for t, b, d, h in shapes]
    table = []
    for name in names:
        line = {"row": name}
        for s, col in zip(shapes, header[1:]):
            r = cells.get((name, s))
            line[col] = "" if r is None else (f"{r['ms']:.3g} ms ({r['ratio_vs_nn_lstm']:.2f}×, "
                                              f"{100 * r['peak_fraction']:.1f}% peak)")
        table.append(line)
    return markdown_table(table, header)


def _malloc_effect(rows: list[dict], keys: tuple[str, ...], time_key: str) -> list[dict]:
    """tuned / default time per matching row (only when both settings ran)."""
    by = {(r["malloc"], *(r[k] for k in keys)): r for r in rows}
    out = []
    for r in rows:
        if r["malloc"] != "default":
            continue
        t = by.get(("tuned", *(r[k] for k in keys)))
        if t is not None:
            out.append({**{k: r[k] for k in keys}, "default_ms": r[time_key], "tuned_ms": t[time_key],
                        "tuned_over_default": round(t[time_key] / r[time_key], 3)})
    return out


def run_speed_command(args) -> int:
    cfg = speed_config(args)
    rows, peaks, machines = [], {}, {}
    for setting, (result, peak), machine in _measure(_speed_job, cfg, args.malloc):
        rows += [{**r, "malloc": setting} for r in result]
        peaks[setting], machines[setting] = peak, machine
    effect = _malloc_effect(rows, ("T", "B", "D", "H", "mode", "row"), "ms")
    sections = [f"# lstmkit bench speed\n\n{_machine_line(machines)}\n",
                "GEMM peak (fastest entry point, float32, square 1024): " +
                "; ".join(f"{s}: {p['peak_gflops']} GFLOP/s via {p['peak_source']} (all: {p['gflops']})"
                          for s, p in peaks.items()) + "\n",
                "Cells: median time (ratio to nn.LSTM in the same process, achieved fraction of the GEMM peak). "
                "FLOPs count the matrix products only; training = 3× forward.\n"]
    for setting in peaks:
        part = [r for r in rows if r["malloc"] == setting]
        for mode in cfg.modes:
            sections.append(f"## {mode} — malloc {setting}\n\n{_pivot(part, mode)}\n")
    if effect:
        sections.append("## Allocator: tuned / default time (each in a fresh process)\n\n" +
                        markdown_table(effect, ["row", "mode", "T", "B", "D", "H", "default_ms", "tuned_ms",
                                                "tuned_over_default"]) + "\n")
    out = Path(args.out)
    meta = {"config": vars(cfg), "peak": peaks, "machine": machines, "malloc_effect": effect}
    columns = ["malloc", "row", "mode", "T", "B", "D", "H", "ms", "ratio_vs_nn_lstm", "gflops", "peak_fraction"]
    columns += ["peak_mib"] if any("peak_mib" in r for r in rows) else []
    paths = write_outputs(out, "speed", rows, columns, meta, "\n".join(sections) + "\n![ratios](speed.png)\n")
    _plot_speed(rows, out / "speed.png")
    show("\n".join(sections))
    log.info(f"wrote {paths['json']}, {paths['csv']}, {paths['report']}, {out / 'speed.png'}")
    if getattr(args, "check", False):
        return _report_check(rows, out)
    return 0


def _report_check(rows: list[dict], out: Path) -> int:
    results = check_bars(rows, load_bars())
    if not results:
        show("bench speed --check: no bar's rows were measured (see lstmkit/bench/speed_bars.json)")
        return 1
    failed = [r for r in results if not r["ok"]]
    table = markdown_table([{**r, "ok": "yes" if r["ok"] else "NO"} for r in results],
                           ["row", "reference", "mode", "shape", "malloc", "ratio", "max_ratio", "ok"])
    (out / "check.md").write_text(f"# bench speed --check\n\n{table}\n", encoding="utf-8")
    show(f"## Bars (lstmkit/bench/speed_bars.json)\n\n{table}\n")
    if failed:
        show(f"bench speed --check: {len(failed)} of {len(results)} bars exceeded: " +
             "; ".join(f"{r['row']} {r['mode']} {r['shape']} malloc {r['malloc']}: {r['ratio']}x > {r['max_ratio']}x"
                       for r in failed))
        return 1
    show(f"bench speed --check: all {len(results)} bars met")
    return 0


def _speed_job(cfg: SpeedConfig):
    return run_speed(cfg, measure_gemm_peak(cfg.device))


def _machine_line(machines: dict) -> str:
    m = next(iter(machines.values()))
    gpu = f", {m['gpu']} (driver {m.get('driver')}, CUDA {m['cuda']}, cuDNN {m['cudnn']})" if "gpu" in m else ""
    return (f"Machine: {m['cpu']} ({m['cores']} cores){gpu}; {m['threads']} thread(s); torch {m['torch']}, "
            f"oneDNN {m['onednn']}, numpy {m['numpy']}, Python {m['python']}; device {m['device']}; "
            f"malloc settings measured: {', '.join(machines)}.")


def _plot_speed(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(r["malloc"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    names = list(dict.fromkeys(r["row"] for r in rows))
    shapes = list(dict.fromkeys((r["T"], r["B"], r["D"], r["H"]) for r in rows))
    fig, axes = plt.subplots(len(settings), len(modes), figsize=(6.5 * len(modes), 0.35 * len(names) * len(settings)
                                                                  + 1.5), squeeze=False)
    height = 0.8 / len(shapes)
    for i, setting in enumerate(settings):
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            for k, s in enumerate(shapes):
                vals = {r["row"]: r["ratio_vs_nn_lstm"] for r in rows
                        if r["malloc"] == setting and r["mode"] == mode and (r["T"], r["B"], r["D"], r["H"]) == s}
                ys = [n + k * height for n in range(len(names))]
                ax.barh(ys, [vals.get(n, 0) for n in names], height=height, label="T,B,D,H=" + ",".join(map(str, s)))
            ax.axvline(1.0, color="k", lw=0.8)
            ax.set_yticks([n + 0.4 - height / 2 for n in range(len(names))], names, fontsize=8)
            ax.invert_yaxis()
            ax.set_xscale("log")
            ax.set_xlabel("time / nn.LSTM time (log)")
            ax.set_title(f"{mode}, malloc {setting}")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------- scaling


def add_scaling_arguments(p: argparse.ArgumentParser) -> None:
    for axis, default in (("T", "50,100,200,500,1000,2000"), ("H", "32,64,128,256,512,1024"), ("L", "1,2,3,4"),
                          ("B", "1,4,16,64")):
        p.add_argument(f"--{axis}", default=default, help=f"values of {axis} to sweep (default {default})")
    p.add_argument("--base", default="T=100,B=16,D=32,H=128,L=1", help="the shape the sweeps start from")
    p.add_argument("--axes", default=",".join(AXES), help="which sweeps to run (default all)")
    p.add_argument("--model", default="lstm", choices=sorted(MODELS))
    _add_common(p, "runs/bench/scaling")


def scaling_config(args) -> ScalingConfig:
    try:
        base = {k.strip(): int(v) for k, v in (item.split("=") for item in args.base.split(","))}
    except ValueError as e:
        raise ValueError(f"--base takes K=V pairs such as T=100,B=16,D=32,H=128,L=1, got {args.base!r}") from e
    return ScalingConfig(**{a: _ints(getattr(args, a), a) for a in AXES}, base=base, model=args.model,
                         axes=tuple(a.strip() for a in args.axes.split(",") if a.strip()), device=args.device,
                         **_timing(args))


def run_scaling_command(args) -> int:
    cfg = scaling_config(args)
    rows, fits, machines = [], [], {}
    kind = {"gru": "gru", "rnn": "rnn"}.get(cfg.model, "lstm")
    for setting, result, machine in _measure(run_scaling, cfg, args.malloc):
        rows += [{**r, "malloc": setting} for r in result]
        fits += [{**f, "malloc": setting} for f in fit_exponents(result, kind)]
        machines[setting] = machine
    effect = _malloc_effect(rows, ("axis", "value"), "train_ms")
    fit_cols = ["malloc", "axis", "quantity", "exponent", "stderr", "ci95", "r2", "analytic_exponent", "range"]
    sections = [f"# lstmkit bench scaling ({cfg.model})\n\n{_machine_line(machines)}\n",
                f"Base shape {cfg.base}; each sweep changes one axis. Exponent k of time ∝ x^k (least squares on "
                "log-log, ± standard error, 95% interval); analytic: the FLOP model's exponent over the same points "
                "(time) or 1 (activation memory ∝ L·T·B·H).\n",
                "## Fitted exponents\n\n" + markdown_table(fits, fit_cols) + "\n",
                "## Points\n\n" + markdown_table(rows, ["malloc", "axis", "value", "train_ms", "infer_ms",
                                                        "saved_bytes", "train_gflops", "infer_gflops"]) + "\n"]
    if effect:
        sections.append("## Allocator: tuned / default training time\n\n" +
                        markdown_table(effect, ["axis", "value", "default_ms", "tuned_ms", "tuned_over_default"]) + "\n")
    out = Path(args.out)
    meta = {"config": vars(cfg), "fits": fits, "machine": machines, "malloc_effect": effect}
    paths = write_outputs(out, "scaling", rows, ["malloc", "axis", "value", "T", "B", "D", "H", "L", "train_ms",
                                                 "infer_ms", "saved_bytes"], meta,
                          "\n".join(sections) + "\n![scaling](scaling.png)\n")
    _plot_scaling(rows, fits, out / "scaling.png")
    show("\n".join(sections[:3]))
    log.info(f"wrote {paths['json']}, {paths['csv']}, {paths['report']}, {out / 'scaling.png'}")
    return 0


def _plot_scaling(rows: list[dict], fits: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_present = [a for a in AXES if any(r["axis"] == a for r in rows)]
    fig, axes = plt.subplots(2, len(axes_present), figsize=(4.2 * len(axes_present), 7.5), squeeze=False)
    fit_of = {(f["malloc"], f["axis"], f["quantity"]): f for f in fits}
    for j, axis in enumerate(axes_present):
        for setting in dict.fromkeys(r["malloc"] for r in rows):
            pts = sorted((r for r in rows if r["axis"] == axis and r["malloc"] == setting), key=lambda r: r["value"])
            x = [r["value"] for r in pts]
            for key, quantity, style in (("train_ms", "train time", "o-"), ("infer_ms", "infer time", "s--")):
                f = fit_of.get((setting, axis, quantity))
                label = f"{quantity} ({setting})" + (f": k={f['exponent']:.2f}±{f['stderr']:.2f}" if f else "")
                axes[0][j].plot(x, [r[key] for r in pts], style, label=label, ms=4)
            f = fit_of.get((setting, axis, "saved memory"))
            axes[1][j].plot(x, [r["saved_bytes"] / 2**20 for r in pts], "o-", ms=4,
                            label=f"saved for backward ({setting})" + (f": k={f['exponent']:.2f}" if f else ""))
        # the analytic FLOP model, scaled to the first measured training point
        pts = sorted((r for r in rows if r["axis"] == axis), key=lambda r: r["value"])
        if pts:
            flops0, t0 = pts[0]["forward_flops"], pts[0]["train_ms"]
            axes[0][j].plot([r["value"] for r in pts], [t0 * r["forward_flops"] / flops0 for r in pts], "k:",
                            label="analytic FLOPs (scaled)")
        for i, ylabel in ((0, "ms"), (1, "MiB")):
            ax = axes[i][j]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(axis)
            ax.set_ylabel(ylabel)
            ax.legend(fontsize=6)
        axes[0][j].set_title(f"time vs {axis}")
        axes[1][j].set_title(f"training memory vs {axis}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
