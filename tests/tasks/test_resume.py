"""Crash-safe training: checkpoints round-trip, a resumed run equals the uninterrupted one bit for
bit, a killed ``lstmkit train`` continues, damaged checkpoints are refused, NaN keeps the last
good checkpoint."""

import importlib.util
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lstmkit.data.collate import SequenceBatches
from lstmkit.tasks.trainer import MANIFEST, TrainConfig, TrainState, fit, load_train_state, save_train_state

from .helpers import as_logged, tensorboard_rows


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


X, Y = _data(64, 0)
VAL = [_data(32, 1)]


def _batches(epoch):  # the order is a function of the epoch, as SequenceBatches' is
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(epoch))
    return [(X[perm[i : i + 16]], Y[perm[i : i + 16]]) for i in range(0, len(X), 16)]


def _loss(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def _eval(model, batches):
    x, y = batches[0]
    logits = model(x)
    return {"loss": F.cross_entropy(logits, y).item(), "accuracy": (logits.argmax(1) == y).float().mean().item()}


def _model(hidden=16):
    torch.manual_seed(0)  # dropout makes the torch generator part of the state
    return nn.Sequential(nn.Linear(4, hidden), nn.Dropout(0.3), nn.Linear(hidden, 2))


CONFIG = dict(epochs=12, lr=0.05, progress="off", deterministic=True, plateau_patience=0, early_stopping=None)


def _fit(checkpoint_dir=None, resume=False, callbacks=(), loss=_loss, batches=_batches, model=None, log_dir=None,
         **config):
    model = model or _model()
    result = fit(model, batches, VAL, loss, _eval, TrainConfig(**{**CONFIG, **config}), callbacks=callbacks,
                 checkpoint_dir=checkpoint_dir, resume=resume, log_dir=log_dir)
    return model, result


def _crash_at(epoch):
    def callback(e, row):
        if e == epoch:
            raise KeyboardInterrupt(f"simulated crash in epoch {e}")
    return callback


def test_state_round_trips_optimizer_scheduler_and_rng(tmp_path):
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    for value in (1.0, 2.0, 3.0, 4.0):  # one improvement, then bad epochs: counters and a reduced lr
        _loss(model, (X, Y)).backward()
        opt.step()
        plateau.step(value)
    torch.rand(3)
    rng = torch.get_rng_state()
    best = {k: v.clone() + 1 for k, v in model.state_dict().items()}
    history = [{"epoch": 1, "train_loss": 0.5, "val_loss": math.nan}, {"epoch": 2, "train_loss": math.inf}]
    state = TrainState(4, model.state_dict(), best, opt.state_dict(), plateau.state_dict(), {"torch": rng}, history,
                       -math.inf, 1, {"loss": 0.25}, 3, False, 1.5, TrainConfig().to_dict())
    save_train_state(tmp_path, state)
    back = load_train_state(tmp_path)

    assert back.path == tmp_path / "epoch-000004" and json.loads((tmp_path / MANIFEST).read_text())["epoch"] == 4
    for ours, theirs in ((back.model, model.state_dict()), (back.best_model, best)):
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    fresh = _model(16)
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=0.01)
    opt2.load_state_dict(back.optimizer)
    want, got = opt.state_dict(), opt2.state_dict()
    assert got["param_groups"] == want["param_groups"] and isinstance(got["param_groups"][0]["betas"], tuple)
    for i, entries in want["state"].items():
        assert entries.keys() == got["state"][i].keys()
        assert all(torch.equal(entries[k], got["state"][i][k]) for k in entries)  # moments and step counts
    plateau2 = torch.optim.lr_scheduler.ReduceLROnPlateau(opt2)
    plateau2.load_state_dict(back.scheduler)
    assert plateau2.state_dict() == plateau.state_dict()  # best, num_bad_epochs, inf mode_worse, lrs
    assert plateau.num_bad_epochs == 1 and opt2.param_groups[0]["lr"] == 0.005
    torch.manual_seed(123)
    torch.set_rng_state(back.rng["torch"])
    after = torch.rand(5)
    torch.set_rng_state(rng)
    assert torch.equal(after, torch.rand(5))
    assert math.isnan(back.history[0]["val_loss"]) and back.history[1]["train_loss"] == math.inf
    assert back.history[0]["train_loss"] == 0.5 and back.best_value == -math.inf
    assert (back.epoch, back.best_epoch, back.best, back.since_best, back.seconds) == (4, 1, {"loss": 0.25}, 3, 1.5)
    assert back.config == TrainConfig().to_dict()


