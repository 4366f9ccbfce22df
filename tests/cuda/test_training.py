"""Training on CUDA: the trainer in each precision, checkpoints with the CUDA generator, a tiny run
of every registered task, a CUDA-trained run loaded on the CPU and exported to ONNX, and the
scikit-learn estimator's device="auto"."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lstmkit.nn import LSTM
from lstmkit.tasks.config import build
from lstmkit.tasks.registry import get_task, list_tasks
from lstmkit.tasks.trainer import TrainConfig, fit, load_train_state

from ..tasks.helpers import waves, write_npz


class _Seq(nn.Module):
    def __init__(self, **variants):
        super().__init__()
        self.lstm, self.head = LSTM(3, 32, batch_first=True, **variants), nn.Linear(32, 2)

    def forward(self, x):
        return self.head(self.lstm(x)[0].mean(1))


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, 3, generator=g)
    return x, (x[:, :, 0].sum(1) > 0).long()


def _fit(precision, checkpoint_dir=None, epochs=4, **variants):
    torch.manual_seed(0)
    model = _Seq(**variants)
    x, y = _data(128, 0)
    batches = lambda epoch: [(x[i:i + 32], y[i:i + 32]) for i in range(0, 128, 32)]  # noqa: E731  (CPU tensors)
    loss = lambda m, b: F.cross_entropy(m(b[0]).float(), b[1])  # noqa: E731
    evaluate = lambda m, b: {"loss": F.cross_entropy(m(b[0][0]).float(), b[0][1]).item()}  # noqa: E731
    config = TrainConfig(epochs=epochs, lr=0.01, progress="off", device="cuda", precision=precision,
                         early_stopping=None)
    return model, fit(model, batches, [_data(64, 1)], loss, evaluate, config, checkpoint_dir=checkpoint_dir)


@pytest.mark.parametrize("variants", [{}, {"peephole": True, "zoneout": 0.1}], ids=["fast", "variants"])
@pytest.mark.parametrize("precision", ["32", "bf16-mixed", "16-mixed"])
def test_trainer_in_each_precision(precision, variants):
    model, res = _fit(precision, **variants)
    assert next(model.parameters()).is_cuda
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in res.history)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    _, ref = _fit("32", **variants)
    assert abs(res.best["loss"] - ref.best["loss"]) < 0.1  # mixed precision trains as float32 does


def test_auto_device_is_cuda():
    assert TrainConfig().to_dict()["device"] == "auto"
    model, _ = _fit("32", epochs=1)
    assert next(model.parameters()).device.type == "cuda"


def test_checkpoint_carries_the_cuda_generator_and_reads_back_on_the_cpu(tmp_path):
    _fit("bf16-mixed", tmp_path, epochs=2)
    state = load_train_state(tmp_path)  # map_location: the CPU
    assert set(state.rng) == {"torch", "cuda"}
    assert state.rng["cuda"].device.type == "cpu" and state.rng["cuda"].dtype == torch.uint8
    assert all(v.device.type == "cpu" for v in state.model.values())
    assert state.config["precision"] == "bf16-mixed" and state.config["device"] == "cuda"
    torch.cuda.set_rng_state(state.rng["cuda"])  # a valid CUDA generator state


def test_resume_on_cuda_continues_the_run(tmp_path):
    """With recurrent dropout the masks come from the CUDA generator: the checkpoint's generator
    state, restored, makes the continuation the uninterrupted run's."""
    _, ref = _fit("32", epochs=4, recurrent_dropout=0.3)
    _fit("32", tmp_path, epochs=2, recurrent_dropout=0.3)
    torch.manual_seed(123)  # the checkpoint's generators, not these, must drive the continuation
    torch.cuda.manual_seed(123)
    model = _Seq(recurrent_dropout=0.3)
    x, y = _data(128, 0)
    batches = lambda epoch: [(x[i:i + 32], y[i:i + 32]) for i in range(0, 128, 32)]  # noqa: E731
    loss = lambda m, b: F.cross_entropy(m(b[0]).float(), b[1])  # noqa: E731
    evaluate = lambda m, b: {"loss": F.cross_entropy(m(b[0][0]).float(), b[0][1]).item()}  # noqa: E731
    config = TrainConfig(epochs=4, lr=0.01, progress="off", device="cuda", early_stopping=None)
    res = fit(model, batches, [_data(64, 1)], loss, evaluate, config, checkpoint_dir=tmp_path, resume=True)
    assert res.epochs == 4
    for a, b in zip(res.history, ref.history):  # float32 reductions on the GPU: close, not bit-equal
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


# ---------------------------------------------------------------------------- every task, tiny

