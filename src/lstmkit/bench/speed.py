"""``lstmkit bench speed``: per-layer training and inference time, achieved GFLOP/s and the
fraction of this machine's matrix-multiply peak, over a (T, B, D, H) grid.

Rows (all timed in one process, ratio = row time / ``nn.LSTM`` time at the same shape and mode):
``nn.LSTM`` and lstmkit's fast path (one direction and bidirectional), ``nn.LSTM`` on packed
sequences against lstmkit's ``lengths=`` path (lengths spread evenly over [T/5, T], or four
length buckets as a length-grouping sampler yields), lstmkit on its recurrence path, each
variant (training mode) and all at once, ``nn.GRU``, ``nn.RNN`` (tanh) and a naive Python loop
over ``nn.LSTMCell``.

On CUDA every clock read follows ``torch.cuda.synchronize`` and each row also reports ``peak_mib``,
``torch.cuda.max_memory_allocated`` over its warm-up and timed calls.

FLOPs are the matrix products only (2 per multiply-add): forward 2·G·H·(D + H) per sequence step
and layer, with G = 4 gates for the LSTM, 3 for the GRU and 1 for the RNN; training counts
3× the forward (the backward pass does two products per forward product). The lengths rows count
only the valid steps. Element-wise gate arithmetic is not counted, so GFLOP/s is a floor.

The peak is measured here, not taken from a data sheet: the fastest of torch's GEMM entry points
on a square matrix product (on CPU oneDNN's ``mkldnn_linear`` beats ``torch.mm``, which takes an
MKL path that is slower on AMD CPUs and would overstate the fraction).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..nn import LSTM
from .common import median_seconds
from .flops import rnn_flops

__all__ = ["SpeedConfig", "Row", "ROWS", "GATES", "build_rows", "measure_gemm_peak", "run_speed", "forward_flops",
           "spread_lengths", "length_buckets"]

log = logging.getLogger(__name__)

VARIANTS = {
    "peephole": dict(peephole=True),
    "layer_norm": dict(layer_norm=True),
    "forget_bias": dict(forget_bias=1.0),
    "recurrent_dropout": dict(recurrent_dropout=0.25),
    "input_dropout": dict(input_dropout=0.25),
    "zoneout": dict(zoneout=0.1),
    "all_variants": dict(peephole=True, layer_norm=True, recurrent_dropout=0.25, zoneout=0.1),
}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
ROWS = ["nn.LSTM", "lstmkit fast path", "nn.LSTM bidirectional", "lstmkit bidirectional", "nn.LSTM packed (lengths)",
        "lstmkit lengths", "nn.LSTM bidirectional packed (lengths)", "lstmkit bidirectional lengths",
        "nn.LSTM packed (4 length buckets)", "lstmkit lengths (4 length buckets)", "lstmkit recurrence path",
        *(f"variant {v}" for v in VARIANTS), "nn.GRU", "nn.RNN", "naive nn.LSTMCell loop"]
# CUDA only: the variants' recurrence without its CUDA graphs (lstmkit.nn.cuda_graphs), to show what they save
CUDA_ROWS = ["variant all_variants, eager (no CUDA graphs)"]
DEFAULT_SHAPES = [(28, 64, 28, 128), (100, 32, 8, 128), (500, 16, 1, 64)]


@dataclass
class SpeedConfig:
    """shapes: (T, B, D, H) tuples; rows: names from ROWS (None = all); modes: train and/or infer."""

    shapes: list[tuple[int, int, int, int]] = field(default_factory=lambda: list(DEFAULT_SHAPES))
    rows: list[str] | None = None
    modes: tuple[str, ...] = ("train", "infer")
    warmup: int = 3
    repeats: int = 7
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.shapes = [tuple(s) for s in self.shapes]
        if not self.shapes or any(len(s) != 4 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in s)
                                  for s in self.shapes):
            raise ValueError(f"shapes must be a non-empty list of (T, B, D, H) positive ints, got {self.shapes!r}")
        if self.rows is not None:
            unknown = [r for r in self.rows if r not in ROWS + CUDA_ROWS]
            if unknown or not self.rows:
                raise ValueError(f"rows {unknown or self.rows!r} unknown; valid rows: {ROWS} (on CUDA also {CUDA_ROWS})")
        if not self.modes or any(m not in ("train", "infer") for m in self.modes):
            raise ValueError(f"modes must be a non-empty subset of ('train', 'infer'), got {self.modes!r}")
        if self.warmup < 0 or self.repeats < 1:
            raise ValueError(f"warmup must be >= 0 and repeats >= 1, got {self.warmup}, {self.repeats}")
        check_device(self.device)


def check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch sees no CUDA device (torch {torch.__version__})")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    return dev


def spread_lengths(T: int, B: int) -> Tensor:
    """Lengths spread evenly over [T/5, T] (every sequence a distinct length when B <= 4T/5)."""
    return torch.linspace(T, max(1, T // 5), B).round().long()


def forward_flops(kind: str, B: int, T: int, D: int, H: int, layers: int = 1, directions: int = 1,
                  steps: int | None = None) -> int:
    """Matrix-product FLOPs of one forward pass; ``steps`` = valid sequence steps summed over the
    batch (default B·T)."""
    return rnn_flops(GATES[kind], D, H, B * T if steps is None else steps, layers, directions)


def _sync(dev: torch.device) -> Callable[[], None] | None:
    return torch.cuda.synchronize if dev.type == "cuda" else None


def measure_gemm_peak(device: str = "cpu", n: int = 1024, warmup: int = 2, repeats: int = 7) -> dict:
    """GFLOP/s of square n×n×n float32 products through each GEMM entry point torch has here;
    ``peak`` is the fastest. On CUDA TF32 is off, so this is the float32 peak."""
    dev = check_device(device)
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    flops = 2 * n**3
    candidates: dict[str, Callable[[], object]] = {"torch.mm": lambda: torch.mm(a, b),
                                                     "F.linear": lambda: nn.functional.linear(a, b)}
    if dev.type == "cpu" and torch.backends.mkldnn.is_available():
        am, bm = a.to_mkldnn(), b.to_mkldnn()
        candidates["oneDNN mkldnn_linear"] = lambda: torch._C._nn.mkldnn_linear(am, bm)
    result = {}
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for name, fn in candidates.items():
            try:
                result[name] = flops / median_seconds(fn, warmup, repeats, _sync(dev)) / 1e9
            except RuntimeError as e:  # an entry point this build lacks: skip it, say so
                log.info("GEMM candidate %s unavailable: %s", name, e)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    best = max(result, key=result.get)
    return {"n": n, "gflops": {k: round(v, 2) for k, v in result.items()}, "peak_gflops": round(result[best], 2),
            "peak_source": best, "threads": torch.get_num_threads()}


def naive_cell_loop(cell: nn.LSTMCell) -> Callable[[Tensor], Tensor]:
    """The seed articles' style: a Python loop over nn.LSTMCell."""

    def call(x: Tensor) -> Tensor:
        h = x.new_zeros(x.shape[1], cell.hidden_size)
        c = torch.zeros_like(h)
        outs = []
        for t in range(x.shape[0]):
            h, c = cell(x[t], (h, c))
            outs.append(h)
        return torch.stack(outs)

    return call


