"""The speed targets of the modern recurrent layers (issue 21), measured in one process, 1 thread.

1. Training step (forward + backward of output.sum()) at (T, B, D, H) = (2000, 32, 2, 128):
   nn.LSTM against MinLSTM (scan form on the compiled kernel and on its PyTorch fallback, and the
   log-space parallel form) and MLSTM chunkwise: its default path here (the input is narrower
   than a head, so the form in input coordinates on the compiled recurrence), that form's PyTorch
   fallback (chunks of 16 and 64), and the head-space chunkwise form the layer used before
   (chunks of 16, 32, 64; forced by turning the input-coordinates form off).
2. Training step at (100, 32, 8, 128): nn.LSTM against SLSTM.
3. Streaming at batch 1 (D = 32, H = 128): µs per step of LSTMStream (C kernel and torch backends)
   beside RecurrentStream over SLSTM / MLSTM / MinLSTM, and the largest difference over 200 steps
   (float32) between the streamed outputs and the batch path in its recurrent form (the stream's
   own arithmetic), the layer's default batch form (MLSTM chunkwise, MinLSTM scan) and float64.

Median of ``--repeats`` after ``--warmup``; ratios are against nn.LSTM in the same process. Training
rows give the wall clock and the process (CPU) time of the one thread; on a shared machine the
latter is the fair one.

    flock /tmp/lstmkit-heavy.lock env OMP_NUM_THREADS=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184 \\
        python benchmarks/modern_targets.py --out runs/bench/modern_targets.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from lstmkit.bench.common import machine_info
from lstmkit.nn import LSTMStream, MLSTM, MinLSTM, RecurrentStream, SLSTM
from lstmkit.nn import mlstm as mlstm_module
from lstmkit.nn._mlstm_kernel import mlstm_backend
from lstmkit.nn._scan_kernel import scan_backend


class OnBackend(torch.nn.Module):
    """A layer run inside ``switch(backend)``: MinLSTM's scan (``scan_backend``, "compiled" or
    "torch") or MLSTM's input-coordinates form (``mlstm_backend``)."""

    def __init__(self, layer, backend, switch=scan_backend):
        super().__init__()
        self.layer, self.backend, self.switch = layer, backend, switch

    def forward(self, x):
        with self.switch(self.backend):
            return self.layer(x)


@contextlib.contextmanager
def head_space(_):
    """MLSTM's chunkwise form in head space (q, k, v of width d), as before the input-coordinates
    form: that form turned off."""
    with mock.patch.object(mlstm_module, "narrow_pays", lambda p, d: False):
        yield


def train_step_times(module, x, warmup, repeats):
    """Median wall-clock and median CPU (process) seconds of one training step. The process time
    leaves out the time this single thread waits for a core, so on a shared machine it stays fair
    where the wall clock does not (every row here is one thread: OMP_NUM_THREADS=1)."""
    def step():
        x.grad = None
        module(x)[0].sum().backward()

    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu))


def train_rows(T, B, D, H, layers, warmup, repeats):
    torch.manual_seed(0)
    x = torch.randn(T, B, D, requires_grad=True)
    rows, ref = [], None
    for name, module in layers:
        s, c = train_step_times(module, x, warmup, repeats)
        ref = (s, c) if ref is None else ref
        rows.append({"shape": f"({T}, {B}, {D}, {H})", "layer": name, "train_ms": round(1e3 * s, 2),
                     "ratio_to_nn.LSTM": round(s / ref[0], 3), "speedup_vs_nn.LSTM": round(ref[0] / s, 2),
                     "train_cpu_ms": round(1e3 * c, 2), "cpu_speedup_vs_nn.LSTM": round(ref[1] / c, 2)})
        print(rows[-1], flush=True)
    return rows


