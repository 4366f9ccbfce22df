import json

import pytest

from lstmkit.bench.longrange import LongRangeConfig, exponents, run_one
from lstmkit.cli import main


def test_config_errors():
    with pytest.raises(ValueError, match="task must be one of"):
        LongRangeConfig(task="parity")
    with pytest.raises(ValueError, match="layers .* unknown"):
        LongRangeConfig(layers=["transformer"])


@pytest.mark.parametrize("task", ["adding", "copy"])
def test_one_short_run_reports_every_field(task):
    cfg = LongRangeConfig(task=task, hidden_size=8, batch_size=4, max_steps=3, eval_every=2, val_size=4, test_size=6)
    row = run_one(cfg, "minlstm", 25)
    assert row["steps"] == 3 and row["stopped_by"] == "step limit" and row["solved"] is False
    assert row["epoch_s"] > 0 and row["saved_bytes"] > 0 and len(row["history"]) == 2
    assert ("mse" if task == "adding" else "accuracy") in row["test"]


def test_command_writes_rows_report_and_plot(tmp_path):
    args = ["bench", "longrange", "--layers", "nn.LSTM,mlstm", "--T", "22,24,26", "--hidden-size", "8",
            "--batch-size", "2", "--max-steps", "1", "--val-size", "2", "--test-size", "2", "--out", str(tmp_path)]
    assert main(args) == 0
    rows = json.loads((tmp_path / "rows-adding-mlstm.json").read_text())["rows"]
    assert [r["T"] for r in rows] == [22, 24, 26]
    assert (tmp_path / "longrange.png").exists() and "mlstm" in (tmp_path / "report.md").read_text()
    assert {f["layer"] for f in exponents(rows)} == {"mlstm"}