def _task_configs(tmp_path) -> dict[str, dict]:
    """A tiny raw config per registered task, from the tiny configs of the tasks' own tests."""
    from lstmkit.tasks.config import apply_overrides, load_yaml, to_plain

    from ..tasks import test_caption, test_clips, test_generate, test_segment, test_superres, test_video

    train = write_npz(tmp_path / "train.npz", 60)
    test = write_npz(tmp_path / "test.npz", 20, seed=1)
    t = np.arange(96)
    rng = np.random.default_rng(0)
    y = 50 + 0.3 * t + 8 * np.sin(2 * np.pi * t / 12) + rng.standard_normal(96)
    dates = np.arange(np.datetime64("2000-01"), np.datetime64("2000-01") + 96)
    (tmp_path / "series.csv").write_text("date,sales\n" + "".join(f"{d},{v:.4f}\n" for d, v in zip(dates, y)))
    return {
        "classify": {"task": "classify", "data": {"train": str(train), "test": str(test)},
                     "model": {"name": "rnn_classifier", "hidden_size": 8}, "train": {"epochs": 2, "batch_size": 16}},
        "forecast": {"task": "forecast",
                     "data": {"path": str(tmp_path / "series.csv"), "time_column": "date", "targets": ["sales"],
                              "test_size": 12},
                     "transform": {"log": False, "seasonal_period": 12, "difference": False},
                     "model": {"head": "direct", "hidden_size": 8}, "train": {"epochs": 2, "batch_size": 4},
                     "val_size": 12, "evaluate": {"horizon": 6, "stride": 3, "season": 12, "baselines": ["naive"]}},
        "generate": {**test_generate.TINY, "task": "generate"},
        "superres": {**test_superres.TINY, "task": "superres"},
        "video": test_video.TINY,
        "action": {**test_clips.ACTION, "task": "action"},
        "volume": {**test_clips.VOLUME, "task": "volume"},
        "caption": to_plain(apply_overrides(load_yaml(str(test_caption.PRESET)), list(test_caption.TINY))),
        "segment": test_segment.TINY,
    }


@pytest.mark.parametrize("task", [t.name for t in list_tasks()])
def test_every_task_trains_a_tiny_run_on_cuda(task, tmp_path):
    if task == "forecast":
        pytest.importorskip("statsmodels")
    raw = _task_configs(tmp_path).get(task)
    assert raw is not None, f"no tiny config for the task {task!r}: add one to _task_configs"
    raw = {**raw, "train": {**raw.get("train", {}), "device": "cuda", "epochs": 1, "progress": "off"}}
    spec = get_task(task)
    metrics = spec.train(build(spec.config, raw), tmp_path / "run")
    assert (tmp_path / "run" / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved and json.loads(json.dumps(metrics)) == saved


def test_cuda_trained_run_loads_on_cpu_and_exports_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    from lstmkit.export import export_onnx
    from lstmkit.tasks.classify import load_classifier

    raw = _task_configs(tmp_path)["classify"]
    raw = {**raw, "model": {"name": "rnn_classifier", "hidden_size": 8, "num_layers": 2, "pooling": "attention"},
           "train": {**raw["train"], "device": "cuda", "progress": "off"}}
    spec = get_task("classify")
    spec.train(build(spec.config, raw), tmp_path / "run")
    clf = load_classifier(tmp_path / "run")  # on the CPU
    assert all(p.device.type == "cpu" for p in clf.model.parameters())
    desc = export_onnx(tmp_path / "run", tmp_path / "model.onnx")
    assert desc["preprocessing"]["inputs"] == "raw"
    import onnxruntime as ort

    X, lengths, _ = waves(5, seed=3)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"x": X, "lengths": lengths.astype(np.int64)})
    proba = torch.softmax(torch.from_numpy(logits).double(), 1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba([x[:n] for x, n in zip(X, lengths)]), rtol=0, atol=1e-5)


def test_sklearn_estimator_auto_device_trains_on_cuda(tmp_path):
    pytest.importorskip("sklearn")
    from lstmkit.sklearn import LSTMClassifier

    X, lengths, y = waves(60)
    est = LSTMClassifier(hidden_size=8, epochs=2, random_state=0)
    assert est.device == "auto"
    est.fit(X, y, lengths=lengths)
    assert next(est.classifier_.model.parameters()).is_cuda
    est.save(tmp_path / "est")
    back = LSTMClassifier.load(tmp_path / "est")  # on the CPU
    assert next(back.classifier_.model.parameters()).device.type == "cpu"
    np.testing.assert_allclose(back.predict_proba(X, lengths), est.predict_proba(X, lengths), atol=1e-6)


def test_batches_move_from_pinned_memory_and_fp16_gets_a_scaler():
    from lstmkit.tasks.device import grad_scaler, to_device

    cuda = torch.device("cuda")
    x, y = torch.randn(64, 12, 3), torch.arange(64)
    moved = to_device((x, y, None), cuda)
    assert moved[0].is_cuda and moved[1].is_cuda and moved[2] is None
    torch.cuda.synchronize()
    assert torch.equal(moved[0].cpu(), x) and torch.equal(moved[1].cpu(), y)
    scaler = grad_scaler(cuda, "16-mixed")
    assert scaler is not None and scaler.is_enabled()
    assert grad_scaler(cuda, "bf16-mixed") is None