@pytest.mark.parametrize("ema", [None, 0.5])
def test_resume_after_a_crash_equals_the_uninterrupted_run(tmp_path, ema):
    reference, ref = _fit(ema=ema)  # no checkpoints written at all
    assert len({row["lr"] for row in ref.history}) > 2  # the plateau scheduler's state matters
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, checkpoint_every=2, callbacks=[_crash_at(7)], ema=ema)
    assert load_train_state(tmp_path).epoch == 6 and [p.name for p in tmp_path.glob("epoch-*")] == ["epoch-000006"]
    # the weight average is part of the state (train.ema): its weights and its update count
    assert sorted(load_train_state(tmp_path).ema) == ([] if ema is None else ["module.0.bias", "module.0.weight",
                                                                             "module.2.bias", "module.2.weight",
                                                                             "n_averaged"])
    model, res = _fit(tmp_path, resume=True, checkpoint_every=2, ema=ema)
    assert res.history == ref.history  # every float equal, not close
    assert (res.best_epoch, res.best, res.epochs, res.stopped_early) == (ref.best_epoch, ref.best, 12, False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    assert load_train_state(tmp_path).epoch == 12  # the last epoch is always written
    # a checkpoint of a finished run gives its result back without training
    again, res2 = _fit(tmp_path, resume=True, callbacks=[_crash_at(13)], ema=ema)
    assert res2.history == ref.history and res2.best_epoch == ref.best_epoch
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), reference.state_dict().values()))


def test_a_resumed_run_appends_to_its_tensorboard_log_which_shows_the_uninterrupted_history(tmp_path):
    pytest.importorskip("tensorboard")
    _, ref = _fit()
    log_dir = tmp_path / "tensorboard"
    with pytest.raises(KeyboardInterrupt):  # epoch 7 is logged, then lost: the checkpoint is epoch 6's
        _fit(tmp_path / "ckpt", checkpoint_every=2, callbacks=[_crash_at(7)], logger="tensorboard", log_dir=log_dir)
    assert tensorboard_rows(log_dir) == as_logged(ref.history[:7])
    _, res = _fit(tmp_path / "ckpt", resume=True, checkpoint_every=2, logger="tensorboard", log_dir=log_dir)
    assert res.history == ref.history
    assert tensorboard_rows(log_dir) == as_logged(ref.history)  # epoch 7 once: the first run's is purged
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 2
    # the logger is no part of the checkpoint's config: a run may be resumed with another one
    _, res = _fit(tmp_path / "ckpt", resume=True, checkpoint_every=2)
    assert res.history == ref.history


