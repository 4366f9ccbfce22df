"""Data-parallel training: the sharding arithmetic in-process, and real 2-process runs launched
through the CLI (torchrun re-executes the command line, so never inside the pytest process)."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from torch.nn import functional as F

from lstmkit.cli import main
from lstmkit.tasks.distributed import init_from_env, shard, world


@pytest.mark.parametrize("n, world_size", [(10, 2), (7, 3), (2, 4), (1, 2)])
def test_weighted_shards_average_to_the_whole_batch_gradient(n, world_size):
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    x, y, lengths = torch.randn(n, 3), torch.randint(0, 2, (n,)), torch.arange(n)
    full = torch.autograd.grad(F.cross_entropy(lin(x), y), lin.weight)[0]
    grads = []
    for rank in range(world_size):
        (xs, ys, ls, tag), w = shard((x, y, lengths, "tag"), rank, world_size)
        assert tag == "tag" and len(xs) == len(ys) == len(ls) >= 1
        grads.append(torch.autograd.grad(F.cross_entropy(lin(xs), ys) * w, lin.weight)[0])
    assert torch.allclose(torch.stack(grads).mean(0), full, atol=1e-6)  # what DDP's all-reduce computes


def test_not_distributed_by_default_and_clear_errors(monkeypatch, tmp_path, capsys):
    assert world() == (0, 1)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        init_from_env("cpu")
    with pytest.raises(ValueError, match="strategy"):
        init_from_env("cpu", "fsdp")
    with pytest.raises(ValueError, match="at least one tensor"):
        shard(("a",), 0, 2)
    assert main(["train", "forecast/airline", "--devices", "2", "--out", str(tmp_path / "f")]) == 2
    assert ("--devices N does not apply to 'forecast' runs: it trains an ensemble on forking sequences, whose loss is "
            "not a mean over rows") in capsys.readouterr().err
    assert main(["train", "classify/digits", "--devices", "0", "--out", str(tmp_path / "g")]) == 2


def _train(cfg, out, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "lstmkit", "-q", "train", str(cfg), "--out", str(out), *extra],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text()), json.loads((out / "history.json").read_text())


def test_two_processes_match_one_process(tmp_path):
    """No dropout: the sharded, DDP-averaged steps are the single-process steps up to rounding."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"name": "digits"},
        "model": {"name": "rnn_classifier", "hidden_size": 12, "bidirectional": True, "pooling": "mean"},
        "train": {"epochs": 3, "batch_size": 64, "lr": 0.01, "progress": "off", "seed": 3}}))
    one, h1 = _train(cfg, tmp_path / "one")
    two, h2 = _train(cfg, tmp_path / "two", "--devices", "2")
    assert not (tmp_path / "two").with_name("two-rank1").exists()
    assert one["best_epoch"] == two["best_epoch"]
    for a, b in zip(h1, h2):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    assert one["test"]["accuracy"] == pytest.approx(two["test"]["accuracy"], abs=1 / 450 + 1e-9)


@pytest.mark.parametrize("task", ["video", "generate", "superres"])
def test_a_vision_task_trains_on_two_processes_as_on_one(tmp_path, task):
    """`--devices` reaches every task whose loss is a mean over samples (`lstmkit tasks` lists them),
    also where the loss is a model method (DDP sees it through its forward): the sharded,
    DDP-averaged steps are the single-process steps up to rounding."""
    import importlib

    tiny = importlib.import_module(f"tests.tasks.test_{task}").TINY
    cfg = tmp_path / f"{task}.yaml"
    cfg.write_text(yaml.safe_dump({**tiny, "task": task, "train": {**tiny["train"], "epochs": 2, "seed": 1}}))
    one, h1 = _train(cfg, tmp_path / "one")
    two, h2 = _train(cfg, tmp_path / "two", "--devices", "2")
    assert len(h1) == len(h2) == 2
    for a, b in zip(h1, h2):  # the model's epochs (one row each)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    scores = [k for k, v in one["test"].items() if isinstance(v, float)]
    assert scores and all(one["test"][k] == pytest.approx(two["test"][k], rel=1e-3) for k in scores)
