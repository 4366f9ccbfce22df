"""``lstmkit bench compare --task NAME``: the LSTM against a GRU, a vanilla RNN, a TCN and a small
Transformer encoder at comparable parameter counts, on one classification task.

For every model family a width is searched (hidden size, channels or d_model) so that its
parameter count lies within ``tolerance`` (15%) of a target: by default the LSTM's count at the
task recipe's hidden size. Each (model, seed) is then trained with
:func:`lstmkit.tasks.classify.fit_classifier` -- validation carved from the training data,
preprocessing fit on the rest, early stopping and weight selection on validation -- and scored
once on the official test split. Per run it records test accuracy and macro-F1, training
seconds and epochs, parameters, forward FLOPs per sample (:func:`lstmkit.bench.flops.count_flops`
on a batch of real test samples, divided by its size), inference latency per sample at batch 1
(median of ``latency_repeats`` calls after warm-up, ``torch.no_grad``) and throughput at batch
``throughput_batch`` (samples per second).

Recipes live in this file (:data:`RECIPES`, :data:`FAMILIES`): every family on a task gets the
same epoch budget, early stopping, batch size, AdamW, gradient clipping at norm 1 and
ReduceLROnPlateau; the learning rate is 3e-3 for the recurrent and convolutional families and
1e-3 for the Transformer (without a learning-rate warm-up it diverges more easily at higher
rates). Budgets are sized so that the default run (five families, three seeds) takes a few
minutes on one CPU thread (digits about 2, italypower about 3, mnist1d about 17: at 16 epochs
every model there was still improving, so its budget is 60). Families share the head-side choices: mean pooling over valid steps and
dropout 0.1. Recurrent models are bidirectional with one layer; the TCN (kernel 3) gets the
fewest blocks whose receptive field covers the longest series; the Transformer has two pre-LN
layers, four heads and a feed-forward width of 2 d_model.

Outputs (``out_dir``): ``compare.json`` ({"meta", "rows"}) and ``compare.csv`` hold one row per
(model, seed) with ``"row": "run"`` and one per model with ``"row": "summary"`` (``*_mean`` and
``*_std``: the sample standard deviation over seeds, 0 for one seed); ``report.md`` with the
summary table; ``compare_flops.png`` and ``compare_time.png``: test accuracy against FLOPs per
sample and against training time, error bars over seeds, log x axis, the Pareto front (no other
model both cheaper and more accurate) joined by a line and its points ringed.
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal, Sequence

import torch

from ..checkpoint import atomic_write_bytes
from ..data.collate import pad_sequences
from ..models import create_model
from ..checks import check_int, require
from ..tasks.classify import Classifier, DataConfig, Preprocessor, fit_classifier, load_data
from ..tasks.trainer import TrainConfig, resolve_device
from .common import machine_info, markdown_table, median_seconds, write_outputs
from .flops import count_flops

__all__ = ["Recipe", "Family", "RECIPES", "FAMILIES", "CompareConfig", "match_width", "pareto_front", "run_compare",
           "add_compare_arguments", "run_compare_command"]

log = logging.getLogger(__name__)

Task = Literal["digits", "mnist1d", "italypower", "gunpoint"]
ModelFamily = Literal["lstm", "gru", "rnn", "tcn", "transformer"]


@dataclass(frozen=True)
class Recipe:
    """How every family is trained on one task, and the LSTM width that sets the default budget."""

    lstm_hidden: int  # the default target: the bidirectional LSTM's parameter count at this hidden size
    epochs: int
    patience: int  # early stopping on validation loss
    batch_size: int
    val_fraction: float
    weight_decay: float = 0.01
    plateau_patience: int = 4


@dataclass(frozen=True)
class Family:
    """One model family: the registered model, which field sets its width, its fixed settings."""

    model: str
    width: str  # the field searched to meet the parameter target
    settings: dict
    lr: float
    width_step: int = 1  # widths are multiples of this (d_model of num_heads)


RECIPES: dict[Task, Recipe] = {
    "digits": Recipe(lstm_hidden=64, epochs=40, patience=8, batch_size=64, val_fraction=0.1),
    "mnist1d": Recipe(lstm_hidden=32, epochs=60, patience=5, batch_size=128, val_fraction=0.2, plateau_patience=3),
    "italypower": Recipe(lstm_hidden=32, epochs=100, patience=25, batch_size=8, val_fraction=0.2,
                         plateau_patience=10),
    "gunpoint": Recipe(lstm_hidden=32, epochs=100, patience=25, batch_size=8, val_fraction=0.2, plateau_patience=10),
}

_RNN = {"bidirectional": True, "num_layers": 1, "pooling": "mean", "dropout": 0.1}
FAMILIES: dict[ModelFamily, Family] = {
    "lstm": Family("rnn_classifier", "hidden_size", {"cell": "lstm", **_RNN}, lr=3e-3),
    "gru": Family("rnn_classifier", "hidden_size", {"cell": "gru", **_RNN}, lr=3e-3),
    "rnn": Family("rnn_classifier", "hidden_size", {"cell": "rnn", **_RNN}, lr=3e-3),
    "tcn": Family("tcn_classifier", "channels", {"kernel_size": 3, "dropout": 0.1, "pooling": "mean"}, lr=3e-3),
    "transformer": Family("transformer_classifier", "d_model", {"num_heads": 4, "num_layers": 2, "dropout": 0.1},
                          lr=1e-3, width_step=4),
}


@dataclass
class CompareConfig:
    task: Task = "digits"
    models: list[ModelFamily] = field(default_factory=lambda: list(FAMILIES))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    params: int | None = None  # target parameter count; None: the LSTM at the recipe's hidden size
    epochs: int | None = None  # None: the recipe's budget
    patience: int | None = None  # None: the recipe's early-stopping patience
    tolerance: float = 0.15  # allowed relative distance of each model's parameter count from the target
    device: str = "cpu"
    flops_batch: int = 64  # real test samples the FLOPs are counted on
    latency_repeats: int = 50  # timed batch-1 calls (after 10 untimed ones)
    throughput_batch: int = 256

    def __post_init__(self) -> None:
        if self.task not in RECIPES:
            raise ValueError(f"task must be one of {sorted(RECIPES)}, got {self.task!r}")
        self.models = list(self.models)
        unknown = [m for m in self.models if m not in FAMILIES]
        if not self.models or unknown or len(set(self.models)) != len(self.models):
            raise ValueError(f"models must be a non-empty list of distinct names from {list(FAMILIES)}, "
                             f"got {self.models!r}")
        self.seeds = list(self.seeds)
        if (not self.seeds or len(set(self.seeds)) != len(self.seeds)
                or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds)):
            raise ValueError(f"seeds must be a non-empty list of distinct non-negative ints, got {self.seeds!r}")
        for name in ("params", "epochs", "patience"):  # None: the recipe's value
            if getattr(self, name) is not None:
                setattr(self, name, check_int(name, getattr(self, name)))
        for name in ("flops_batch", "latency_repeats", "throughput_batch"):
            setattr(self, name, check_int(name, getattr(self, name)))
        if isinstance(self.tolerance, bool) or not isinstance(self.tolerance, (int, float)) or not 0 < self.tolerance < 1:
            raise ValueError(f"tolerance must be in (0, 1), got {self.tolerance!r}")
        resolve_device(self.device)

    @property
    def recipe(self) -> Recipe:
        r = RECIPES[self.task]
        return replace(r, epochs=self.epochs or r.epochs, patience=self.patience or r.patience)


# ------------------------------------------------------------------------------- models


def _spec(family: str, width: int, max_length: int) -> dict:
    """The model section for ``family`` at ``width`` on series of up to ``max_length`` steps."""
    f = FAMILIES[family]
    spec = {"name": f.model, **f.settings, f.width: width}
    if f.model == "tcn_classifier":  # the fewest blocks whose receptive field covers the series
        levels = 1
        while 1 + 2 * (spec["kernel_size"] - 1) * (2**levels - 1) < max_length:
            levels += 1
        spec["num_levels"] = levels
    if f.model == "transformer_classifier":
        spec["max_length"] = max_length
    return spec


def _count_parameters(spec: dict, input_size: int, num_classes: int) -> int:
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    model = create_model(spec["name"], input_size=input_size, num_classes=num_classes, **kwargs)
    return sum(p.numel() for p in model.parameters())


def match_width(family: str, target: int, input_size: int, num_classes: int, max_length: int,
                tolerance: float = 0.15, max_width: int = 4096) -> tuple[dict, int]:
    """(model spec, parameter count) of ``family`` at the width whose count is closest to
    ``target``; raises ValueError when even that one is off by more than ``tolerance``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    step = FAMILIES[family].width_step
    count = lambda w: _count_parameters(_spec(family, w * step, max_length), input_size, num_classes)  # noqa: E731
    limit = max_width // step  # widths in units of step; the count grows with the width
    hi = 1
    while hi < limit and count(hi) < target:  # doubling keeps the models built small
        hi = min(2 * hi, limit)
    lo = max(1, hi // 2)
    while lo < hi:  # the smallest width reaching the target
        mid = (lo + hi) // 2
        if count(mid) < target:
            lo = mid + 1
        else:
            hi = mid
    best = min({max(1, lo - 1), lo}, key=lambda w: abs(count(w) - target))
    params = count(best)
    if abs(params - target) > tolerance * target:
        raise ValueError(f"{family}: no width within {tolerance:.0%} of {target} parameters (closest: "
                         f"{FAMILIES[family].width}={best * step} with {params}); choose another --params")
    return _spec(family, best * step, max_length), params


# ------------------------------------------------------------------------------ measures


def _padded(clf: Classifier, inputs: Sequence, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """n preprocessed samples (cycling through ``inputs``) as a padded batch and lengths."""
    arrays = clf.pre.inputs([inputs[i % len(inputs)] for i in range(n)])
    x, lengths = pad_sequences(arrays)
    return x.to(device), lengths.to(device)


def _measure(clf: Classifier, x_test: Sequence, cfg: CompareConfig) -> dict:
    """FLOPs per sample, batch-1 latency (ms) and throughput (samples/s) of the trained model."""
    model = clf.model.eval()
    device = next(model.parameters()).device
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    xf, lf = _padded(clf, x_test, min(cfg.flops_batch, len(x_test)), device)
    flops = count_flops(model, xf, lf) / xf.shape[0]
    x1, l1 = _padded(clf, x_test, 1, device)
    xb, lb = _padded(clf, x_test, cfg.throughput_batch, device)
    with torch.no_grad():
        latency = median_seconds(lambda: model(x1, l1), warmup=10, repeats=cfg.latency_repeats, sync=sync)
        batch_time = median_seconds(lambda: model(xb, lb), warmup=2, repeats=5, sync=sync)
    return {"flops_per_sample": flops, "latency_ms": 1e3 * latency, "throughput": cfg.throughput_batch / batch_time}


_AGGREGATED = ("accuracy", "macro_f1", "val_accuracy", "train_seconds", "epochs", "latency_ms", "throughput")


def _summary(runs: list[dict]) -> dict:
    first = runs[0]
    row = {"row": "summary", "task": first["task"], "model": first["model"], "seeds": len(runs),
           "width_name": first["width_name"], "width": first["width"], "params": first["params"],
           "flops_per_sample": first["flops_per_sample"]}
    for key in _AGGREGATED:
        values = [r[key] for r in runs]
        row[f"{key}_mean"] = statistics.fmean(values)
        row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return row


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> list[bool]:
    """True where no other point is at most as costly and at least as good, and better in one."""
    return [not any(c2 <= c and s2 >= s and (c2 < c or s2 > s) for c2, s2 in zip(costs, scores))
            for c, s in zip(costs, scores)]


# --------------------------------------------------------------------------------- plots


def _plot(summary: list[dict], cost: str, xlabel: str, title: str, path: Path) -> None:
    """Accuracy (mean ± std over seeds) against a cost, log x, the Pareto front marked."""
    agg = require("matplotlib.backends.backend_agg", "compare plots need matplotlib", "train")
    Figure = require("matplotlib.figure", "compare plots need matplotlib", "train").Figure
    fig = Figure(figsize=(6.4, 4.4))
    agg.FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = [r[cost] if cost in r else r[f"{cost}_mean"] for r in summary]
    xerr = [0.0 if cost in r else r[f"{cost}_std"] for r in summary]
    y = [r["accuracy_mean"] for r in summary]
    front = pareto_front(x, y)
    for r, xi, xe, yi, on_front in zip(summary, x, xerr, y, front):
        ax.errorbar(xi, yi, xerr=xe or None, yerr=r["accuracy_std"] or None, fmt="o", capsize=3, label=r["model"])
        if on_front:
            ax.plot(xi, yi, "o", ms=14, mfc="none", mec="black", lw=1)
        ax.annotate(r["model"], (xi, yi), textcoords="offset points", xytext=(6, 6), fontsize=8)
    pts = sorted((xi, yi) for xi, yi, f in zip(x, y, front) if f)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "k--", lw=0.8, label="Pareto front")
    ax.set(xscale="log", xlabel=xlabel, ylabel="test accuracy", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------------- run


_COLUMNS = ["row", "task", "model", "seed", "seeds", "width_name", "width", "params", "accuracy", "macro_f1",
            "val_accuracy", "train_seconds", "epochs", "best_epoch", "flops_per_sample", "latency_ms", "throughput"]


def _report(cfg: CompareConfig, summary: list[dict], meta: dict) -> tuple[str, str]:
    """(the summary table, the whole report.md)."""
    pm = lambda r, k, fmt: f"{r[k + '_mean']:{fmt}} ± {r[k + '_std']:{fmt}}"  # noqa: E731
    rows = [{"model": r["model"], "width": f"{r['width_name']}={r['width']}", "params": r["params"],
             "test accuracy": pm(r, "accuracy", ".4f"), "macro-F1": pm(r, "macro_f1", ".4f"),
             "train s": pm(r, "train_seconds", ".1f"), "epochs": pm(r, "epochs", ".1f"),
             "MFLOPs/sample": f"{r['flops_per_sample'] / 1e6:.3f}", "latency ms (batch 1)": pm(r, "latency_ms", ".3f"),
             f"samples/s (batch {cfg.throughput_batch})": pm(r, "throughput", ".0f")} for r in summary]
    table = markdown_table(rows, list(rows[0]))
    rec = meta["recipe"]
    m = meta["machine"]
    text = "\n".join([
        f"# Sequence models at ~{meta['target_params']} parameters on {cfg.task}", "",
        f"Mean ± standard deviation over seeds {cfg.seeds}; accuracy and macro-F1 on the official test split "
        f"({meta['n_test']} samples), weights selected on a validation split of the training data "
        f"({rec['val_fraction']:.0%} of {meta['n_train']}).", "",
        table, "",
        f"Training: AdamW (weight decay {rec['weight_decay']}), batch {rec['batch_size']}, gradient clipping at norm 1, "
        f"up to {rec['epochs']} epochs, early stopping after {rec['patience']} epochs without a better validation "
        f"loss, ReduceLROnPlateau (patience {rec['plateau_patience']}); learning rates: "
        + ", ".join(f"{k} {FAMILIES[k].lr:g}" for k in cfg.models) + ".", "",
        "FLOPs: forward, multiply-add = 2, per sample (lstmkit.bench.flops). Latency: median of "
        f"{cfg.latency_repeats} batch-1 calls after warm-up; throughput at batch {cfg.throughput_batch}.", "",
        f"Machine: {m['cpu']}, {m['threads']} thread(s), torch {m['torch']}, device {m['device']}.", "",
        "![accuracy vs FLOPs](compare_flops.png) ![accuracy vs training time](compare_time.png)", ""])
    return table, text


def run_compare(cfg: CompareConfig, out_dir: str | Path) -> dict:
    """Run the comparison and write its outputs; returns {"meta", "rows", "table", "paths"}."""
    recipe = cfg.recipe
    (x_train, y_train), (x_test, y_test) = load_data(DataConfig(name=cfg.task))
    pre = Preprocessor.fit(x_train, y_train, normalize=False)  # only for the input width and the classes
    input_size, num_classes = pre.num_features, len(pre.labels)
    max_length = max(len(s) for s in list(x_train) + list(x_test))
    target = cfg.params or _count_parameters(_spec("lstm", recipe.lstm_hidden, max_length), input_size, num_classes)
    specs = {}
    for name in cfg.models:
        specs[name] = match_width(name, target, input_size, num_classes, max_length, cfg.tolerance)
        log.info(f"{name}: {FAMILIES[name].width}={specs[name][0][FAMILIES[name].width]}, "
                 f"{specs[name][1]} parameters (target {target})")
    runs = []
    started = time.perf_counter()
    for name in cfg.models:
        spec, params = specs[name]
        for seed in cfg.seeds:
            train = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=FAMILIES[name].lr,
                                weight_decay=recipe.weight_decay, clip_norm=1.0, plateau_patience=recipe.plateau_patience,
                                early_stopping=recipe.patience, monitor="val_loss", val_fraction=recipe.val_fraction,
                                seed=seed, device=cfg.device, progress="off")
            clf, result, val = fit_classifier(x_train, y_train, spec, train)
            test, _, _ = clf.evaluate(x_test, y_test)
            row = {"row": "run", "task": cfg.task, "model": name, "seed": seed, "width_name": FAMILIES[name].width,
                   "width": spec[FAMILIES[name].width], "params": params, "accuracy": test["accuracy"],
                   "macro_f1": test["macro_f1"], "val_accuracy": val["accuracy"], "train_seconds": result.seconds,
                   "epochs": result.epochs, "best_epoch": result.best_epoch, **_measure(clf, x_test, cfg)}
            runs.append(row)
            log.info(f"{name} seed {seed}: test accuracy {row['accuracy']:.4f}, {result.epochs} epochs in "
                     f"{result.seconds:.1f} s, {row['flops_per_sample'] / 1e6:.3f} MFLOPs/sample, "
                     f"{row['latency_ms']:.3f} ms at batch 1 ({time.perf_counter() - started:.0f} s so far)")
    summary = [_summary([r for r in runs if r["model"] == name]) for name in cfg.models]
    meta = {"config": asdict(cfg), "recipe": asdict(recipe), "target_params": target,
            "specs": {k: v[0] for k, v in specs.items()}, "n_train": len(x_train), "n_test": len(x_test),
            "input_size": input_size, "num_classes": num_classes, "max_length": max_length,
            "machine": machine_info(str(resolve_device(cfg.device))), "seconds": time.perf_counter() - started}
    table, report = _report(cfg, summary, meta)
    rows = runs + summary
    out = Path(out_dir)
    paths = write_outputs(out, "compare", rows, _COLUMNS, meta, report)
    paths["plot_flops"], paths["plot_time"] = out / "compare_flops.png", out / "compare_time.png"
    _plot(summary, "flops_per_sample", "forward FLOPs per sample", f"{cfg.task}: accuracy vs compute",
          paths["plot_flops"])
    _plot(summary, "train_seconds", "training time (s)", f"{cfg.task}: accuracy vs training time", paths["plot_time"])
    return {"meta": meta, "rows": rows, "table": table, "paths": paths}


# ----------------------------------------------------------------------------------- CLI


def _names(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t]


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``lstmkit bench compare``."""
    parser.add_argument("--task", default="digits", choices=sorted(RECIPES), help="dataset and its recipe")
    parser.add_argument("--models", nargs="+", default=list(FAMILIES), metavar="NAME",
                        help=f"families to compare (space or comma separated; default: {' '.join(FAMILIES)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="SEED", help="default: 0 1 2")
    parser.add_argument("--params", type=int, default=None,
                        help="target parameter count (default: the bidirectional LSTM at the recipe's hidden size)")
    parser.add_argument("--epochs", type=int, default=None, help="epoch budget (default: the recipe's)")
    parser.add_argument("--patience", type=int, default=None, help="early-stopping patience (default: the recipe's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--out", default=None, help="output directory (default: runs/bench/compare-TASK)")


def run_compare_command(args: argparse.Namespace) -> int:
    """Run ``lstmkit bench compare`` from parsed arguments; the summary table goes to stdout."""
    models = [m for text in args.models for m in _names(text)]
    cfg = CompareConfig(task=args.task, models=models, seeds=args.seeds, params=args.params, epochs=args.epochs,
                        patience=args.patience, device=args.device)
    out = args.out or f"runs/bench/compare-{cfg.task}"
    log.info(f"comparing {', '.join(cfg.models)} on {cfg.task}, seeds {cfg.seeds}; outputs in {out}")
    result = run_compare(cfg, out)
    sys.stdout.write(result["table"] + "\n")
    log.info(f"wrote {', '.join(str(p) for p in result['paths'].values())}")
    return 0