def test_resume_keeps_early_stopping_and_checkpoint_cadence(tmp_path):
    config = dict(epochs=40, lr=1e-6, early_stopping=7, monitor="val_accuracy")
    reference, ref = _fit(**config)
    assert ref.stopped_early and ref.epochs < 40
    seen = []  # the checkpointed epoch visible while each epoch runs
    manifest = tmp_path / "a" / MANIFEST
    crash = ref.epochs - 1
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "a", checkpoint_every=3, callbacks=[
            lambda e, row: seen.append(json.loads(manifest.read_text())["epoch"] if manifest.exists() else 0),
            _crash_at(crash)], **config)
    assert crash > 4 and seen == [3 * ((e - 1) // 3) for e in range(1, crash + 1)]
    model, res = _fit(tmp_path / "a", resume=True, checkpoint_every=3, **config)
    assert res.history == ref.history and res.stopped_early and res.best_epoch == ref.best_epoch
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    assert load_train_state(tmp_path / "a").stopped_early  # the early-stopped epoch was written


def test_batch_order_is_a_function_of_seed_and_epoch():
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((int(n), 2)).astype(np.float32) for n in rng.integers(3, 12, 40)]
    labels = rng.integers(0, 2, 40)
    ran = SequenceBatches(seqs, labels, 8, shuffle=True, seed=5)
    for epoch in (1, 2):
        list(ran.batches(epoch))
    fresh = SequenceBatches(seqs, labels, 8, shuffle=True, seed=5)
    for a, b in zip(ran.batches(3), fresh.batches(3), strict=True):
        assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    epoch_now = {}

    def batches(epoch):
        epoch_now["epoch"] = epoch
        return _batches(epoch)

    def loss(model, batch):
        value = _loss(model, batch)
        return value * math.nan if epoch_now["epoch"] >= 3 else value

    with pytest.raises(FloatingPointError, match=r"epoch 3: training loss or gradient norm is NaN/inf .*epoch 3 "
                       r"was not saved and the last good checkpoint \(epoch 2, .*epoch-000002\) was kept; lower train.lr"):
        _fit(tmp_path, loss=loss, batches=batches)
    assert [p.name for p in tmp_path.glob("epoch-*")] == ["epoch-000002"]
    state = load_train_state(tmp_path)
    assert state.epoch == 2 and all(torch.isfinite(v).all() for v in state.model.values())
    _, res = _fit(tmp_path, resume=True, epochs=4)  # loadable: training continues from it
    assert [row["epoch"] for row in res.history] == [1, 2, 3, 4]
    with pytest.raises(FloatingPointError, match="epoch 1: .*no checkpoint had been written yet; lower train.lr"):
        _fit(tmp_path / "b", loss=lambda m, b: _loss(m, b) * math.nan)
    with pytest.raises(FloatingPointError, match=r"epoch 1: [^;]*\(loss nan\); lower train.lr"):
        _fit(loss=lambda m, b: _loss(m, b) * math.nan)  # without checkpoints, no word about them


def _pristine(tmp_path):
    _fit(tmp_path / "good", epochs=2)
    return tmp_path / "good"


@pytest.mark.parametrize("damage, message", [
    ("truncate", r"model.safetensors is \d+ bytes but the manifest records \d+: truncated or replaced"),
    ("flip", r"model.json does not match the SHA-256 in the manifest"),
    ("manifest", r"latest.json is not valid JSON"),
    ("missing", r"epoch-000002/model.safetensors is missing"),
    ("pickle", r"is a Python pickle, refused without unpickling"),
])
def test_damaged_checkpoint_is_refused(tmp_path, damage, message):
    ckpt = _pristine(tmp_path)
    weights, meta = ckpt / "epoch-000002" / "model.safetensors", ckpt / "epoch-000002" / "model.json"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif damage == "flip":
        text = meta.read_bytes()
        meta.write_bytes(text.replace(b'"epoch": 2', b'"epoch": 3', 1))
    elif damage == "manifest":
        (ckpt / MANIFEST).write_text('{"format": "lstmkit-train-st')
    elif damage == "missing":
        weights.unlink()
    else:  # a pickle put in place of the weights, with a manifest forged to match it
        import hashlib

        blob = pickle.dumps({"x": 1})
        weights.write_bytes(blob)
        manifest = json.loads((ckpt / MANIFEST).read_text())
        manifest["files"]["model.safetensors"] = {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
        (ckpt / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=f"training checkpoint .* refused: .*{message}"):
        _fit(ckpt, resume=True)


def test_mismatched_checkpoint_is_refused(tmp_path):
    ckpt = _pristine(tmp_path)
    with pytest.raises(ValueError, match=r"another training config: lr 0.05 there, 0.01 here"):
        _fit(ckpt, resume=True, lr=0.01)
    with pytest.raises(ValueError, match=r"does not fit this model"):
        _fit(ckpt, resume=True, model=_model(hidden=8))
    with pytest.raises(ValueError, match=r"at epoch 2, past config.epochs=1"):
        _fit(ckpt, resume=True, epochs=1)
    with pytest.raises(ValueError, match=r"another training config: ema None there, 0.5 here"):
        _fit(ckpt, resume=True, ema=0.5)
    state = load_train_state(ckpt)  # a train.ema run's checkpoint without its average cannot continue
    state.config["ema"] = 0.5
    with pytest.raises(ValueError, match=r"does not fit this model"):
        _fit(resume=state, ema=0.5)
    with pytest.raises(FileNotFoundError, match="no training checkpoint in .*latest.json is missing"):
        _fit(tmp_path / "none", resume=True)


def test_checkpoint_options_are_validated():
    for bad in (0, -1, 1.5, True, None):
        with pytest.raises(ValueError, match=f"checkpoint_every must be an int >= 1, got {bad!r}"):
            TrainConfig(checkpoint_every=bad)
    assert TrainConfig(checkpoint_every=5).checkpoint_every == 5
    with pytest.raises(ValueError, match="resume=True needs the checkpoint_dir"):
        _fit(resume=True)
    with pytest.raises(ValueError, match="do not apply to a replayed lr_schedule"):
        fit(_model(), _batches, [], _loss, _eval, TrainConfig(progress="off"), lr_schedule=[0.01], checkpoint_dir="x")
    with pytest.raises(TypeError, match="resume must be a bool or a TrainState"):
        _fit(resume="yes")


# ------------------------------------------------------------------- a real crash of the CLI

TINY = """\
task: classify
data:
  name: digits
model:
  name: rnn_classifier
  hidden_size: 8
  dropout: 0.2
train:
  epochs: 14
  batch_size: 64
  lr: 0.01
  early_stopping: null
  plateau_patience: 2
  deterministic: true
  device: cpu
  progress: "off"
"""


def _stopped_cli_run(tmp_path, sig: int, at_epoch: int) -> tuple:
    """``lstmkit train`` of :data:`TINY` in a subprocess, sent ``sig`` once a checkpoint of epoch >=
    ``at_epoch`` exists; returns (process, config path, run directory, stderr text)."""
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(TINY)
    run, log = tmp_path / "run", tmp_path / "stderr.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "lstmkit", "train", str(config_path), "--out", str(run)],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            deadline, epoch = time.monotonic() + 240, 0
            while epoch < at_epoch:
                assert proc.poll() is None, f"the run ended before it was stopped: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"no checkpoint of epoch >= {at_epoch} within 240 s"
                try:
                    epoch = json.loads((run / "checkpoint" / MANIFEST).read_text())["epoch"]
                except (FileNotFoundError, json.JSONDecodeError):
                    pass
                time.sleep(0.01)
            proc.send_signal(sig)
            proc.wait(timeout=60)
        finally:
            proc.kill()
            proc.wait()
    return proc, config_path, run, log.read_text()


def test_killed_cli_run_resumes_to_the_uninterrupted_result(tmp_path):
    from lstmkit.tasks.classify import ClassifyConfig, train_classifier
    from lstmkit.tasks.lifecycle import resume_run
    from lstmkit.tasks.config import build, load_yaml

    proc, config_path, run, _ = _stopped_cli_run(tmp_path, signal.SIGKILL, 2)
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_train_state(run / "checkpoint").epoch
    assert 2 <= killed_at < 14 and not (run / "metrics.json").exists()  # it died in the middle of training

    config = build(ClassifyConfig, load_yaml(config_path))
    other = build(ClassifyConfig, {**load_yaml(config_path), "train": {**load_yaml(config_path)["train"], "lr": 0.02}})
    with pytest.raises(ValueError, match=r"differs from the config given to resume: train.lr 0.01 there, 0.02 here"):
        train_classifier(other, run, resume=True)
    resumed = resume_run(run, "classify")
    reference = train_classifier(config, tmp_path / "reference")
    timing = ("train_seconds", "predict_seconds")  # the run's and each baseline's (MiniRocket, 1-NN DTW) wall times
    drop = lambda m: {k: ({b: {x: y for x, y in r.items() if x not in timing} for b, r in v.items()}  # noqa: E731
                          if k == "baselines" else v) for k, v in m.items() if k != "train_seconds"}
    assert drop(resumed) == drop(reference)
    for name in ("metrics.json", "history.json"):
        a, b = json.loads((run / name).read_text()), json.loads((tmp_path / "reference" / name).read_text())
        assert (drop(a) if name == "metrics.json" else a) == (drop(b) if name == "metrics.json" else b), name
    assert (run / "model.safetensors").read_bytes() == (tmp_path / "reference" / "model.safetensors").read_bytes()
    assert not (run / "checkpoint").exists()  # removed once the run directory is complete
    with pytest.raises(ValueError, match="is a finished run .*nothing to resume"):
        resume_run(run, "classify")


def test_foreign_directories_do_not_resume(tmp_path):
    from functools import partial

    from lstmkit.tasks.lifecycle import resume_run

    resume_classifier, resume_segmenter = partial(resume_run, task="classify"), partial(resume_run, task="segment")

    (tmp_path / "fc").mkdir()
    (tmp_path / "fc" / "config.yaml").write_text("task: forecast\n")
    for resume, name in ((resume_classifier, "classify"), (resume_segmenter, "segment")):
        with pytest.raises(ValueError, match=f"is a 'forecast' run, not a '{name}' one"):
            resume(tmp_path / "fc")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.yaml").write_text("task: forcast\n")
    with pytest.raises(ValueError, match=r"unknown task 'forcast'; did you mean 'forecast'\?"):
        resume_classifier(tmp_path / "odd")
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "config.yaml").write_text("task: classify\n")
    with pytest.raises(ValueError, match="is a 'classify' run, not a 'segment' one"):
        resume_segmenter(tmp_path / "cls")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no config.yaml: not a run directory that can be resumed"):
        resume_classifier(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resume_classifier(tmp_path / "nowhere")
    (tmp_path / "empty" / "config.yaml").write_text(TINY)  # killed before its first checkpoint
    with pytest.raises(ValueError, match="has no checkpoint: the run stopped before its first one was written"):
        resume_classifier(tmp_path / "empty")


def _interrupted(monkeypatch, module, crash_in, start) -> list:
    """Call ``start()`` with ``module.fit`` dying after epoch 2 of the first fit whose checkpoint
    directory ``crash_in(directory)`` picks; returns the checkpoint directories of the fits begun."""
    real_fit, calls = module.fit, []

    def crashing_fit(*args, **kwargs):
        calls.append(kwargs["checkpoint_dir"])
        if crash_in(calls[-1]) and not any(crash_in(d) for d in calls[:-1]):
            kwargs["callbacks"] = [_crash_at(2)]
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(module, "fit", crashing_fit)
    with pytest.raises(KeyboardInterrupt):
        start()
    monkeypatch.setattr(module, "fit", real_fit)
    return calls


def _vision_configs():
    """(task, raw config) of every resumable vision task, from the tiny configs of their own tests."""
    from lstmkit.tasks.config import apply_overrides, load_yaml, to_plain
    from tests.tasks import test_caption, test_clips, test_generate, test_superres, test_video

    caption = to_plain(apply_overrides(load_yaml(str(test_caption.PRESET)), list(test_caption.TINY)))
    return {"generate": {**test_generate.TINY, "task": "generate"},
            "superres": {**test_superres.TINY, "task": "superres"},
            "video": test_video.TINY,
            "action": {**test_clips.ACTION, "task": "action"},
            "volume": {**test_clips.VOLUME, "task": "volume"},
            "caption": caption}


TIMING = ("train_seconds", "cpu_seconds", "wall_seconds", "train_cpu_seconds")


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMING}
    return value


@pytest.mark.parametrize("task", ["generate", "superres", "video", "action", "volume", "caption"])
def test_every_vision_task_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, task):
    """A run killed in its first model's second epoch continues with ``lstmkit train --resume`` to
    the metrics and weights of a run never interrupted (deterministic mode), then has no checkpoint."""
    import importlib

    from lstmkit.cli import _check_out, main
    from lstmkit.tasks.config import build
    from lstmkit.tasks.registry import get_task

    raw = _vision_configs()[task]
    raw = {**raw, "train": {**raw["train"], "epochs": 3, "deterministic": True, "early_stopping": None}}
    config_cls, train = get_task(task).config, get_task(task).train
    reference = train(build(config_cls, raw), tmp_path / "reference")
    run = tmp_path / "run"
    calls = _interrupted(monkeypatch, importlib.import_module("lstmkit.tasks.lifecycle"), lambda d: True,
                         lambda: train(build(config_cls, raw), run))
    assert load_train_state(calls[0]).epoch == 1 and not (run / "metrics.json").exists()
    with pytest.raises(ValueError, match="--out .* holds an interrupted run"):  # a new run may not overwrite it
        _check_out(run)
    assert main(["-q", "train", "--resume", str(run)]) == 0
    resumed = json.loads((run / "metrics.json").read_text())
    assert _untimed(resumed) == _untimed(json.loads(json.dumps(reference)))
    assert (run / "model.safetensors").read_bytes() == (tmp_path / "reference" / "model.safetensors").read_bytes()
    assert not (run / "checkpoint").exists()
    with pytest.raises(ValueError, match="is a finished run .*nothing to resume"):
        train(build(config_cls, raw), run, resume=True)


