"""``lstmkit bench scaling``: how an LSTM layer's time and memory grow with sequence length T,
hidden size H, depth L and batch B, with fitted power-law exponents beside the analytic model.

Each sweep varies one axis from a base shape. Per point: training-step time (forward + backward
of output.sum()), inference time (forward under no_grad) and training memory. Memory is the
bytes autograd saves for the backward pass (activations, counted once per storage through
``torch.autograd.graph.saved_tensors_hooks``) on every device, and on CUDA also the peak of the
caching allocator above the inputs. The saved bytes are what grows with T; the CPU allocator has
no peak counter that isolates one call.

Analytic model (per layer and sequence step): forward ≈ 2·4·H·(D_l + H)·B FLOPs (D_l = D for the
first layer, H above), backward about twice that; training memory ∝ L·T·B·H. The *analytic
exponent* of an axis is the power-law exponent fitted to that model's FLOPs over the same points
(e.g. between 1 and 2 for H when D is small), so measured and predicted read side by side.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from .common import check_positive_ints, power_law_fit
from .speed import GATES, _sig, build_rows, check_device, forward_flops, time_call

__all__ = ["ScalingConfig", "AXES", "MODELS", "run_scaling", "fit_exponents", "saved_bytes"]

log = logging.getLogger(__name__)

AXES = ("T", "H", "L", "B")
MODELS = {"lstm": "lstmkit fast path", "nn.LSTM": "nn.LSTM", "gru": "nn.GRU", "rnn": "nn.RNN",
          "lstm-recurrence": "lstmkit recurrence path", "slstm": "sLSTM", "mlstm": "mLSTM (chunkwise)",
          "minlstm": "minLSTM"}
# the modern layers (lstmkit.nn.modern), with the options they are timed with; the analytic FLOP
# model stays the LSTM's (linear in T, the exponent that matters for the T sweep)
MODERN = {"slstm": {"num_heads": 4}, "mlstm": {"num_heads": 4, "mode": "chunkwise", "chunk_size": 64},
          "minlstm": {}}


@dataclass
class ScalingConfig:
    """Sweeps over T, H, L (layers) and B from ``base``; ``model`` is one of MODELS."""

    T: list[int] = field(default_factory=lambda: [50, 100, 200, 500, 1000, 2000])
    H: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512, 1024])
    L: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    B: list[int] = field(default_factory=lambda: [1, 4, 16, 64])
    base: dict = field(default_factory=lambda: {"T": 100, "B": 16, "D": 32, "H": 128, "L": 1})
    axes: tuple[str, ...] = AXES
    model: str = "lstm"
    warmup: int = 2
    repeats: int = 5
    device: str = "cpu"

    def __post_init__(self) -> None:
        for axis in AXES:
            setattr(self, axis, check_positive_ints(axis, getattr(self, axis)))
        missing = {"T", "B", "D", "H", "L"} - set(self.base)
        extra = set(self.base) - {"T", "B", "D", "H", "L"}
        if missing or extra:
            raise ValueError(f"base needs exactly the keys T, B, D, H, L; missing {sorted(missing)}, "
                             f"unknown {sorted(extra)}")
        check_positive_ints("base", list(self.base.values()))
        if not self.axes or any(a not in AXES for a in self.axes):
            raise ValueError(f"axes must be a non-empty subset of {AXES}, got {self.axes!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        if self.warmup < 0 or self.repeats < 1:
            raise ValueError(f"warmup must be >= 0 and repeats >= 1, got {self.warmup}, {self.repeats}")
        check_device(self.device)

    def points(self) -> list[tuple[str, dict]]:
        """(axis, shape) for every sweep point, the base shape with one axis changed."""
        return [(axis, {**self.base, axis: v}) for axis in self.axes for v in getattr(self, axis)]


def saved_bytes(fn) -> int:
    """Bytes autograd saves for backward while ``fn()`` runs (each storage counted once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        try:
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        except (RuntimeError, NotImplementedError):  # opaque tensors (e.g. oneDNN workspaces): count by size
            seen[id(t)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def _kind(model: str) -> str:
    return {"gru": "gru", "rnn": "rnn"}.get(model, "lstm")


def run_scaling(cfg: ScalingConfig) -> list[dict]:
    """One row per sweep point: train/infer ms, saved activation bytes (and CUDA peak), analytic
    FLOPs."""
    dev = check_device(cfg.device)
    row = MODELS[cfg.model]
    kind = _kind(cfg.model)
    rows = []
    for axis, s in cfg.points():
        T, B, D, H, L = s["T"], s["B"], s["D"], s["H"], s["L"]
        call = _modern_call(cfg.model, D, H, L, dev) if cfg.model in MODERN else \
            build_rows(D, H, B, T, [row], dev, layers=L)[row].call
        torch.manual_seed(1)
        x = torch.randn(T, B, D, device=dev, requires_grad=True)
        train_s = time_call(call, x, True, cfg.warmup, cfg.repeats, dev)
        infer_s = time_call(call, x, False, cfg.warmup, cfg.repeats, dev)
        saved = saved_bytes(lambda: call(x))
        flops = forward_flops(kind, B, T, D, H, layers=L)
        r = {"axis": axis, "value": s[axis], "T": T, "B": B, "D": D, "H": H, "L": L, "model": cfg.model,
             "train_ms": round(1e3 * train_s, 4), "infer_ms": round(1e3 * infer_s, 4), "saved_bytes": saved,
             "forward_flops": flops, "train_gflops": _sig(3 * flops / train_s / 1e9),
             "infer_gflops": _sig(flops / infer_s / 1e9)}
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(dev)
            before = torch.cuda.memory_allocated(dev)
            time_call(call, x, True, 0, 1, dev)
            r["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(dev) - before
        rows.append(r)
        log.info("%s=%d train %.3f ms infer %.3f ms saved %.1f MB", axis, s[axis], r["train_ms"], r["infer_ms"],
                 saved / 2**20)
    return rows


def _modern_call(model: str, D: int, H: int, L: int, dev: torch.device):
    from ..nn import create_recurrent

    torch.manual_seed(0)
    layer = create_recurrent(model, D, H, L, **MODERN[model]).to(dev)
    return lambda x: layer(x)[0]


def analytic_flops(kind: str, row: dict) -> int:
    return forward_flops(kind, row["B"], row["T"], row["D"], row["H"], layers=row["L"])


def fit_exponents(rows: list[dict], kind: str = "lstm") -> list[dict]:
    """Per axis (with ≥ 3 distinct values) and quantity: the fitted exponent ± standard error and
    95% interval, next to the analytic exponent: for time, the exponent of the FLOP model fitted
    over the same points; for memory, 1 (activations ∝ L·T·B·H; weights not counted)."""
    if kind not in GATES:
        raise ValueError(f"kind must be one of {sorted(GATES)}, got {kind!r}")
    fits = []
    for axis in AXES:
        pts = [r for r in rows if r["axis"] == axis]
        if len({r["value"] for r in pts}) < 3:
            continue
        x = [r["value"] for r in pts]
        model = power_law_fit(x, [analytic_flops(kind, r) for r in pts])["exponent"]
        for quantity, key in (("train time", "train_ms"), ("infer time", "infer_ms"), ("saved memory", "saved_bytes"),
                              ("cuda peak memory", "cuda_peak_bytes")):
            if not all(r.get(key) for r in pts):
                continue
            f = power_law_fit(x, [r[key] for r in pts])
            predicted = model if quantity.endswith("time") else 1.0  # activations ∝ L·T·B·H
            fits.append({"axis": axis, "quantity": quantity, "exponent": round(f["exponent"], 3),
                         "stderr": round(f["stderr"], 3), "ci95": [round(v, 3) for v in f["ci95"]],
                         "r2": round(f["r2"], 4), "analytic_exponent": round(predicted, 3),
                         "range": f"{min(x)}..{max(x)}", "n": f["n"]})
    return fits
