import math
import re
import sys

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lstmkit.tasks.trainer import TrainConfig, fit

from .helpers import as_logged, tensorboard_rows


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def _loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def _eval(model, batches):
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    logits = model(x)
    return {"loss": F.cross_entropy(logits, y).item(), "accuracy": (logits.argmax(1) == y).float().mean().item()}


def _run(config, model=None, loss=_loss, seed=0, **kwargs):
    x, y = _data(seed=seed)
    xv, yv = _data(32, seed=seed + 1)
    model = model or nn.Linear(4, 2)
    batches = lambda epoch: [(x[i : i + 16], y[i : i + 16]) for i in range(0, len(x), 16)]  # noqa: E731
    return model, fit(model, batches, [(xv, yv)], loss, _eval, config, **kwargs)


def test_fit_learns_logs_and_keeps_the_best_weights():
    model, res = _run(TrainConfig(epochs=25, lr=0.05, progress="off", early_stopping=None))
    assert res.epochs == len(res.history) == 25
    row = res.history[0]
    for key in ("train_loss", "val_loss", "val_accuracy", "lr", "grad_norm_mean", "grad_norm_max", "clipped_fraction"):
        assert math.isfinite(row[key]), key
    assert res.history[-1]["train_loss"] < row["train_loss"]
    best = min(res.history, key=lambda h: h["val_loss"])
    assert res.best_epoch == best["epoch"]
    xv, yv = _data(32, seed=1)
    with torch.no_grad():  # the model ends holding the best epoch's weights
        assert _eval(model, [(xv, yv)])["loss"] == pytest.approx(best["val_loss"], rel=1e-6)


def test_monitor_accuracy_selects_by_accuracy():
    _, res = _run(TrainConfig(epochs=15, lr=0.05, progress="off", monitor="val_accuracy", early_stopping=None))
    best = max(h["val_accuracy"] for h in res.history)
    assert res.history[res.best_epoch - 1]["val_accuracy"] == best
    assert all(h["val_accuracy"] < best for h in res.history[: res.best_epoch - 1])


def test_a_monitor_the_validation_does_not_report_is_an_error():
    with pytest.raises(ValueError, match=r"train.monitor 'val_miou' is not reported by this task's validation; "
                                         r"choose one of val_loss, val_accuracy"):
        _run(TrainConfig(epochs=2, progress="off", monitor="val_miou"))


def test_early_stopping_and_plateau():
    # lr so small nothing improves after the first epochs: the plateau halves lr, then we stop
    _, res = _run(TrainConfig(epochs=200, lr=1e-7, min_lr=1e-9, progress="off", early_stopping=3, plateau_patience=0,
                              monitor="val_accuracy"))
    assert res.stopped_early and res.epochs < 200
    assert res.epochs - res.best_epoch == 3
    assert res.history[-1]["lr"] < res.history[0]["lr"]


def test_clipping_is_applied_and_reported():
    _, res = _run(TrainConfig(epochs=2, lr=0.1, clip_norm=1e-4, progress="off"))
    assert res.history[0]["clipped_fraction"] == 1.0
    _, res = _run(TrainConfig(epochs=2, lr=0.1, clip_norm=None, progress="off"))
    assert res.history[0]["clipped_fraction"] == 0.0


def test_nan_loss_raises_with_advice():
    def bad_loss(model, batch):
        return _loss(model, batch) * float("nan")

    with pytest.raises(FloatingPointError, match="NaN/inf.*lower train.lr"):
        _run(TrainConfig(epochs=3, progress="off"), loss=bad_loss)


def test_same_seed_same_result_and_deterministic_flag_restored():
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
        _, res = _run(TrainConfig(epochs=4, progress="off", deterministic=True), model=model)
        runs.append([h["train_loss"] for h in res.history])
    assert runs[0] == runs[1]
    assert not torch.are_deterministic_algorithms_enabled()


def test_log_lines_when_not_a_terminal(caplog):
    with caplog.at_level("INFO", logger="lstmkit"):
        _run(TrainConfig(epochs=2, progress="log"))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 2 and "val_loss" in lines[0] and "grad_norm" in lines[0]
    # elapsed time and an estimate of the time left, as the bar shows; the last epoch has none left
    assert re.search(r" · elapsed 0:\d\d, ~0:\d\d left$", lines[0]), lines[0]
    assert re.search(r" · elapsed 0:\d\d$", lines[1]), lines[1]


def test_timing_text_counts_hours_minutes_seconds():
    from lstmkit.tasks.loggers import _timing

    assert _timing(42.4, 1, 3) == "elapsed 0:42, ~2:07 left"
    assert _timing(3725, 5, 5) == "elapsed 1:02:05, ~1:02:05 left"
    assert _timing(59.6, 2, 0) == "elapsed 1:00"


def test_progress_bar_on_request(capsys):
    _run(TrainConfig(epochs=3, progress="bar"))
    err = capsys.readouterr().err
    assert "3/3" in err and "best@" in err


def test_lr_schedule_replays_epochs_without_validation():
    from lstmkit.tasks.trainer import TrainConfig, fit

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    loss = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()  # noqa: E731
    cfg = TrainConfig(epochs=50, progress="off", early_stopping=1)
    result = fit(model, lambda e: [(x, y)], [], loss, lambda m, b: {"loss": 0.0}, cfg, lr_schedule=[0.1, 0.05, 0.01])
    assert [r["lr"] for r in result.history] == [0.1, 0.05, 0.01] and result.epochs == 3 and not result.stopped_early
    with pytest.raises(ValueError, match="lr_schedule must be a non-empty list"):
        fit(model, lambda e: [(x, y)], [], loss, lambda m, b: {"loss": 0.0}, cfg, lr_schedule=[])


