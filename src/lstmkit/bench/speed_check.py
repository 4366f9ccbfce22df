"""``lstmkit bench speed --check``: the measured ratios against the bars of ``speed_bars.json``.

The bars live in one file (package data, quoted by docs/benchmarks.md); a bar names a row, the
reference row it is timed against, a mode and the largest allowed ratio, optionally at some
shapes only. Each allocator setting measured is checked on its own: every one must pass.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

__all__ = ["load_bars", "bar_rows", "check_bars"]

_FILE = "speed_bars.json"


@cache
def load_bars() -> dict:
    """``{"shapes": [[T, B, D, H], ...], "bars": [{row, reference, mode, max_ratio[, shapes]}, ...]}``."""
    data = json.loads(resources.files(__package__).joinpath(_FILE).read_text(encoding="utf-8"))
    for bar in data["bars"]:
        missing = {"row", "reference", "mode", "max_ratio"} - set(bar)
        if missing:
            raise ValueError(f"{_FILE}: bar {bar} lacks {sorted(missing)}")
    return data


def bar_rows(bars: dict) -> list[str]:
    """The rows the bars need (reference rows included), in a stable order."""
    return list(dict.fromkeys(name for bar in bars["bars"] for name in (bar["reference"], bar["row"])))


def check_bars(rows: list[dict], bars: dict) -> list[dict]:
    """One result per (bar, shape, malloc setting) measured: row, reference, mode, shape, malloc,
    ratio, max_ratio and ok. A bar whose rows were not measured at a shape is skipped there."""
    by = {(r.get("malloc", "current"), r["row"], r["mode"], (r["T"], r["B"], r["D"], r["H"])): r["ms"] for r in rows}
    settings = list(dict.fromkeys(r.get("malloc", "current") for r in rows))
    shapes = list(dict.fromkeys((r["T"], r["B"], r["D"], r["H"]) for r in rows))
    results = []
    for bar in bars["bars"]:
        allowed = {tuple(s) for s in bar["shapes"]} if "shapes" in bar else None
        for shape in shapes:
            if allowed is not None and shape not in allowed:
                continue
            for setting in settings:
                ms = by.get((setting, bar["row"], bar["mode"], shape))
                ref = by.get((setting, bar["reference"], bar["mode"], shape))
                if ms is None or ref is None:
                    continue
                ratio = ms / ref
                results.append({"row": bar["row"], "reference": bar["reference"], "mode": bar["mode"],
                                "shape": "T={},B={},D={},H={}".format(*shape), "malloc": setting,
                                "ratio": round(ratio, 3), "max_ratio": bar["max_ratio"],
                                "ok": ratio <= bar["max_ratio"]})
    return results
