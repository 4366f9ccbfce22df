"""``bench speed --check``: the bars file, the ratio check, and the exit code of the command."""

import pytest

import lstmkit.bench.commands as commands
from lstmkit.bench.speed import ROWS
from lstmkit.bench.speed_check import bar_rows, check_bars, load_bars
from lstmkit.cli import main


def _rows(times: dict, shape=(100, 32, 8, 128), malloc="default", mode="train"):
    T, B, D, H = shape
    return [{"row": name, "mode": mode, "T": T, "B": B, "D": D, "H": H, "ms": ms, "malloc": malloc}
            for name, ms in times.items()]


def test_bars_file_names_real_rows_and_the_issue_targets():
    bars = load_bars()
    assert set(bar_rows(bars)) <= set(ROWS)
    by = {(b["row"], b["mode"]): b for b in bars["bars"]}
    assert by[("variant layer_norm", "train")]["max_ratio"] == 2.0
    assert by[("variant zoneout", "infer")]["max_ratio"] == 2.5
    assert by[("variant all_variants", "train")]["max_ratio"] == 3.0
    assert by[("lstmkit lengths", "train")] == {"row": "lstmkit lengths", "reference": "nn.LSTM packed (lengths)",
                                                 "mode": "train", "max_ratio": 0.25, "shapes": [[100, 32, 8, 128]]}
    assert [100, 32, 8, 128] in bars["shapes"] and [500, 16, 1, 64] in bars["shapes"]


def test_check_flags_each_row_over_its_bar_per_allocator_setting():
    bars = {"bars": [{"row": "variant peephole", "reference": "nn.LSTM", "mode": "train", "max_ratio": 2.0},
                     {"row": "lstmkit lengths", "reference": "nn.LSTM packed (lengths)", "mode": "train",
                      "max_ratio": 0.25, "shapes": [[100, 32, 8, 128]]}]}
    rows = (_rows({"nn.LSTM": 10.0, "variant peephole": 19.0, "nn.LSTM packed (lengths)": 40.0, "lstmkit lengths": 11.0})
            + _rows({"nn.LSTM": 10.0, "variant peephole": 21.0}, malloc="tuned")
            + _rows({"nn.LSTM": 10.0, "variant peephole": 5.0, "nn.LSTM packed (lengths)": 40.0,
                     "lstmkit lengths": 30.0}, shape=(500, 16, 1, 64)))
    results = check_bars(rows, bars)
    got = {(r["row"], r["shape"], r["malloc"]): (r["ratio"], r["ok"]) for r in results}
    assert got == {
        ("variant peephole", "T=100,B=32,D=8,H=128", "default"): (1.9, True),
        ("variant peephole", "T=100,B=32,D=8,H=128", "tuned"): (2.1, False),
        ("variant peephole", "T=500,B=16,D=1,H=64", "default"): (0.5, True),
        ("lstmkit lengths", "T=100,B=32,D=8,H=128", "default"): (0.275, False),  # the T=500 row has no bar
    }


@pytest.mark.parametrize("slow,rc", [(False, 0), (True, 1)])
def test_cli_check_exits_non_zero_when_a_bar_is_exceeded(monkeypatch, tmp_path, capsys, slow, rc):
    seen = {}

    def fake_measure(fn, cfg, malloc):
        seen["rows"], seen["shapes"] = cfg.rows, cfg.shapes
        times = {name: 1.0 for name in cfg.rows}
        times["nn.LSTM"] = times["nn.LSTM packed (lengths)"] = times["nn.LSTM bidirectional packed (lengths)"] = 10.0
        if slow:
            times["variant zoneout"] = 25.0
        rows = [r for shape in cfg.shapes for mode in ("train", "infer") for r in _rows(times, shape, mode=mode)]
        for r in rows:
            r.update(ratio_vs_nn_lstm=1.0, gflops=1.0, peak_fraction=0.1)
        peak = {"peak_gflops": 1.0, "peak_source": "x", "gflops": {}}
        machine = {k: "" for k in ("cpu", "cores", "threads", "torch", "onednn", "numpy", "python", "device")}
        return [("default", (rows, peak), machine)]

    monkeypatch.setattr(commands, "_measure", fake_measure)
    monkeypatch.setattr(commands, "_plot_speed", lambda rows, path: None)
    code = main(["bench", "speed", "--check", "--malloc", "default", "--out", str(tmp_path)])
    assert code == rc
    assert seen["rows"] == bar_rows(load_bars()) and seen["shapes"] == [(100, 32, 8, 128), (500, 16, 1, 64)]
    printed = capsys.readouterr().out
    assert ("variant zoneout train T=100,B=32,D=8,H=128 malloc default: 2.5x > 2.0x" in printed) == slow
    assert (tmp_path / "check.md").exists()
