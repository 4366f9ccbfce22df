"""Layer speed: lstmkit against torch.nn.LSTM in the same process.

Training = forward + backward of sum(output); inference = forward under no_grad. Each row is the
median of --repeats timed runs after --warmup untimed ones; ratio = row time / nn.LSTM time at
the same shape and mode. Rows: nn.LSTM, lstmkit fast path, each variant, bidirectional (both
libraries), the lengths path against torch's packed path (lengths spread evenly over
[T/5, T]), and a naive Python loop over nn.LSTMCell (the style the seed articles use).

    OMP_NUM_THREADS=1 python benchmarks/layer_speed.py --out benchmarks/results/layer_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from lstmkit.nn import LSTM  # noqa: E402

SHAPES = [(28, 64, 28, 128), (100, 32, 8, 128), (500, 16, 1, 64)]
VARIANTS = {
    "peephole": dict(peephole=True),
    "layer_norm": dict(layer_norm=True),
    "forget_bias": dict(forget_bias=1.0),
    "recurrent_dropout": dict(recurrent_dropout=0.25),
    "input_dropout": dict(input_dropout=0.25),
    "zoneout": dict(zoneout=0.1),
    "all_variants": dict(peephole=True, layer_norm=True, recurrent_dropout=0.25, zoneout=0.1),
}


def median_ms(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def runner(call, x, train: bool):
    def train_step():
        x.grad = None
        out = call(x)
        out.sum().backward()

    def infer():
        with torch.no_grad():
            call(x)

    return train_step if train else infer


def naive_cell_loop(cell: nn.LSTMCell):
    def call(x):
        h = x.new_zeros(x.shape[1], cell.hidden_size)
        c = torch.zeros_like(h)
        outs = []
        for t in range(x.shape[0]):
            h, c = cell(x[t], (h, c))
            outs.append(h)
        return torch.stack(outs)

    return call


def bench_shape(T, B, D, H, warmup, repeats, rows_filter):
    torch.manual_seed(0)
    x = torch.randn(T, B, D, requires_grad=True)
    lengths = torch.linspace(T, max(1, T // 5), B).round().long()  # spread evenly, T/5..T
    ref = nn.LSTM(D, H)
    ours = LSTM(D, H)
    ours.load_state_dict(ref.state_dict())
    ref_bi, ours_bi = nn.LSTM(D, H, bidirectional=True), LSTM(D, H, bidirectional=True)
    ours_bi.load_state_dict(ref_bi.state_dict())
    cell = nn.LSTMCell(D, H)

    # A batch grouped by length (what a length-bucketing sampler yields): 4 distinct lengths.
    buckets = torch.tensor([T, T - T // 10, T - 2 * (T // 10), T - 3 * (T // 10)]).repeat_interleave(B // 4)
    buckets = torch.cat([buckets, buckets[-1:].expand(B - len(buckets))])

    def packed_buckets(module):
        def call(x):
            p = pack_padded_sequence(x, buckets, enforce_sorted=False)
            return pad_packed_sequence(module(p)[0], total_length=T)[0]
        return call

    def packed(module):
        def call(x):
            p = pack_padded_sequence(x, lengths, enforce_sorted=False)
            return pad_packed_sequence(module(p)[0], total_length=T)[0]
        return call

    rows = {
        "nn.LSTM": lambda x: ref(x)[0],
        "lstmkit fast path": lambda x: ours(x)[0],
        "nn.LSTM bidirectional": lambda x: ref_bi(x)[0],
        "lstmkit bidirectional": lambda x: ours_bi(x)[0],
        "nn.LSTM packed (lengths)": packed(ref),
        "lstmkit lengths": lambda x: ours(x, lengths=lengths)[0],
        "nn.LSTM bidirectional packed (lengths)": packed(ref_bi),
        "lstmkit bidirectional lengths": lambda x: ours_bi(x, lengths=lengths)[0],
        "nn.LSTM packed (4 length buckets)": packed_buckets(ref),
        "lstmkit lengths (4 length buckets)": lambda x: ours(x, lengths=buckets)[0],
        "lstmkit plain on the recurrence path": None,
        "naive nn.LSTMCell loop": naive_cell_loop(cell),
    }
    loop_plain = LSTM(D, H, implementation="loop")
    loop_plain.load_state_dict(ref.state_dict())
    rows["lstmkit plain on the recurrence path"] = lambda x: loop_plain(x)[0]
    for name, kw in VARIANTS.items():
        m = LSTM(D, H, **kw).train()
        rows[f"variant {name}"] = (lambda m: lambda x: m(x)[0])(m)
    results = []
    for mode in ("train", "infer"):
        base = None
        for name, call in rows.items():
            if rows_filter and not any(f in name for f in rows_filter) and name != "nn.LSTM":
                continue
            ms = median_ms(runner(call, x, mode == "train"), warmup, repeats)
            base = ms if name == "nn.LSTM" else base
            r = {"T": T, "B": B, "D": D, "H": H, "mode": mode, "row": name, "ms": round(ms, 3),
                 "ratio_vs_nn_lstm": round(ms / base, 3)}
            if "packed" in name or "lengths" in name:
                lens = buckets if "buckets" in name else lengths
                r["lengths"] = f"{int(lens.min())}..{int(lens.max())} ({len(lens.unique())} distinct)"
            results.append(r)
            print(f"T={T:4d} B={B:3d} D={D:3d} H={H:4d} {mode:5s} {name:40s} {ms:9.2f} ms  x{ms / base:5.2f}", flush=True)
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--shapes", default=None, help="e.g. 100,32,8,128;28,64,28,128")
    ap.add_argument("--rows", default="", help="comma-separated substrings of row names to keep")
    ap.add_argument("--out", default=None, help="JSON file to write")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    shapes = SHAPES if not args.shapes else [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]
    rows_filter = [r for r in args.rows.split(",") if r]
    meta = {"machine": platform.processor() or platform.machine(), "cpu": _cpu_name(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": sys.version.split()[0], "warmup": args.warmup, "repeats": args.repeats}
    print(json.dumps(meta))
    results = []
    for shape in shapes:
        results += bench_shape(*shape, args.warmup, args.repeats, rows_filter)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
        os.replace(tmp, args.out)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
