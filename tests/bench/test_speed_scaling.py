"""bench speed / scaling: structure of the outputs on tiny grids, the exponent fits on synthetic
timings, the allocator switch, and the errors. Timings themselves are never asserted."""

import json

import numpy as np
import pytest
import torch

from lstmkit.bench.common import power_law_fit
from lstmkit.bench.scaling import ScalingConfig, fit_exponents, run_scaling, saved_bytes
from lstmkit.bench.speed import (ROWS, SpeedConfig, forward_flops, length_buckets, measure_gemm_peak, run_speed,
                                 spread_lengths)
from lstmkit.cli import main
from lstmkit.runtime import MALLOC_ENV, malloc_tuning_wanted, tune_malloc

TINY_BASE = {"T": 6, "B": 2, "D": 3, "H": 4, "L": 1}


def test_power_law_fit_recovers_exponent_with_honest_uncertainty():
    rng = np.random.default_rng(0)
    x = np.array([50, 100, 200, 500, 1000, 2000], dtype=float)
    exact = power_law_fit(x, 3.0 * x**1.5)
    assert exact["exponent"] == pytest.approx(1.5, abs=1e-9) and exact["stderr"] < 1e-9
    assert exact["prefactor"] == pytest.approx(3.0, rel=1e-6) and exact["r2"] == pytest.approx(1.0)
    hits = 0
    for _ in range(200):
        f = power_law_fit(x, 3.0 * x**1.5 * np.exp(rng.normal(0, 0.1, len(x))))
        assert 0.0 < f["stderr"] < 0.2
        hits += f["ci95"][0] <= 1.5 <= f["ci95"][1]
    assert 0.9 <= hits / 200 <= 0.99  # a 95% interval covers the truth about 95% of the time


@pytest.mark.parametrize("x, y, match", [([1, 2], [1, 2], "at least 3 distinct"), ([1, 2, 2], [1, 2, 3], "3 distinct"),
                                         ([1, 2, 3], [1, -2, 3], "positive"), ([1, 2, 3], [1, 2], "equal length"),
                                         ([1, 2, 3], [1, np.nan, 3], "finite")])
def test_power_law_fit_errors(x, y, match):
    with pytest.raises(ValueError, match=match):
        power_law_fit(x, y)


def test_fit_exponents_on_synthetic_timings_sits_beside_the_analytic_model():
    rows = []
    base = {"T": 100, "B": 16, "D": 32, "H": 128, "L": 1}
    for axis, values, k in (("T", [50, 100, 200, 400], 1.0), ("H", [32, 64, 128, 256], 1.7), ("B", [1, 4, 16], 0.5)):
        for v in values:
            s = {**base, axis: v}
            rows.append({"axis": axis, "value": v, **s, "train_ms": 2.0 * v**k, "infer_ms": 0.5 * v**k,
                         "saved_bytes": int(1000 * v)})
    fits = {(f["axis"], f["quantity"]): f for f in fit_exponents(rows)}
    assert fits["T", "train time"]["exponent"] == pytest.approx(1.0, abs=1e-6)
    assert fits["H", "infer time"]["exponent"] == pytest.approx(1.7, abs=1e-6)
    assert fits["B", "train time"]["exponent"] == pytest.approx(0.5, abs=1e-6)
    assert fits["T", "train time"]["analytic_exponent"] == pytest.approx(1.0)
    assert 1.0 < fits["H", "train time"]["analytic_exponent"] < 2.0  # H(D+H): between linear and quadratic
    assert fits["T", "saved memory"]["exponent"] == pytest.approx(1.0, abs=1e-3)
    assert fits["T", "saved memory"]["analytic_exponent"] == 1.0
    assert ("L", "train time") not in fits  # no sweep, no fit