def stream_rows(D, H, steps, warmup):
    torch.manual_seed(0)
    x = torch.randn(steps, 1, D)
    rows = []
    lstm = torch.nn.LSTM(D, H)
    candidates = [("LSTMStream (c)", lambda: LSTMStream(lstm, 1, backend="c"), None),
                  ("LSTMStream (torch)", lambda: LSTMStream(lstm, 1, backend="torch"), None)]
    for name, cls, kw in (("SLSTM", SLSTM, {"num_heads": 4}), ("MLSTM", MLSTM, {"num_heads": 4}),
                          ("MinLSTM", MinLSTM, {})):
        layer = cls(D, H, **kw).eval()
        candidates.append((f"RecurrentStream ({name})", (lambda m: lambda: RecurrentStream(m, 1))(layer), layer))
    for name, make, layer in candidates:
        try:
            stream = make()
        except Exception as e:  # the C kernel may be unavailable
            rows.append({"stream": name, "error": str(e)})
            continue
        xs = x.numpy()[:, 0].copy()
        for t in range(warmup):
            stream.step(xs[t % steps])
        stream.reset()
        times = []
        outs = []
        for t in range(steps):
            t0 = time.perf_counter()
            outs.append(stream.step(xs[t]))
            times.append(time.perf_counter() - t0)
        row = {"stream": name, "us_per_step": round(1e6 * float(np.median(times)), 2)}
        streamed = np.stack(outs)
        with torch.no_grad():
            ref = (layer(x)[0] if layer is not None else lstm(x)[0])[:, 0].numpy()
            if layer is not None and "recurrent" in getattr(layer, "MODES", ()):
                rec = copy.deepcopy(layer)
                rec.mode = "recurrent"
                row["max_abs_diff_vs_recurrent_batch"] = float(np.abs(streamed - rec(x)[0][:, 0].numpy()).max())
            truth = copy.deepcopy(layer if layer is not None else lstm).double()(x.double())[0][:, 0].numpy()
        row["max_abs_diff_vs_batch"] = float(np.abs(streamed - ref).max())  # the default batch form
        row["stream_vs_float64"] = float(np.abs(streamed - truth).max())
        row["batch_vs_float64"] = float(np.abs(ref - truth).max())
        row["max_abs_float64_output"] = float(np.abs(truth).max())
        m64 = copy.deepcopy(layer if layer is not None else lstm).double()  # the same check in float64
        s64 = RecurrentStream(m64, 1) if layer is not None else LSTMStream(m64, 1, backend=stream.backend)
        x64 = x.double()
        with torch.no_grad():
            ref64 = m64(x64)[0][:, 0].numpy()
        row["max_abs_diff_float64"] = float(np.abs(s64.run(x64.numpy()[:, 0]) - ref64).max())
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="runs/bench/modern_targets.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    T, B, D, H = 2000, 32, 2, 128
    minlstm = MinLSTM(D, H, mode="scan")
    long = train_rows(T, B, D, H, [("nn.LSTM", torch.nn.LSTM(D, H)),
                                   ("MinLSTM scan (compiled)", OnBackend(minlstm, "compiled")),
                                   ("MinLSTM scan (torch fallback)", OnBackend(minlstm, "torch")),
                                   ("MinLSTM parallel (log-space)", MinLSTM(D, H, mode="parallel")),
                                   ("MLSTM chunkwise (default: input coordinates, compiled)",
                                    OnBackend(MLSTM(D, H, num_heads=4), "auto", mlstm_backend)),
                                   ("MLSTM chunkwise 16, input coordinates, PyTorch fallback",
                                    OnBackend(MLSTM(D, H, num_heads=4, chunk_size=16), "torch", mlstm_backend)),
                                   ("MLSTM chunkwise 64, input coordinates, PyTorch fallback",
                                    OnBackend(MLSTM(D, H, num_heads=4, chunk_size=64), "torch", mlstm_backend)),
                                   *[(f"MLSTM chunkwise {c}, head space (before)",
                                      OnBackend(MLSTM(D, H, num_heads=4, chunk_size=c), None, head_space))
                                     for c in (64, 32, 16)]],
                      args.warmup, args.repeats)
    short = train_rows(100, 32, 8, 128, [("nn.LSTM", torch.nn.LSTM(8, 128)),
                                         ("SLSTM (4 heads)", SLSTM(8, 128, num_heads=4)),
                                         ("MLSTM chunkwise (default: input coordinates, compiled)",
                                          OnBackend(MLSTM(8, 128, num_heads=4), "auto", mlstm_backend)),
                                         ("MLSTM chunkwise 64, head space (before)",
                                          OnBackend(MLSTM(8, 128, num_heads=4), None, head_space)),
                                         ("MinLSTM scan (compiled)", OnBackend(MinLSTM(8, 128, mode="scan"), "compiled"))],
                       args.warmup + 1, args.repeats + 2)
    streams = stream_rows(32, 128, steps=200, warmup=50)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine_info(), "train": long + short, "stream": streams}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
