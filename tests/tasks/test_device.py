"""train.device and train.precision on the CPU (lstmkit.tasks.device); tests/cuda/ repeats the CUDA side."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lstmkit.nn import LSTM
from lstmkit.tasks.device import autocast, check_precision, grad_scaler, resolve_device, to_device
from lstmkit.tasks.trainer import TrainConfig, fit, load_train_state, save_train_state

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")


def test_device_names_are_validated_naming_the_field():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu0", "mps", "meta", "cuda:x"):
        with pytest.raises(ValueError, match=r"train\.device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
            resolve_device(bad)
    with pytest.raises(ValueError, match="device must be"):
        TrainConfig(device="tpu")


@no_cuda
def test_cuda_asked_for_without_cuda_is_an_error():
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match="CUDA is not available here"):
            TrainConfig(device=name)


def test_precision_is_validated_naming_the_field():
    assert TrainConfig().precision == "32"
    assert TrainConfig(precision=32).precision == "32"  # YAML's `precision: 32` is an int
    assert TrainConfig(precision="bf16-mixed", device="cpu").precision == "bf16-mixed"
    for bad in ("16", "fp16", 16, "bf16", None, True):
        with pytest.raises(ValueError, match=r"train\.precision must be one of '32', 'bf16-mixed', '16-mixed'"):
            TrainConfig(precision=bad)
    with pytest.raises(ValueError, match="'16-mixed' needs CUDA"):
        TrainConfig(precision="16-mixed", device="cpu")
    assert check_precision("16-mixed") == "16-mixed"  # the device is checked where it is known


def test_autocast_and_scaler_per_precision():
    cpu = torch.device("cpu")
    lin = nn.Linear(3, 2)
    with autocast(cpu, "32"):
        assert lin(torch.randn(4, 3)).dtype == torch.float32
    with autocast(cpu, "bf16-mixed"):
        assert lin(torch.randn(4, 3)).dtype == torch.bfloat16
    assert grad_scaler(cpu, "32") is None and grad_scaler(cpu, "bf16-mixed") is None


def test_batches_stay_put_on_the_cpu():
    x, y = torch.randn(4, 3), torch.arange(4)
    moved = to_device((x, y, "label"), torch.device("cpu"))
    assert moved[0] is x and moved[1] is y and moved[2] == "label"


def test_lstm_recurrence_stays_float32_under_autocast():
    torch.manual_seed(0)
    for kw in (dict(), dict(peephole=True, layer_norm=True), dict(proj_size=3)):
        m = LSTM(5, 8, num_layers=2, bidirectional=True, **kw)
        x = torch.randn(6, 3, 5)
        lengths = torch.tensor([6, 4, 2])
        want, (h, c) = m(x, lengths=lengths)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got, (h2, c2) = m(x.bfloat16(), lengths=lengths)  # a bf16 input is cast to the weights' float32
            again, _ = m(x, (h2, c2))  # the returned state goes back in
        assert got.dtype == h2.dtype == c2.dtype == again.dtype == torch.float32
        bf16_input = m(x.bfloat16().float(), lengths=lengths)[0]
        torch.testing.assert_close(got, bf16_input, rtol=0, atol=0)  # exactly the float32 recurrence
        assert (got - want).abs().max() < 0.05  # only the input's rounding to bf16 differs


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 7, 3, generator=g)
    return x, (x[:, :, 0].sum(1) > 0).long()


class _Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = LSTM(3, 16, batch_first=True), nn.Linear(16, 2)
        self.seen = []

    def forward(self, x):
        out = self.head(self.lstm(x)[0].mean(1))
        self.seen.append(out.dtype)
        return out


def _fit(precision, epochs=3):
    torch.manual_seed(0)
    model = _Seq()
    x, y = _data(64, 0)
    val = [_data(32, 1)]
    loss = lambda m, b: F.cross_entropy(m(b[0]).float(), b[1])  # noqa: E731

    def evaluate(m, batches):
        logits = m(batches[0][0]).float()
        return {"loss": F.cross_entropy(logits, batches[0][1]).item()}

    batches = lambda epoch: [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]  # noqa: E731
    config = TrainConfig(epochs=epochs, lr=0.01, progress="off", device="cpu", precision=precision)
    return model, fit(model, batches, val, loss, evaluate, config)


def test_bf16_mixed_training_on_cpu_runs_under_autocast_and_keeps_float32_weights():
    model, res = _fit("bf16-mixed")
    ref_model, ref = _fit("32")
    assert torch.bfloat16 in model.seen and torch.bfloat16 not in ref_model.seen  # training steps autocast...
    assert model.seen[-1] == torch.float32  # ...validation does not
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.history != ref.history  # bf16 rounding changed the numbers: the autocast path ran
    for a, b in zip(res.history, ref.history):
        assert abs(a["train_loss"] - b["train_loss"]) < 0.05


def test_checkpoint_without_precision_or_with_a_cuda_generator_resumes_on_the_cpu(tmp_path, caplog):
    """A checkpoint written before train.precision existed, or on a CUDA machine (it carries the
    CUDA generator's state), continues here."""
    torch.manual_seed(0)
    model = _Seq()
    x, y = _data(64, 0)
    batches = lambda epoch: [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]  # noqa: E731
    loss = lambda m, b: F.cross_entropy(m(b[0]), b[1])  # noqa: E731
    evaluate = lambda m, b: {"loss": F.cross_entropy(m(b[0][0]), b[0][1]).item()}  # noqa: E731
    config = TrainConfig(epochs=2, lr=0.01, progress="off", device="cpu")
    fit(model, batches, [_data(32, 1)], loss, evaluate, config, checkpoint_dir=tmp_path)
    state = load_train_state(tmp_path)
    del state.config["precision"]
    state.rng["cuda"] = torch.zeros(16, dtype=torch.uint8)  # what a CUDA run adds
    save_train_state(tmp_path, state)
    meta = json.loads((state.path / "model.json").read_text())["meta"]
    assert "precision" not in meta["config"]
    with caplog.at_level(logging.WARNING):
        res = fit(_Seq(), batches, [_data(32, 1)], loss, evaluate, TrainConfig(**{**config.to_dict(), "epochs": 3}),
                  checkpoint_dir=tmp_path, resume=True)
    assert res.epochs == 3
    assert any("another kind of device" in r.getMessage() for r in caplog.records)


def test_every_weight_load_names_its_device():
    """torch.load / safetensors loads in the package all say where the tensors go (map_location /
    device), so a CUDA-written file opens on a CPU-only machine. lstmkit reads weights through
    lstmkit.checkpoint.load_checkpoint (safetensors bytes, map_location "cpu" unless asked)."""
    import ast
    import re
    from pathlib import Path

    import lstmkit
    from lstmkit.checkpoint import load_checkpoint

    keyword = {"load": "map_location", "load_file": "device", "safe_open": "device"}
    calls = written = 0
    for path in Path(lstmkit.__file__).parent.rglob("*.py"):
        text = path.read_text()
        written += len(re.findall(r"\btorch\.load\(|\bload_file\(|\bsafe_open\(", text))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                owner = node.func.value.id if isinstance(node.func, ast.Attribute) and isinstance(
                    node.func.value, ast.Name) else None
                if name in ("load_file", "safe_open") or (name == "load" and owner == "torch"):
                    calls += 1
                    assert any(k.arg == keyword[name] for k in node.keywords), f"{path}:{node.lineno}"
    assert calls == written  # no load spelled another way slipped past the check
    assert load_checkpoint.__defaults__ == ("cpu",)


def test_deterministic_on_cuda_asks_for_the_cublas_workspace(monkeypatch):
    from lstmkit.tasks.device import check_deterministic

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    check_deterministic(True, torch.device("cpu"))
    check_deterministic(False, torch.device("cuda"))
    with pytest.raises(ValueError, match="CUBLAS_WORKSPACE_CONFIG=:4096:8"):
        check_deterministic(True, torch.device("cuda"))
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    check_deterministic(True, torch.device("cuda"))
