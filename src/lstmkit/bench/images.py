"""``lstmkit bench images``: the time complexity of recurrent image layers -- time per image
against image size, with fitted exponents, beside a 3x3 convolution of the same width.

Every layer maps (B, C, S, S) to (B, N, S, S)-sized features (ReNet with patch p to S/p). Per
image with P = S*S pixels, all of them cost O(P) arithmetic; what differs is how much of it is
sequential: a convolution has no sequential steps, a ReNet sweep S steps per direction and axis
(each a batch of S sequences), a Row LSTM S steps (one per row), a Diagonal BiLSTM 2S - 1 steps
(one per diagonal), a ConvLSTM one step per frame. On a CPU the small per-step matrices keep the
recurrent layers far from the GEMM peak, so their time grows more slowly than P at small sizes
and approaches it as rows get long. The fitted exponent is d log(time) / d log(P).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from .common import check_positive_ints, median_seconds, power_law_fit
from .speed import _sig, _sync, check_device

__all__ = ["ImagesConfig", "LAYERS", "run_images", "image_exponents"]

log = logging.getLogger(__name__)


class _Conv(nn.Module):
    """The reference: one 3x3 convolution, C -> N channels."""

    def __init__(self, c: int, n: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, n, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def _renet(patch: int) -> Callable[[int, int], nn.Module]:
    def build(c: int, n: int) -> nn.Module:
        from ..nn import ReNetLayer

        return ReNetLayer(c, n // 2, patch=patch)

    return build


def _row_lstm(c: int, n: int) -> nn.Module:
    from ..nn.pixelrnn import RowLSTM

    return RowLSTM(c, n)


def _diagonal(c: int, n: int) -> nn.Module:
    from ..nn.pixelrnn import DiagonalBiLSTM

    return DiagonalBiLSTM(c, n)


class _ConvLSTMFrame(nn.Module):
    """One ConvLSTM step over a single frame (T = 1), 3x3 kernels."""

    def __init__(self, c: int, n: int) -> None:
        super().__init__()
        from ..nn.convlstm import ConvLSTM

        self.rnn = ConvLSTM(c, n, kernel_size=3)

    def forward(self, x: Tensor) -> Tensor:
        return self.rnn(x.unsqueeze(1))[0]


LAYERS: dict[str, tuple[Callable[[int, int], nn.Module], str]] = {
    "conv3x3": (_Conv, "0"),
    "renet-p1": (_renet(1), "2S"),
    "renet-p2": (_renet(2), "S"),
    "row-lstm": (_row_lstm, "S"),
    "diagonal-bilstm": (_diagonal, "2S-1"),
    "convlstm-step": (_ConvLSTMFrame, "1"),
}


@dataclass
class ImagesConfig:
    """Image sizes ``S`` (square), batch ``B``, input channels ``C``, feature width ``N``."""

    sizes: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    layers: list[str] = field(default_factory=lambda: list(LAYERS))
    B: int = 8
    C: int = 16
    N: int = 32
    modes: tuple[str, ...] = ("train", "infer")
    warmup: int = 2
    repeats: int = 5
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.sizes = check_positive_ints("sizes", self.sizes)
        if any(s % 2 for s in self.sizes):
            raise ValueError(f"sizes must be even (ReNet with patch 2), got {self.sizes}")
        check_positive_ints("B, C, N", [self.B, self.C, self.N])
        if self.N % 2:
            raise ValueError(f"N must be even (ReNet's two directions share it), got {self.N}")
        unknown = [name for name in self.layers if name not in LAYERS]
        if unknown or not self.layers:
            raise ValueError(f"layers must be a non-empty subset of {list(LAYERS)}, got {self.layers!r}")
        if not self.modes or any(m not in ("train", "infer") for m in self.modes):
            raise ValueError(f"modes must be a non-empty subset of ('train', 'infer'), got {self.modes!r}")
        if self.warmup < 0 or self.repeats < 1:
            raise ValueError(f"warmup must be >= 0 and repeats >= 1, got {self.warmup}, {self.repeats}")
        check_device(self.device)


def run_images(cfg: ImagesConfig) -> list[dict]:
    """One row per (layer, size, mode): ms per batch, ms per image, and the ratio to conv3x3."""
    dev = check_device(cfg.device)
    rows = []
    for name in cfg.layers:
        build, steps = LAYERS[name]
        torch.manual_seed(0)
        layer = build(cfg.C, cfg.N).to(dev)
        params = sum(p.numel() for p in layer.parameters())
        for S in cfg.sizes:
            x = torch.randn(cfg.B, cfg.C, S, S, device=dev, requires_grad=True)
            for mode in cfg.modes:
                seconds = _time(layer, x, mode == "train", cfg, dev)
                rows.append({"layer": name, "S": S, "pixels": S * S, "mode": mode, "B": cfg.B, "C": cfg.C,
                             "N": cfg.N, "params": params, "sequential_steps": steps,
                             "ms": _sig(1e3 * seconds), "ms_per_image": _sig(1e3 * seconds / cfg.B)})
                log.info(f"{name} S={S} {mode}: {1e3 * seconds:.3g} ms")
    ref = {(r["S"], r["mode"]): r["ms"] for r in rows if r["layer"] == "conv3x3"}
    for r in rows:
        if (r["S"], r["mode"]) in ref:
            r["ratio_vs_conv"] = _sig(r["ms"] / ref[(r["S"], r["mode"])], 3)
    return rows


def _time(layer: nn.Module, x: Tensor, train: bool, cfg: ImagesConfig, dev: torch.device) -> float:
    def train_step() -> None:
        x.grad = None
        layer(x).sum().backward()

    def infer() -> None:
        with torch.no_grad():
            layer(x)

    layer.train(train)
    return median_seconds(train_step if train else infer, cfg.warmup, cfg.repeats, _sync(dev))


def image_exponents(rows: list[dict]) -> list[dict]:
    """Per (layer, mode): the power-law exponent of time against pixels (needs >= 3 sizes)."""
    out = []
    for key in dict.fromkeys((r["layer"], r["mode"]) for r in rows):
        part = [r for r in rows if (r["layer"], r["mode"]) == key]
        if len({r["pixels"] for r in part}) < 3:
            continue
        fit = power_law_fit([r["pixels"] for r in part], [r["ms"] for r in part])
        out.append({"layer": key[0], "mode": key[1], "exponent": round(fit["exponent"], 3),
                    "stderr": round(fit["stderr"], 3), "ci95": [round(v, 3) for v in fit["ci95"]],
                    "r2": round(fit["r2"], 4)})
    return out


# ----------------------------------------------------------------------------------- command


def add_images_arguments(p) -> None:
    p.add_argument("--sizes", default="8,16,32,64", help="square image sizes S (default 8,16,32,64)")
    p.add_argument("--layers", default=",".join(LAYERS), help=f"comma-separated (default all): {', '.join(LAYERS)}")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--channels", type=int, default=16, help="input channels C (default 16)")
    p.add_argument("--width", type=int, default=32, help="feature width N (default 32)")
    p.add_argument("--modes", default="train,infer")
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="runs/bench/images")


def run_images_command(args) -> int:
    from pathlib import Path

    from .common import machine_info, markdown_table, show, write_outputs

    try:
        sizes = [int(v) for v in args.sizes.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--sizes takes comma-separated ints, got {args.sizes!r}") from None
    cfg = ImagesConfig(sizes=sizes, layers=[v.strip() for v in args.layers.split(",") if v.strip()], B=args.batch,
                       C=args.channels, N=args.width, modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()),
                       warmup=args.warmup, repeats=args.repeats, device=args.device)
    rows = run_images(cfg)
    exps = image_exponents(rows)
    m = machine_info(cfg.device)
    sections = [f"# lstmkit bench images\n\nTime per image against image size S (S x S pixels): batch {cfg.B}, "
                f"C = {cfg.C} input channels, N = {cfg.N} features; median of {cfg.repeats} after {cfg.warmup} "
                f"warm-up; {m['cpu']}, {m['threads']} thread(s), torch {m['torch']}, device {m['device']}.\n"]
    for mode in cfg.modes:
        table = []
        for name in cfg.layers:
            line = {"layer": name, "sequential steps": LAYERS[name][1]}
            for r in rows:
                if r["layer"] == name and r["mode"] == mode:
                    line[f"S={r['S']}"] = f"{r['ms_per_image']:.3g} ms ({r.get('ratio_vs_conv', '')}×)"
            table.append(line)
        sections.append(f"## {mode}: ms per image (ratio to conv3x3)\n\n" +
                        markdown_table(table, ["layer", "sequential steps"] + [f"S={s}" for s in cfg.sizes]) + "\n")
    if exps:
        sections.append("## Exponent of time against pixels (P = S²)\n\n" +
                        markdown_table(exps, ["layer", "mode", "exponent", "stderr", "ci95", "r2"]) + "\n")
    out = Path(args.out)
    columns = ["layer", "mode", "S", "pixels", "ms", "ms_per_image", "ratio_vs_conv", "params", "sequential_steps"]
    paths = write_outputs(out, "images", rows, columns, {"config": vars(cfg), "machine": m, "exponents": exps},
                          "\n".join(sections) + "\n![time per image](images.png)\n")
    _plot(rows, cfg, out / "images.png")
    show("\n".join(sections))
    log.info(f"wrote {paths['json']}, {paths['csv']}, {paths['report']}, {out / 'images.png'}")
    return 0


def _plot(rows: list[dict], cfg: ImagesConfig, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cfg.modes), figsize=(5.5 * len(cfg.modes), 4), squeeze=False)
    for ax, mode in zip(axes[0], cfg.modes):
        for name in cfg.layers:
            part = [r for r in rows if r["layer"] == name and r["mode"] == mode]
            ax.loglog([r["pixels"] for r in part], [r["ms_per_image"] for r in part], "o-", label=name)
        ax.set_xlabel("pixels per image (S²)")
        ax.set_ylabel("ms per image")
        ax.set_title(mode)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