@pytest.mark.parametrize("crash_in", ["model", "baseline"])
def test_segment_run_resumes_from_a_crash_in_either_model(tmp_path, monkeypatch, crash_in):
    """Killed in either model's training, a segmentation run finishes with the same metrics,
    histories and weights as a run never interrupted (deterministic mode)."""
    import lstmkit.tasks.lifecycle as lifecycle
    from lstmkit.cli import main
    from lstmkit.tasks.config import build
    from lstmkit.tasks.lifecycle import resume_run
    from lstmkit.tasks.segment import SegmentConfig, train_segmenter
    from tests.tasks.test_segment import TINY

    logger = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"  # the dev extra has it
    raw = {**TINY, "data": {**TINY["data"], "fresh_scenes": True, "rotate": 10},
           "train": {**TINY["train"], "epochs": 3, "deterministic": True, "logger": logger}}
    reference = train_segmenter(build(SegmentConfig, raw), tmp_path / "reference")
    run = tmp_path / "run"
    role = {"model": "model", "baseline": "baselines/fcn_segmenter"}[crash_in]  # RUN/checkpoint/<role>
    _interrupted(monkeypatch, lifecycle, lambda d: d == run / "checkpoint" / role,
                 lambda: train_segmenter(build(SegmentConfig, raw), run))
    assert not (run / "metrics.json").exists() and (run / "checkpoint" / role / MANIFEST).is_file()
    other = {**raw, "train": {**raw["train"], "lr": 0.5}}
    with pytest.raises(ValueError, match=r"differs from the config given to resume: train.lr 0.001 there, 0.5 here"):
        train_segmenter(build(SegmentConfig, other), run, resume=True)
    if crash_in == "model":
        resumed = resume_run(run, "segment")
    else:  # through the CLI, which picks the task from the run's config.yaml
        assert main(["-q", "train", "--resume", str(run)]) == 0
        resumed = json.loads((run / "metrics.json").read_text())
    assert _untimed(resumed) == _untimed(reference)
    for name in ("model.safetensors", "baselines/fcn_segmenter/model.safetensors"):
        assert (run / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    for name in ("history.json", "baselines/fcn_segmenter/history.json"):  # every float equal (the rows' key order may differ)
        assert json.loads((run / name).read_text()) == json.loads((tmp_path / "reference" / name).read_text()), name
    if logger == "tensorboard":  # each model's epochs once, as history.json has them, the interrupted ones purged
        for role, name in (("model", "history.json"),
                           ("baselines/fcn_segmenter", "baselines/fcn_segmenter/history.json")):
            assert tensorboard_rows(run / "tensorboard" / role) == as_logged(json.loads((run / name).read_text()))
    assert not (run / "checkpoint").exists()  # removed once the run directory is complete
    with pytest.raises(ValueError, match="is a finished run .*nothing to resume"):
        resume_run(run, "segment")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_cli_run_says_so_and_prints_the_resume_command(tmp_path, sig):
    """SIGTERM (a scheduler's stop) or Ctrl-C in the middle of training: exit 128 + signal, the
    checkpoint kept, and the exact command that continues the run on stderr."""
    proc, _, run, text = _stopped_cli_run(tmp_path, sig, 1)
    assert proc.returncode == 128 + sig, text[-2000:]
    name = "SIGTERM" if sig == signal.SIGTERM else "Ctrl-C"
    assert f"interrupted ({name}); continue it with:\n  lstmkit train --resume {run}\n" in text
    assert "Traceback" not in text
    assert (run / "checkpoint" / MANIFEST).is_file() and not (run / "metrics.json").exists()


def test_a_run_stopped_before_its_first_checkpoint_says_there_is_nothing_to_resume(tmp_path, monkeypatch, capsys):
    import lstmkit.cli as cli

    def stopped(config, out, resume=False):
        out.mkdir(parents=True, exist_ok=True)
        raise cli.Interrupted()

    monkeypatch.setattr(cli, "_task", lambda name: SimpleNamespace(train=stopped, multi_process=None))
    monkeypatch.setattr(cli, "resolve_config", lambda path, overrides: (SimpleNamespace(train=TrainConfig()), "classify"))
    with pytest.raises(SystemExit) as stop:
        cli.main(["-q", "train", "whatever.yaml", "--out", str(tmp_path / "run")])
    assert stop.value.code == 128 + signal.SIGTERM
    assert "interrupted (SIGTERM); it had written no checkpoint yet, so there is nothing to resume" \
        in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing half-written is left
