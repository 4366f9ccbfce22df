"""lstmkit bench compare on a tiny configuration: outputs, their structure, and config errors."""

import argparse
import json

import pytest

from lstmkit.bench.compare import (CompareConfig, add_compare_arguments, pareto_front, run_compare,
                                   run_compare_command)

RUN_KEYS = {"row", "task", "model", "seed", "width_name", "width", "params", "accuracy", "macro_f1", "val_accuracy",
            "train_seconds", "epochs", "best_epoch", "flops_per_sample", "latency_ms", "throughput"}


def test_tiny_comparison_writes_every_output(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_compare_arguments(parser)
    out = tmp_path / "cmp"
    args = parser.parse_args(["--task", "digits", "--models", "lstm,tcn", "--seeds", "0", "--params", "3000",
                              "--epochs", "1", "--out", str(out)])
    assert run_compare_command(args) == 0
    table = capsys.readouterr().out
    assert table.startswith("| model |") and "| lstm |" in table and "| tcn |" in table

    data = json.loads((out / "compare.json").read_text())
    runs = [r for r in data["rows"] if r["row"] == "run"]
    summary = [r for r in data["rows"] if r["row"] == "summary"]
    assert [r["model"] for r in runs] == ["lstm", "tcn"] and [r["model"] for r in summary] == ["lstm", "tcn"]
    for r in runs:
        assert RUN_KEYS <= set(r)
        assert abs(r["params"] - 3000) <= 0.15 * 3000
        assert 0 <= r["accuracy"] <= 1 and r["epochs"] == 1
        assert r["flops_per_sample"] > 0 and r["latency_ms"] > 0 and r["throughput"] > 0
    for r in summary:
        assert {"accuracy_mean", "accuracy_std", "macro_f1_mean", "train_seconds_mean", "latency_ms_std",
                "throughput_mean", "flops_per_sample", "params", "seeds"} <= set(r)
        assert r["seeds"] == 1 and r["accuracy_std"] == 0.0
    assert data["meta"]["target_params"] == 3000 and data["meta"]["n_test"] == 450
    assert data["meta"]["specs"]["tcn"]["num_levels"] == 2  # receptive field 13 >= 8 steps

    csv_lines = (out / "compare.csv").read_text().splitlines()
    assert csv_lines[0].startswith("row,task,model,seed") and len(csv_lines) == 1 + 4
    report = (out / "report.md").read_text()
    assert "| lstm |" in report and "compare_flops.png" in report
    for name in ("compare_flops.png", "compare_time.png"):
        png = (out / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_pareto_front():
    # cost, accuracy: b dominates a; c is the most accurate; d costs more than c and is worse
    assert pareto_front([2, 1, 3, 4], [0.5, 0.6, 0.9, 0.8]) == [False, True, True, False]
    assert pareto_front([1, 1], [0.5, 0.5]) == [True, True]


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(task="mnist"), "task must be one of"),
        (dict(models=["lstm", "lstm"]), "models must be a non-empty list of distinct names"),
        (dict(models=["cnn"]), "models must be a non-empty list"),
        (dict(models=[]), "models must be a non-empty list"),
        (dict(seeds=[]), "seeds must be a non-empty list"),
        (dict(seeds=[-1]), "seeds must be a non-empty list of distinct non-negative ints"),
        (dict(params=0), "params must be an int >= 1, got 0"),
        (dict(epochs=1.5), "epochs must be an int >= 1, got 1.5"),
        (dict(tolerance=1.5), r"tolerance must be in \(0, 1\)"),
        (dict(device="tpu"), "device must be"),
    ],
)
def test_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        CompareConfig(**kw)


def test_recipe_overrides():
    cfg = CompareConfig(task="gunpoint", epochs=3, patience=2)
    assert (cfg.recipe.epochs, cfg.recipe.patience) == (3, 2)
    assert CompareConfig(task="gunpoint").recipe.epochs > 3


def test_unreachable_target_is_reported(tmp_path):
    with pytest.raises(ValueError, match="no width within"):
        run_compare(CompareConfig(task="italypower", models=["transformer"], seeds=[0], params=40, epochs=1), tmp_path)
