"""``lstmkit bench longrange``: train each recurrent layer on a long-range task (the adding problem
or the copy task, :mod:`lstmkit.data.longrange`) at several sequence lengths T, under a
wall-clock cap and a step limit, and report solved or not, time per epoch, time to solve and
training memory.

Protocol per (layer, T), all from fixed seeds: fresh training batches from seed 0 (B sequences
per step, as in the original papers' unlimited data), a validation set (seed 1) scored every
``eval_every`` steps, training stops when validation says solved, at ``max_steps`` or at
``cap_seconds`` of training time (scoring not counted); the test set (seed 2) is scored once at
the end. *Solved*: adding, test MSE < 0.01 (always answering 1 scores 1/6 ~= 0.167); copy, test
per-symbol accuracy >= 0.99 (chance 1/A). *Time per epoch*: the median training-step time times
``steps_per_epoch``. *Time to solve*: training seconds until validation first met the criterion.
*Memory*: bytes autograd saves for one training step's backward (activations, each storage once).

Layers: ``nn.LSTM`` (torch's fused kernel, what lstmkit's LSTM runs without variants), ``slstm``,
``mlstm`` (chunkwise), ``minlstm`` (the fused scan on CPU). Each reads the task's input, and a
linear head reads the last step (adding) or the last K steps (copy).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..data.longrange import ADDING_BASELINE_MSE, ADDING_SOLVED_MSE, adding_problem, copy_chance_loss, copy_task
from ..nn import create_recurrent
from .common import check_positive_ints, power_law_fit
from .scaling import saved_bytes

__all__ = ["LongRangeConfig", "LAYERS", "run_longrange", "LongRangeNet"]

log = logging.getLogger(__name__)

LAYERS = {"nn.LSTM": {}, "slstm": {"num_heads": 4}, "mlstm": {"num_heads": 4, "mode": "chunkwise", "chunk_size": 64},
          "minlstm": {}}
TASKS = ("adding", "copy")
COPY_SYMBOLS, COPY_LENGTH, COPY_SOLVED_ACC = 8, 10, 0.99


@dataclass
class LongRangeConfig:
    task: str = "adding"
    layers: list[str] = field(default_factory=lambda: list(LAYERS))
    T: list[int] = field(default_factory=lambda: [100, 500, 1000, 2000])
    batch_size: int = 32
    hidden_size: int = 128
    lr: float = 1e-3
    max_steps: int = 2000
    cap_seconds: float = 90.0
    eval_every: int = 50
    steps_per_epoch: int = 100
    val_size: int = 256
    test_size: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        unknown = [name for name in self.layers if name not in LAYERS]
        if unknown or not self.layers:
            raise ValueError(f"layers {unknown or self.layers!r} unknown; valid: {list(LAYERS)}")
        self.T = check_positive_ints("T", self.T)
        for name in ("batch_size", "hidden_size", "max_steps", "eval_every", "steps_per_epoch", "val_size",
                     "test_size"):
            check_positive_ints(name, [getattr(self, name)])
        if not self.cap_seconds > 0 or not self.lr > 0:
            raise ValueError(f"cap_seconds and lr must be > 0, got {self.cap_seconds}, {self.lr}")


class LongRangeNet(nn.Module):
    """layer over (B, T, D) -> a linear head on the last ``outputs_at`` steps."""

    def __init__(self, layer: str, input_size: int, hidden_size: int, out: int, outputs_at: int) -> None:
        super().__init__()
        if layer == "nn.LSTM":
            self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
        else:
            self.rnn = create_recurrent(layer, input_size, hidden_size, batch_first=True, **LAYERS[layer])
        self.head = nn.Linear(hidden_size, out)
        self.outputs_at = outputs_at

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.rnn(x)  # -> (B, T, H)
        return self.head(h[:, -self.outputs_at:])  # -> (B, K, out)


def _data(cfg: LongRangeConfig, n: int, T: int, seed: int) -> tuple[Tensor, Tensor]:
    if cfg.task == "adding":
        x, y = adding_problem(n, T, seed)
    else:
        x, y = copy_task(n, T, seed, COPY_SYMBOLS, COPY_LENGTH)
    return torch.from_numpy(x), torch.from_numpy(y)


def _loss(cfg: LongRangeConfig, pred: Tensor, y: Tensor) -> Tensor:
    if cfg.task == "adding":
        return nn.functional.mse_loss(pred[:, -1, 0], y)
    return nn.functional.cross_entropy(pred.reshape(-1, COPY_SYMBOLS), y.reshape(-1))


@torch.no_grad()
def _score(cfg: LongRangeConfig, model: nn.Module, x: Tensor, y: Tensor, batch: int = 100) -> dict:
    model.eval()
    preds = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    model.train()
    if cfg.task == "adding":
        mse = float(((preds[:, -1, 0] - y) ** 2).mean())
        return {"mse": mse, "solved": mse < ADDING_SOLVED_MSE}
    acc = float((preds.argmax(-1) == y).float().mean())
    return {"accuracy": acc, "loss": float(_loss(cfg, preds, y)), "solved": acc >= COPY_SOLVED_ACC}


def run_one(cfg: LongRangeConfig, layer: str, T: int) -> dict:
    """Train ``layer`` on the task at length T; one result row."""
    torch.manual_seed(cfg.seed)
    d_in, out, at = (2, 1, 1) if cfg.task == "adding" else (COPY_SYMBOLS + 2, COPY_SYMBOLS, COPY_LENGTH)
    model = LongRangeNet(layer, d_in, cfg.hidden_size, out, at)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x_val, y_val = _data(cfg, cfg.val_size, T, cfg.seed + 1)
    gen_seed = cfg.seed * 1000 + 7
    xb, yb = _data(cfg, cfg.batch_size, T, gen_seed)
    memory = saved_bytes(lambda: _loss(cfg, model(xb), yb))
    step_times, train_s, solved_at, history = [], 0.0, None, []
    step = 0
    while step < cfg.max_steps and train_s < cfg.cap_seconds:
        xb, yb = _data(cfg, cfg.batch_size, T, gen_seed + 1 + step)
        t0 = time.perf_counter()
        loss = _loss(cfg, model(xb), yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        step += 1
        step_times.append(dt)
        train_s += dt
        if step % cfg.eval_every == 0 or step == cfg.max_steps or train_s >= cfg.cap_seconds:
            val = _score(cfg, model, x_val, y_val)
            history.append({"step": step, "train_s": round(train_s, 2), "loss": float(loss.detach()), **val})
            log.info("%s T=%d step %d (%.0f s) loss %.4f val %s", layer, T, step, train_s, float(loss.detach()),
                     {k: round(v, 4) for k, v in val.items() if not isinstance(v, bool)})
            if val["solved"] and solved_at is None:
                solved_at = (step, train_s)
                break
    x_test, y_test = _data(cfg, cfg.test_size, T, cfg.seed + 2)
    test = _score(cfg, model, x_test, y_test)
    step_s = float(np.median(step_times[1:] if len(step_times) > 1 else step_times))
    return {"task": cfg.task, "layer": layer, "T": T, "B": cfg.batch_size, "H": cfg.hidden_size,
            "params": sum(p.numel() for p in model.parameters()), "steps": step, "train_s": round(train_s, 1),
            "step_ms": round(1e3 * step_s, 2), "epoch_s": round(step_s * cfg.steps_per_epoch, 2),
            "solved": bool(test["solved"]), "test": test,
            "val_solved_step": solved_at[0] if solved_at else None,
            "time_to_solve_s": round(solved_at[1], 1) if solved_at else None,
            "saved_mb": round(memory / 2**20, 1), "saved_bytes": memory, "stopped_by": _stopped_by(cfg, step, train_s, solved_at),
            "history": history}


def _stopped_by(cfg: LongRangeConfig, step: int, train_s: float, solved_at) -> str:
    if solved_at:
        return "solved (validation)"
    return "step limit" if step >= cfg.max_steps else f"time cap {cfg.cap_seconds:.0f} s"


def run_longrange(cfg: LongRangeConfig) -> list[dict]:
    return [run_one(cfg, layer, T) for layer in cfg.layers for T in cfg.T]


def load_rows(out: Path) -> list[dict]:
    """Every row recorded in ``out`` (one ``rows-<task>-<layer>.json`` file per command)."""
    rows = []
    for path in sorted(out.glob("rows-*.json")):
        rows += json.loads(path.read_text())["rows"]
    return rows


def exponents(rows: list[dict]) -> list[dict]:
    """Per task and layer with >= 3 lengths: the fitted exponent of time per epoch in T."""
    fits = []
    for task, layer in sorted({(r["task"], r["layer"]) for r in rows}):
        pts = sorted((r for r in rows if r["task"] == task and r["layer"] == layer), key=lambda r: r["T"])
        if len({r["T"] for r in pts}) >= 3:
            f = power_law_fit([r["T"] for r in pts], [r["epoch_s"] for r in pts])
            fits.append({"task": task, "layer": layer, "exponent": round(f["exponent"], 3),
                         "stderr": round(f["stderr"], 3), "range": f"{pts[0]['T']}..{pts[-1]['T']}"})
    return fits


def baselines(task: str) -> str:
    if task == "adding":
        return (f"always answering 1 scores MSE {ADDING_BASELINE_MSE:.3f}; solved: test MSE < {ADDING_SOLVED_MSE}")
    return (f"chance: accuracy {1 / COPY_SYMBOLS:.3f}, cross-entropy {copy_chance_loss(COPY_SYMBOLS):.3f}; "
            f"solved: test accuracy >= {COPY_SOLVED_ACC}")


def config_dict(cfg: LongRangeConfig) -> dict:
    return asdict(cfg)


# ------------------------------------------------------------------------------------- command
def add_longrange_arguments(p) -> None:
    p.add_argument("--task", default="adding", choices=TASKS)
    p.add_argument("--layers", default=",".join(LAYERS), help=f"comma-separated, from {', '.join(LAYERS)}")
    p.add_argument("--T", default="100,500,1000,2000", help="sequence lengths (default 100,500,1000,2000)")
    for name, kind in (("batch_size", int), ("hidden_size", int), ("lr", float), ("max_steps", int),
                       ("cap_seconds", float), ("eval_every", int), ("steps_per_epoch", int), ("seed", int),
                       ("val_size", int), ("test_size", int)):
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None)
    p.add_argument("--out", default="runs/bench/longrange",
                   help="output directory; rows already there (other layers, tasks) join the report")


def run_longrange_command(args) -> int:
    from ..checkpoint import atomic_write_bytes
    from .common import markdown_table, show

    kw = {k: getattr(args, k) for k in ("batch_size", "hidden_size", "lr", "max_steps", "cap_seconds", "eval_every",
                                        "steps_per_epoch", "seed", "val_size", "test_size") if getattr(args, k) is not None}
    cfg = LongRangeConfig(task=args.task, layers=[s.strip() for s in args.layers.split(",") if s.strip()],
                          T=[int(v) for v in args.T.split(",") if v.strip()], **kw)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for layer in cfg.layers:
        path = out / f"rows-{cfg.task}-{layer}.json"
        old = json.loads(path.read_text())["rows"] if path.exists() else []
        new = [run_one(cfg, layer, T) for T in cfg.T]
        keep = [r for r in old if r["T"] not in cfg.T]
        atomic_write_bytes(path, json.dumps({"config": config_dict(cfg), "rows": sorted(keep + new, key=lambda r: r["T"])},
                                            indent=1).encode())
    rows = load_rows(out)
    fits = exponents(rows)
    cols = ["task", "layer", "T", "solved", "metric", "steps", "stopped_by", "time_to_solve_s", "step_ms", "epoch_s",
            "saved_mb"]
    for r in rows:
        r["metric"] = (f"MSE {r['test']['mse']:.4f}" if r["task"] == "adding"
                       else f"acc {r['test']['accuracy']:.3f}")
    sections = ["# lstmkit bench longrange\n",
                f"Criteria: adding: {baselines('adding')}; copy: {baselines('copy')}. Epoch = "
                f"{cfg.steps_per_epoch} steps of B = {cfg.batch_size}; time per epoch = median step time x steps. "
                f"Caps: {cfg.max_steps} steps or {cfg.cap_seconds:.0f} s of training per (layer, T).\n",
                markdown_table(sorted(rows, key=lambda r: (r["task"], r["layer"], r["T"])), cols) + "\n"]
    if fits:
        sections.append("## Time per epoch ∝ T^k\n\n" + markdown_table(fits, ["task", "layer", "exponent", "stderr",
                                                                               "range"]) + "\n")
    atomic_write_bytes(out / "report.md", ("\n".join(sections) + "\n![time per epoch](longrange.png)\n").encode())
    _plot(rows, fits, out / "longrange.png")
    show("\n".join(sections))
    return 0


def _plot(rows: list[dict], fits: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    fit_of = {(f["task"], f["layer"]): f for f in fits}
    for ax, task in zip(axes[0], tasks):
        for layer in dict.fromkeys(r["layer"] for r in rows if r["task"] == task):
            pts = sorted((r for r in rows if r["task"] == task and r["layer"] == layer), key=lambda r: r["T"])
            f = fit_of.get((task, layer))
            label = layer + (f" (k={f['exponent']:.2f})" if f else "")
            line, = ax.plot([r["T"] for r in pts], [r["epoch_s"] for r in pts], "o-", label=label, ms=4)
            solved = [r for r in pts if r["solved"]]
            ax.plot([r["T"] for r in solved], [r["epoch_s"] for r in solved], "*", ms=11, color=line.get_color())
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("T (sequence length)")
        ax.set_ylabel("seconds per training epoch")
        ax.set_title(f"{task}: time per epoch (star: solved)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