def test_callbacks_see_every_epoch_row_and_can_stop_training():
    seen = []
    x, y = _data()
    batches = lambda epoch: [(x, y)]  # noqa: E731
    fit(nn.Linear(4, 2), batches, [(x, y)], _loss, _eval, TrainConfig(epochs=4, progress="off"),
        callbacks=[lambda epoch, row: seen.append((epoch, row["val_loss"]))])
    assert [e for e, _ in seen] == [1, 2, 3, 4] and all(math.isfinite(v) for _, v in seen)

    class Stop(Exception):
        pass

    def stop_at_two(epoch, row):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        fit(nn.Linear(4, 2), batches, [(x, y)], _loss, _eval, TrainConfig(epochs=4, progress="off"),
            callbacks=[stop_at_two])


# ------------------------------------------------------------------------------ loggers

def test_tensorboard_logger_writes_every_history_row(tmp_path):
    pytest.importorskip("tensorboard")
    _, res = _run(TrainConfig(epochs=4, progress="off", logger="tensorboard"), log_dir=tmp_path / "tb")
    rows = tensorboard_rows(tmp_path / "tb")
    assert rows == as_logged(res.history) and len(rows) == 4
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "grad_norm_mean", "grad_norm_max",
            "clipped_fraction"} <= set(rows[0])


def test_logger_is_validated_and_needs_a_log_dir():
    with pytest.raises(ValueError, match=r"logger must be one of 'none', 'tensorboard', got 'x'"):
        TrainConfig(logger="x")
    with pytest.raises(ValueError, match=r"train.logger 'tensorboard' needs a log directory, and this caller of fit "
                                         r"gives none \(log_dir=None\); pass log_dir, or set train.logger to 'none'"):
        _run(TrainConfig(epochs=1, progress="off", logger="tensorboard"))


def test_tensorboard_missing_names_the_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what an install without it sees
    with pytest.raises(ImportError, match=r"train.logger 'tensorboard' needs the tensorboard package: "
                                          r"pip install 'lstmkit\[tensorboard\]'"):
        _run(TrainConfig(epochs=1, progress="off", logger="tensorboard"), log_dir=tmp_path)


def test_tensorboard_writer_is_closed_when_fit_raises(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    from lstmkit.tasks import loggers

    closed = []

    class Recording(SummaryWriter):
        def close(self):
            closed.append(self.log_dir)
            super().close()

    def stop_at_two(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loggers, "_summary_writer", lambda: Recording)
    with pytest.raises(KeyboardInterrupt):
        _run(TrainConfig(epochs=4, progress="off", logger="tensorboard"), log_dir=tmp_path, callbacks=[stop_at_two])
    assert closed == [str(tmp_path)]
    assert [row["epoch"] for row in tensorboard_rows(tmp_path)] == [1, 2]


def _steps_recorded(model, batches, after_step):
    """batches whose generator records the model's weights after each optimizer step (it resumes after
    the step its batch was used for)."""
    def gen(epoch):
        for b in batches:
            yield b
            after_step.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return gen


def _average(steps, decay):
    ema = dict(steps[0])  # the first update copies the weights
    for w in steps[1:]:
        ema = {k: decay * ema[k] + (1 - decay) * w[k] for k in ema}
    return ema


@pytest.mark.parametrize("replay", [False, True])
def test_ema_validates_keeps_and_ends_with_the_weight_average(replay):
    """train.ema: after every optimizer step the average moves towards the weights by (1 - decay); the
    epoch is validated on the average and the model ends holding it (a fit's best epoch, a replay's last)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))  # buffers are averaged too
    x, y = _data()
    xv, yv = _data(32, seed=1)
    steps = []
    batches = _steps_recorded(model, [(x[i: i + 16], y[i: i + 16]) for i in range(0, len(x), 16)], steps)
    cfg = TrainConfig(epochs=1, lr=0.05, progress="off", ema=0.7)
    res = fit(model, batches, [(xv, yv)], _loss, _eval, cfg, lr_schedule=[0.05] if replay else None)
    assert len(steps) == 4
    expected = _average(steps, 0.7)
    assert not torch.allclose(expected["0.weight"], steps[-1]["0.weight"])  # the average is not the last weights
    state = model.state_dict()
    floats = [k for k in expected if state[k].is_floating_point()]  # BatchNorm's running mean and var among them
    assert len(floats) == 8 and all(torch.allclose(state[k], expected[k], atol=1e-6) for k in floats)
    model.eval()
    with torch.no_grad():
        assert res.history[0]["val_loss"] == pytest.approx(_eval(model, [(xv, yv)])["loss"], rel=1e-6)


def test_ema_off_keeps_the_raw_weights_and_is_validated():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x, y = _data()
    steps = []
    fit(model, _steps_recorded(model, [(x, y)] * 3, steps), [_data(32, seed=1)], _loss, _eval,
        TrainConfig(epochs=1, lr=0.05, progress="off"))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in steps[-1].items())
    for bad in (0, 1, 1.5, -0.1, True, "0.9"):
        with pytest.raises(ValueError, match=r"ema must be null \(off\) or a decay per optimizer step in \(0, 1\)"):
            TrainConfig(ema=bad)
    assert TrainConfig(ema=0.99).ema == 0.99 and TrainConfig().ema is None