def test_forward_flops_formula():
    # one layer: 2 * 4 gates * H * (D + H) per step and sequence
    assert forward_flops("lstm", B=2, T=3, D=5, H=7) == 2 * 4 * 7 * 12 * 6
    assert forward_flops("gru", B=1, T=1, D=5, H=7) == 2 * 3 * 7 * 12
    # second layer reads K*H features; bidirectional doubles
    assert forward_flops("lstm", 1, 1, 5, 7, layers=2, directions=2) == 2 * 4 * 7 * (5 + 7) * 2 + 2 * 4 * 7 * (14 + 7) * 2
    assert forward_flops("lstm", 2, 3, 5, 7, steps=4) == 2 * 4 * 7 * 12 * 4
    assert spread_lengths(10, 4).tolist() == [10, 7, 5, 2]
    assert length_buckets(10, 6).tolist() == [10, 9, 8, 7, 7, 7]
    assert length_buckets(20, 8).tolist() == [20, 20, 18, 18, 16, 16, 14, 14]


def test_gemm_peak_reports_each_entry_point_and_the_fastest():
    peak = measure_gemm_peak(n=64, warmup=0, repeats=1)
    assert peak["peak_gflops"] == max(peak["gflops"].values()) > 0
    assert peak["peak_source"] in peak["gflops"] and "torch.mm" in peak["gflops"]


def test_speed_rows_cover_every_contender_with_ratios_to_nn_lstm():
    rows, peak = run_speed(SpeedConfig(shapes=[(6, 4, 3, 5)], warmup=0, repeats=1), peak={"peak_gflops": 100.0})
    assert {r["row"] for r in rows} == set(ROWS)
    assert {r["mode"] for r in rows} == {"train", "infer"}
    for r in rows:
        assert r["ms"] > 0 and r["gflops"] > 0 and r["peak_fraction"] == pytest.approx(r["gflops"] / 100, rel=1e-3)
        if r["row"] == "nn.LSTM":
            assert r["ratio_vs_nn_lstm"] == 1.0
        assert (r["lengths"] is not None) == ("length" in r["row"])
    bi = {r["mode"]: r["gflops"] * r["ms"] for r in rows if r["row"] == "nn.LSTM bidirectional"}
    one = {r["mode"]: r["gflops"] * r["ms"] for r in rows if r["row"] == "nn.LSTM"}
    assert bi["train"] == pytest.approx(2 * one["train"], rel=1e-2)  # FLOPs of both directions counted


def test_saved_bytes_grow_linearly_with_sequence_length():
    lstm = torch.nn.LSTM(4, 8)

    def run(T):
        x = torch.randn(T, 3, 4, requires_grad=True)
        return saved_bytes(lambda: lstm(x)[0])

    a, b = run(200), run(400)
    assert a > 200 * 3 * 8 * 4  # at least the hidden states
    assert b / a == pytest.approx(2.0, rel=0.1)


def test_scaling_rows_and_fits():
    cfg = ScalingConfig(T=[4, 8, 16], H=[2, 4, 8], L=[1, 2], B=[1, 2, 4], base=TINY_BASE, warmup=0, repeats=1)
    rows = run_scaling(cfg)
    assert [(r["axis"], r["value"]) for r in rows] == [(a, v) for a, vs in (("T", [4, 8, 16]), ("H", [2, 4, 8]),
                                                                            ("L", [1, 2]), ("B", [1, 2, 4])) for v in vs]
    assert all(r["train_ms"] > 0 and r["infer_ms"] > 0 and r["saved_bytes"] > 0 for r in rows)
    fits = fit_exponents(rows)
    assert {f["axis"] for f in fits} == {"T", "H", "B"}  # L has only 2 points


@pytest.mark.parametrize("kwargs, match", [
    ({"shapes": [(1, 2, 3)]}, "T, B, D, H"), ({"rows": ["nn.LSTMz"]}, "valid rows"), ({"modes": ("fit",)}, "modes"),
    ({"device": "tpu"}, "device"), ({"repeats": 0}, "repeats")])
