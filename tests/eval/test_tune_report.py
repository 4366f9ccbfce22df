"""eval.tune_report: the trials tables, report.md and plots of an Optuna study, from any object
with a tune config's fields (it imports nothing from lstmkit.tasks)."""

import csv
import json
import types

import pytest

optuna = pytest.importorskip("optuna")

from lstmkit.eval.tune_report import fmt, write_report  # noqa: E402


class _Range:
    type = "float"

    def describe(self) -> str:
        return "[0.001, 0.1], log"


def _config(task: str = "forecast"):
    return types.SimpleNamespace(
        metric="val_mase", direction="minimize", search={"train.lr": _Range()}, pruner={"type": "none"}, seed=0,
        base={"train": {"val_fraction": 0.2, "seed": 0, "monitor": "val_loss"}}, task=types.SimpleNamespace(name=task))


def _study(n: int):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", study_name="s", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(lambda t: (t.suggest_float("train.lr", 1e-3, 1e-1, log=True) - 0.01) ** 2, n_trials=n)
    return study


def test_tables_report_and_summary(tmp_path):
    study = _study(3)
    summary = write_report(study, _config(), tmp_path, "sqlite:///x.db")
    best = study.best_trial
    assert (summary["trials"], summary["complete"], summary["pruned"]) == (3, 3, 0)
    assert summary["best"] == {"number": best.number, "value": best.value, "params": best.params}
    assert summary["best_config"] == str(tmp_path / "best.yaml")
    assert not (tmp_path / "best.yaml").exists()  # tasks.tune writes it: it resolves configs
    with open(tmp_path / "trials.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["number", "state", "value", "duration_s", "train_seconds", "epochs", "best_epoch",
                       "pruned_at_epoch", "params_train.lr"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"] and all(r[1] == "COMPLETE" for r in rows[1:])
    saved = json.loads((tmp_path / "trials.json").read_text())
    assert [r["params"]["train.lr"] for r in saved] == [t.params["train.lr"] for t in study.trials]
    report = (tmp_path / "report.md").read_text()
    assert "read from the validation block (`val`)" in report  # a non-classification task's wording
    assert f"Trial {best.number}: val_mase **{best.value:.4f}**" in report
    assert "| train.lr | float | [0.001, 0.1], log |" in report
    assert "Storage `sqlite:///x.db`; 3 trial(s): 3 complete" in report


def test_no_completed_trial(tmp_path):
    summary = write_report(_study(0), _config("classify"), tmp_path)
    assert summary["best"] is None and summary["best_config"] is None and summary["trials"] == 0
    report = (tmp_path / "report.md").read_text()
    assert "No trial completed" in report and "## Top trials" not in report
    assert "The test split is not used here" in report  # classification's wording


def test_fmt():
    assert fmt(0.0123456) == "0.01235" and fmt(3) == "3" and fmt("relu") == "relu"
