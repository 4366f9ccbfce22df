"""bench latency: every contender streams the same sequence and matches the batch path; the
command writes its outputs. No timing is asserted."""

import json

import pytest

from lstmkit.bench.latency import LatencyConfig, run_latency
from lstmkit.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path / "cache"))


def test_latency_rows_match_the_batch_path():
    rows = run_latency(LatencyConfig(input_size=3, hidden_size=8, num_layers=2, steps=20, blocks=2, warmup=5))
    names = [r["row"] for r in rows]
    assert names[:3] == ["nn.LSTM per step", "nn.LSTMCell", "onnxruntime"]
    assert "lstmkit LSTMStream (numpy)" in names and "lstmkit LSTMStream (torch)" in names
    for r in rows:
        assert r["us_per_step"] > 0 and r["max_abs_error_vs_batch"] < 1e-5, r
    ort = next(r for r in rows if r["row"] == "onnxruntime")
    assert ort["ratio_vs_onnxruntime"] == 1.0


def test_latency_command_writes_outputs(tmp_path, capsys):
    out = tmp_path / "lat"
    assert main(["bench", "latency", "--hidden-size", "8", "--steps", "10", "--blocks", "2", "--warmup", "2",
                 "--no-onnx", "--out", str(out)]) == 0
    data = json.loads((out / "latency.json").read_text())
    assert all(r["ratio_vs_onnxruntime"] is None for r in data["rows"])
    assert (out / "latency.png").stat().st_size > 1000 and "| row |" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, match", [({"hidden_size": 0}, "hidden_size"), ({"warmup": -1}, "warmup")])
def test_latency_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LatencyConfig(**kwargs)