@dataclass
class Row:
    """One contender: the FLOP kind, ``call(x (T, B, D)) -> output``, the lengths it runs with
    (None: full length) and its number of directions."""

    kind: str
    call: Callable[[Tensor], Tensor]
    lengths: Tensor | None = None
    directions: int = 1


def length_buckets(T: int, B: int) -> Tensor:
    """Four distinct lengths T, 0.9T, 0.8T, 0.7T: what a length-grouping sampler yields."""
    four = torch.tensor([T, T - T // 10, T - 2 * (T // 10), T - 3 * (T // 10)]).repeat_interleave(max(1, B // 4))
    return torch.cat([four, four[-1:].expand(max(0, B - len(four)))])[:B]


def build_rows(D: int, H: int, B: int, T: int, names: list[str], device: torch.device, layers: int = 1
               ) -> dict[str, Row]:
    """The requested rows; every LSTM row starts from the same nn.LSTM weights."""
    torch.manual_seed(0)
    spread, buckets = spread_lengths(T, B).to(device), length_buckets(T, B).to(device)
    ref = nn.LSTM(D, H, layers).to(device)
    ref_bi = nn.LSTM(D, H, layers, bidirectional=True).to(device)

    def ours(reference: nn.LSTM = ref, **kw) -> LSTM:
        m = LSTM(D, H, layers, bidirectional=reference.bidirectional, **kw).to(device)
        m.load_state_dict(reference.state_dict(), strict=False)
        return m

    def out(m: nn.Module, **kw) -> Callable[[Tensor], Tensor]:
        return lambda x: m(x, **kw)[0]

    def packed(m: nn.Module, lengths: Tensor) -> Callable[[Tensor], Tensor]:
        def call(x: Tensor) -> Tensor:
            p = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
            return pad_packed_sequence(m(p)[0], total_length=x.shape[0])[0]
        return call

    builders: dict[str, Callable[[], Row]] = {
        "nn.LSTM": lambda: Row("lstm", out(ref)),
        "lstmkit fast path": lambda: Row("lstm", out(ours())),
        "nn.LSTM packed (lengths)": lambda: Row("lstm", packed(ref, spread), spread),
        "lstmkit lengths": lambda: Row("lstm", out(ours(), lengths=spread), spread),
        "nn.LSTM packed (4 length buckets)": lambda: Row("lstm", packed(ref, buckets), buckets),
        "lstmkit lengths (4 length buckets)": lambda: Row("lstm", out(ours(), lengths=buckets), buckets),
        "nn.LSTM bidirectional": lambda: Row("lstm", out(ref_bi), None, 2),
        "lstmkit bidirectional": lambda: Row("lstm", out(ours(ref_bi)), None, 2),
        "nn.LSTM bidirectional packed (lengths)": lambda: Row("lstm", packed(ref_bi, spread), spread, 2),
        "lstmkit bidirectional lengths": lambda: Row("lstm", out(ours(ref_bi), lengths=spread), spread, 2),
        "lstmkit recurrence path": lambda: Row("lstm", out(ours(implementation="loop"))),
        "nn.GRU": lambda: Row("gru", out(nn.GRU(D, H, layers).to(device))),
        "nn.RNN": lambda: Row("rnn", out(nn.RNN(D, H, layers).to(device))),
    }
    for v, kw in VARIANTS.items():
        # training mode: dropout/zoneout masks are drawn, as in a training step
        builders[f"variant {v}"] = (lambda kw: lambda: Row("lstm", out(ours(**kw).train())))(kw)
    if device.type == "cuda":
        builders[CUDA_ROWS[0]] = lambda: Row("lstm", _eager(out(ours(**VARIANTS["all_variants"]).train())))
    if layers == 1:
        builders["naive nn.LSTMCell loop"] = lambda: Row("lstm", _cell_loop_like(ref, device))
    return {name: builders[name]() for name in names if name in builders}


def _eager(call: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``call`` with the CUDA graphs of the variants' recurrence turned off (LSTMKIT_CUDA_GRAPHS=0)."""
    import os

    def run(x: Tensor) -> Tensor:
        before = os.environ.get("LSTMKIT_CUDA_GRAPHS")
        os.environ["LSTMKIT_CUDA_GRAPHS"] = "0"
        try:
            return call(x)
        finally:
            if before is None:
                del os.environ["LSTMKIT_CUDA_GRAPHS"]
            else:
                os.environ["LSTMKIT_CUDA_GRAPHS"] = before
    return run


def _cell_loop_like(ref: nn.LSTM, device: torch.device) -> Callable[[Tensor], Tensor]:
    cell = nn.LSTMCell(ref.input_size, ref.hidden_size).to(device)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(ref, f"{name}_l0"))
    return naive_cell_loop(cell)


def time_call(call: Callable[[Tensor], Tensor], x: Tensor, train: bool, warmup: int, repeats: int,
              dev: torch.device) -> float:
    """Median seconds of one training step (forward + backward of output.sum()) or one forward
    under no_grad."""

    def train_step() -> None:
        x.grad = None
        call(x).sum().backward()

    def infer() -> None:
        with torch.no_grad():
            call(x)

    return median_seconds(train_step if train else infer, warmup, repeats, _sync(dev))


def _sig(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def run_speed(cfg: SpeedConfig, peak: dict | None = None) -> tuple[list[dict], dict]:
    """(rows, peak): one row per (shape, mode, row name) with ms, ratio to nn.LSTM, GFLOP/s and
    the fraction of the measured GEMM peak."""
    dev = check_device(cfg.device)
    peak = peak or measure_gemm_peak(cfg.device)
    names = list(cfg.rows or (ROWS + CUDA_ROWS if dev.type == "cuda" else ROWS))
    if "nn.LSTM" not in names:
        names.insert(0, "nn.LSTM")  # the reference every ratio needs
    results = []
    for T, B, D, H in cfg.shapes:
        rows = build_rows(D, H, B, T, names, dev)
        torch.manual_seed(1)
        x = torch.randn(T, B, D, device=dev, requires_grad=True)
        for mode in cfg.modes:
            base = None
            for name, row in rows.items():
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                    torch.cuda.reset_peak_memory_stats(dev)
                seconds = time_call(row.call, x, mode == "train", cfg.warmup, cfg.repeats, dev)
                base = seconds if name == "nn.LSTM" else base
                lengths = row.lengths
                steps = B * T if lengths is None else int(lengths.sum())
                flops = forward_flops(row.kind, B, T, D, H, directions=row.directions, steps=steps) * (
                    3 if mode == "train" else 1)
                gflops = flops / seconds / 1e9
                results.append({"T": T, "B": B, "D": D, "H": H, "mode": mode, "row": name,
                                "ms": round(1e3 * seconds, 4), "ratio_vs_nn_lstm": round(seconds / base, 3),
                                "gflops": _sig(gflops), "peak_fraction": _sig(gflops / peak["peak_gflops"]),
                                "lengths": None if lengths is None else
                                f"{int(lengths.min())}..{int(lengths.max())} ({len(lengths.unique())} distinct)"})
                if dev.type == "cuda":  # everything allocated while this row ran (models and input included)
                    results[-1]["peak_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
                log.info("T=%d B=%d D=%d H=%d %s %-28s %9.3f ms x%.2f %6.1f GFLOP/s", T, B, D, H, mode, name,
                         1e3 * seconds, seconds / base, gflops)
    return results, peak
