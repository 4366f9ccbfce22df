"""Command line: ``lstmkit demo``, ``lstmkit parity``, ``lstmkit version``.

The CLI decides what the user sees; the library below it only logs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch
from torch import nn

from . import __version__
from .nn import LSTM


def parity_report(seed: int = 0) -> dict[str, float]:
    """Max |difference| between lstmkit and torch.nn.LSTM (float64) on a stacked bidirectional
    LSTM with projection: outputs, states and every gradient, on the fused and recurrence
    paths, plus padded-with-lengths against each sequence run alone."""
    torch.manual_seed(seed)
    ref = nn.LSTM(5, 16, num_layers=2, bidirectional=True, proj_size=8, dtype=torch.float64)
    x = torch.randn(12, 4, 5, dtype=torch.float64, requires_grad=True)
    report: dict[str, float] = {}
    out_r, (h_r, c_r) = ref(x)
    loss_r = out_r.pow(2).sum() + h_r.sum() + c_r.sum()
    g_r = torch.autograd.grad(loss_r, [x, *ref.parameters()])
    for impl in ("auto", "loop"):
        ours = LSTM(5, 16, num_layers=2, bidirectional=True, proj_size=8, dtype=torch.float64, implementation=impl)
        ours.load_state_dict(ref.state_dict())
        out, (h, c) = ours(x)
        g = torch.autograd.grad(out.pow(2).sum() + h.sum() + c.sum(), [x, *ours.parameters()])
        name = "fused" if impl == "auto" else "recurrence"
        report[f"{name}: output, h_n, c_n"] = max((out - out_r).abs().max().item(), (h - h_r).abs().max().item(),
                                                  (c - c_r).abs().max().item())
        report[f"{name}: gradients"] = max((a - b).abs().max().item() for a, b in zip(g, g_r))
        lengths = [12, 5, 9, 1]
        padded, (hp, _) = ours(x, lengths=lengths)
        err = 0.0
        for b, n in enumerate(lengths):
            alone, (ha, _) = ours(x[:n, b : b + 1])
            err = max(err, (padded[:n, b : b + 1] - alone).abs().max().item(), (hp[:, b] - ha[:, 0]).abs().max().item())
        report[f"{name}: padded with lengths vs alone"] = err
    return report


def _make_waves(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noisy sine waves of 3 frequency classes, random lengths 10..40, zero-padded: (T, n, 1)."""
    lengths = torch.randint(10, 41, (n,), generator=generator)
    labels = torch.randint(0, 3, (n,), generator=generator)
    freq = torch.tensor([0.15, 0.3, 0.45])[labels]
    phase = torch.rand(n, generator=generator) * 2 * math.pi
    t = torch.arange(40).unsqueeze(1).float()
    x = torch.sin(freq * t * 2 + phase) + 0.3 * torch.randn(40, n, generator=generator)
    x = x * (t < lengths).float()
    return x.unsqueeze(-1), lengths, labels


class _WaveClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = LSTM(1, 32, bidirectional=True, forget_bias=1.0)
        self.head = nn.Linear(64, 3)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x, lengths=lengths)  # h_n: (2, B, 32), each at its own last step
        return self.head(torch.cat([h_n[0], h_n[1]], dim=1))  # -> (B, 3)


def tiny_training(seed: int = 0, steps: int = 150) -> dict[str, float]:
    """Train a bidirectional LSTM on variable-length waves; return losses, accuracy and time."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x_tr, l_tr, y_tr = _make_waves(1024, gen)
    x_te, l_te, y_te = _make_waves(512, gen)
    model = _WaveClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    t0 = time.perf_counter()
    first = last = float("nan")
    for step in range(steps):
        idx = torch.randint(0, 1024, (64,), generator=gen)
        loss = nn.functional.cross_entropy(model(x_tr[:, idx], l_tr[idx]), y_tr[idx])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        first = loss.item() if step == 0 else first
        last = loss.item()
    model.eval()
    with torch.no_grad():
        acc = (model(x_te, l_te).argmax(1) == y_te).float().mean().item()
    return {"first loss": first, "last loss": last, "test accuracy": acc, "seconds": time.perf_counter() - t0}


def _cmd_demo(args: argparse.Namespace) -> int:
    print(f"lstmkit {__version__} · torch {torch.__version__} · {torch.get_num_threads()} thread(s)")
    print("\n1. Parity with torch.nn.LSTM (float64, 2 layers, bidirectional, proj_size=8): max |difference|")
    report = parity_report(args.seed)
    for k, v in report.items():
        print(f"   {k:45s} {v:.2e}")
    print("\n2. Tiny training run: 3-class noisy sine waves, lengths 10..40, bidirectional LSTM, lengths path")
    res = tiny_training(args.seed, args.steps)
    print(f"   loss {res['first loss']:.3f} -> {res['last loss']:.3f} in {args.steps} steps, "
          f"{res['seconds']:.1f} s; held-out accuracy {100 * res['test accuracy']:.1f}%")
    ok = max(report.values()) <= 1e-10 and res["test accuracy"] > 0.8
    print("\n" + ("OK" if ok else "FAILED: parity above 1e-10 or the model did not learn"))
    return 0 if ok else 1


def _cmd_parity(args: argparse.Namespace) -> int:
    report = parity_report(args.seed)
    for k, v in report.items():
        print(f"{k:45s} {v:.2e}")
    return 0 if max(report.values()) <= 1e-10 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstmkit", description="LSTMs that are practical, correct and fast.")
    parser.add_argument("--version", action="version", version=f"lstmkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="parity check against torch.nn.LSTM and a tiny training run")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--steps", type=int, default=150)
    demo.set_defaults(func=_cmd_demo)
    parity = sub.add_parser("parity", help="print max differences from torch.nn.LSTM (float64)")
    parity.add_argument("--seed", type=int, default=0)
    parity.set_defaults(func=_cmd_parity)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