def test_speed_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpeedConfig(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        SpeedConfig(device="cuda")


@pytest.mark.parametrize("kwargs, match", [({"T": []}, "T must be a non-empty"), ({"H": [0, 2]}, "H must be"),
                                           ({"base": {"T": 5}}, "missing"), ({"axes": ("X",)}, "axes"),
                                           ({"model": "lstn"}, "model must be one of")])
def test_scaling_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScalingConfig(**kwargs)


def test_cli_speed_writes_table_json_csv_plot_and_report(tmp_path, capsys):
    out = tmp_path / "speed"
    rc = main(["bench", "speed", "--shapes", "5,2,3,4;7,3,2,4", "--rows", "nn.LSTM,lstmkit lengths,nn.GRU",
               "--warmup", "0", "--repeats", "1", "--malloc", "current", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| row |" in printed and "nn.GRU" in printed
    data = json.loads((out / "speed.json").read_text())
    assert len(data["rows"]) == 2 * 2 * 3 and data["meta"]["peak"]["current"]["peak_gflops"] > 0
    assert data["meta"]["machine"]["current"]["threads"] == torch.get_num_threads()
    assert (out / "speed.csv").read_text().splitlines()[0].startswith("malloc,row,mode,T,B,D,H,ms")
    assert (out / "speed.png").stat().st_size > 1000 and "## train" in (out / "report.md").read_text()


def test_cli_scaling_measures_both_allocator_settings_in_fresh_processes(tmp_path, capsys):
    out = tmp_path / "scaling"
    rc = main(["bench", "scaling", "--T", "4,8,16", "--axes", "T", "--base", "T=4,B=2,D=3,H=4,L=1", "--warmup", "0",
               "--repeats", "1", "--malloc", "both", "--out", str(out)])
    assert rc == 0
    data = json.loads((out / "scaling.json").read_text())
    machines = data["meta"]["machine"]
    assert machines["tuned"]["malloc_env"] == MALLOC_ENV and machines["default"]["malloc_env"] == {}
    assert {r["malloc"] for r in data["rows"]} == {"default", "tuned"}
    assert {(f["malloc"], f["quantity"]) for f in data["meta"]["fits"]} >= {("default", "train time"),
                                                                           ("tuned", "train time")}
    assert len(data["meta"]["malloc_effect"]) == 3
    assert "Fitted exponents" in capsys.readouterr().out and (out / "scaling.png").stat().st_size > 1000


def test_cli_bench_errors_are_clear(tmp_path, capsys):
    assert main(["bench", "speed", "--shapes", "5,2,x,4", "--out", str(tmp_path)]) == 2
    assert "--shapes takes comma-separated ints" in capsys.readouterr().err
    assert main(["bench", "scaling", "--base", "T100", "--out", str(tmp_path)]) == 2
    assert "--base takes K=V pairs" in capsys.readouterr().err


def test_malloc_tuning_switches(monkeypatch):
    monkeypatch.delenv("LSTMKIT_MALLOC_TUNING", raising=False)
    assert malloc_tuning_wanted() and not malloc_tuning_wanted(False)
    monkeypatch.setenv("LSTMKIT_MALLOC_TUNING", "0")
    assert not malloc_tuning_wanted()
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "5")  # the user's own settings win
    assert tune_malloc() is False


def test_eager_row_turns_cuda_graphs_off_only_during_its_call(monkeypatch):
    import os

    from lstmkit.bench.speed import CUDA_ROWS, SpeedConfig, _eager

    monkeypatch.delenv("LSTMKIT_CUDA_GRAPHS", raising=False)
    seen = []
    assert _eager(lambda x: seen.append(os.environ.get("LSTMKIT_CUDA_GRAPHS")) or x)(1) == 1
    assert seen == ["0"] and "LSTMKIT_CUDA_GRAPHS" not in os.environ
    monkeypatch.setenv("LSTMKIT_CUDA_GRAPHS", "1")
    _eager(lambda x: x)(1)
    assert os.environ["LSTMKIT_CUDA_GRAPHS"] == "1"
    assert SpeedConfig(rows=CUDA_ROWS).rows == CUDA_ROWS  # a valid row name (built on CUDA only)
