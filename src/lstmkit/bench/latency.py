"""``lstmkit bench latency``: per-step latency of a stateful LSTM at batch 1, the cost that
decides streaming use (one observation arrives, one output is due).

Contenders, all in one process on the same weights: ``nn.LSTM`` called once per step with its
state, ``nn.LSTMCell``, onnxruntime running an ONNX export of a one-step LSTM with state inputs
and outputs, and lstmkit's :class:`lstmkit.nn.LSTMStream` (each available backend). Each row is
the median over ``blocks`` blocks of ``steps`` consecutive steps (time per step); every
contender also streams the same sequence once and its outputs are compared with the batch path
(one ``lstmkit.nn.LSTM`` call over the whole sequence).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from ..nn import LSTM
from .common import machine_info, markdown_table, show, write_outputs

__all__ = ["LatencyConfig", "run_latency", "add_latency_arguments", "run_latency_command"]

log = logging.getLogger(__name__)


@dataclass
class LatencyConfig:
    input_size: int = 8
    hidden_size: int = 128
    num_layers: int = 1
    steps: int = 200
    blocks: int = 30
    warmup: int = 500
    onnx: bool = True

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "num_layers", "steps", "blocks"):
            check_int(name, getattr(self, name))
        check_int("warmup", self.warmup, minimum=0)


def _per_step_us(step: Callable[[int], object], cfg: LatencyConfig) -> float:
    """Median over blocks of (block time / steps), in µs; ``step(t)`` feeds observation t."""
    n = cfg.steps
    for t in range(cfg.warmup):
        step(t % n)
    blocks = []
    for _ in range(cfg.blocks):
        t0 = time.perf_counter()
        for t in range(n):
            step(t)
        blocks.append((time.perf_counter() - t0) / n)
    return 1e6 * statistics.median(blocks)


def _torch_lstm_stepper(ref: nn.LSTM, xs: torch.Tensor):
    L, H = ref.num_layers, ref.hidden_size
    state = [torch.zeros(L, 1, H), torch.zeros(L, 1, H)]

    @torch.no_grad()
    def step(t: int):
        out, (state[0], state[1]) = ref(xs[t].view(1, 1, -1), (state[0], state[1]))
        return out

    return step, lambda: state.__setitem__(slice(None), [torch.zeros(L, 1, H), torch.zeros(L, 1, H)])


def _cell_stepper(ref: nn.LSTM, xs: torch.Tensor):
    cells = []
    for layer in range(ref.num_layers):
        cell = nn.LSTMCell(ref.input_size if layer == 0 else ref.hidden_size, ref.hidden_size)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(ref, f"{name}_l{layer}"))
        cells.append(cell)
    zero = lambda: [(torch.zeros(1, ref.hidden_size), torch.zeros(1, ref.hidden_size)) for _ in cells]  # noqa: E731
    state = zero()

    @torch.no_grad()
    def step(t: int):
        h = xs[t].view(1, -1)
        for i, cell in enumerate(cells):
            state[i] = cell(h, state[i])
            h = state[i][0]
        return h

    return step, lambda: state.__setitem__(slice(None), zero())


def _onnx_stepper(ref: nn.LSTM, xs: np.ndarray, directory: Path):
    """onnxruntime on a one-step nn.LSTM exported with (x, h0, c0) -> (y, h1, c1), 1 thread."""
    import onnxruntime as ort

    path = directory / "lstm_step.onnx"
    L, H = ref.num_layers, ref.hidden_size
    example = (torch.zeros(1, 1, ref.input_size), torch.zeros(L, 1, H), torch.zeros(L, 1, H))

    class Step(nn.Module):
        def __init__(self, lstm: nn.LSTM) -> None:
            super().__init__()
            self.lstm = lstm

        def forward(self, x, h0, c0):
            y, (h1, c1) = self.lstm(x, (h0, c0))
            return y, h1, c1

    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice; it is the one that emits ONNX LSTM
        warnings.simplefilter("ignore")
        torch.onnx.export(Step(ref), example, str(path), dynamo=False, input_names=["x", "h0", "c0"],
                          output_names=["y", "h1", "c1"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    zero = lambda: [np.zeros((L, 1, H), np.float32), np.zeros((L, 1, H), np.float32)]  # noqa: E731
    state = zero()
    feeds = [x.reshape(1, 1, -1) for x in xs]

    def step(t: int):
        y, state[0], state[1] = session.run(None, {"x": feeds[t], "h0": state[0], "c0": state[1]})
        return y

    return step, lambda: state.__setitem__(slice(None), zero())


def _stream_stepper(ours: LSTM, xs: np.ndarray, backend: str):
    from ..nn import LSTMStream

    stream = LSTMStream(ours, batch_size=1, backend=backend)

    def step(t: int):
        return stream.step(xs[t])

    return step, stream.reset, stream


def _max_error(step, reset, n: int, batch_out: np.ndarray) -> float:
    reset()
    outs = [np.asarray(step(t), dtype=np.float64).reshape(-1) for t in range(n)]
    reset()
    return float(np.abs(np.stack(outs) - batch_out).max())


def run_latency(cfg: LatencyConfig) -> list[dict]:
    """One row per contender: per-step µs, ratio to onnxruntime (when measured) and the max
    |difference| from the batch path over ``steps`` steps."""
    torch.manual_seed(0)
    ref = nn.LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers).eval()
    ours = LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers).eval()
    ours.load_state_dict(ref.state_dict())
    xs_t = torch.randn(cfg.steps, cfg.input_size)
    xs = xs_t.numpy()
    with torch.no_grad():
        batch_out = ours(xs_t.unsqueeze(1))[0][:, 0].double().numpy()
    contenders: dict[str, tuple] = {"nn.LSTM per step": _torch_lstm_stepper(ref, xs_t),
                                    "nn.LSTMCell": _cell_stepper(ref, xs_t)}
    tmp = tempfile.TemporaryDirectory()
    try:
        if cfg.onnx:
            try:
                contenders["onnxruntime"] = _onnx_stepper(ref, xs, Path(tmp.name))
            except ImportError as e:
                raise ImportError(f"onnxruntime row needs onnx and onnxruntime ({e}); pip install lstmkit[export], "
                                  "or pass --no-onnx") from e
        for backend in ("c", "numpy", "torch"):
            try:
                step, reset, stream = _stream_stepper(ours, xs, backend)
            except RuntimeError as e:  # KernelUnavailable: no C compiler for the compiled backend
                log.info("lstmkit stream backend %s unavailable: %s", backend, e)
                continue
            contenders[f"lstmkit LSTMStream ({backend})"] = (step, reset)
        rows = []
        for name, (step, reset) in contenders.items():
            err = _max_error(step, reset, cfg.steps, batch_out)
            us = _per_step_us(step, cfg)
            rows.append({"row": name, "us_per_step": round(us, 3), "max_abs_error_vs_batch": err})
            log.info("%-32s %8.2f µs/step  max|diff| %.2e", name, us, err)
    finally:
        tmp.cleanup()
    ort_us = next((r["us_per_step"] for r in rows if r["row"] == "onnxruntime"), None)
    for r in rows:
        r["ratio_vs_onnxruntime"] = round(r["us_per_step"] / ort_us, 3) if ort_us else None
    return rows


def add_latency_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-size", type=int, default=8)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--steps", type=int, default=200, help="steps per timed block (default 200)")
    p.add_argument("--blocks", type=int, default=30, help="timed blocks; the median is reported (default 30)")
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime row")
    p.add_argument("--out", default="runs/bench/latency")


def run_latency_command(args) -> int:
    cfg = LatencyConfig(args.input_size, args.hidden_size, args.layers, args.steps, args.blocks, args.warmup,
                        onnx=not args.no_onnx)
    rows = run_latency(cfg)
    m = machine_info()
    columns = ["row", "us_per_step", "ratio_vs_onnxruntime", "max_abs_error_vs_batch"]
    report = (f"# lstmkit bench latency\n\nBatch 1, D = {cfg.input_size}, H = {cfg.hidden_size}, "
              f"{cfg.num_layers} layer(s), float32; median over {cfg.blocks} blocks of {cfg.steps} steps after "
              f"{cfg.warmup} warm-up steps. {m['cpu']}, {m['threads']} thread(s), torch {m['torch']}.\n\n"
              + markdown_table(rows, columns) + "\n\n![latency](latency.png)\n")
    out = Path(args.out)
    paths = write_outputs(out, "latency", rows, columns, {"config": vars(cfg), "machine": m}, report)
    _plot(rows, out / "latency.png")
    show(report)
    log.info(f"wrote {paths['json']}, {paths['csv']}, {paths['report']}, {out / 'latency.png'}")
    return 0


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    ax.barh([r["row"] for r in rows], [r["us_per_step"] for r in rows], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("µs per step (batch 1, log)")
    for i, r in enumerate(rows):
        ax.text(r["us_per_step"], i, f" {r['us_per_step']:.1f}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
