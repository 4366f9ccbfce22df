"""`lstmkit explain` end to end on tiny runs, through the task registry."""

import json

import pytest

pytest.importorskip("captum")
pytest.importorskip("matplotlib")

from lstmkit.cli import main  # noqa: E402
from lstmkit.tasks.registry import get_task, list_tasks  # noqa: E402
from tests.tasks.helpers import write_npz  # noqa: E402

from lstmkit.explain.core import FILES  # noqa: E402


def _train(tmp_path, *sets, model="{name: rnn_classifier, hidden_size: 8, bidirectional: true, pooling: attention}"):
    data = write_npz(tmp_path / "train.npz", 60, seed=0)
    test = write_npz(tmp_path / "test.npz", 20, seed=1)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"task: classify\ndata: {{train: {data}, test: {test}}}\n"
                   f"model: {model}\n"
                   "train: {epochs: 2, batch_size: 16, progress: 'off'}\n")
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run), *sets]) == 0
    return run, test


def test_explain_classify_run_writes_files_and_numbers(tmp_path, capsys):
    run, test = _train(tmp_path)
    capsys.readouterr()
    out = tmp_path / "exp"
    assert main(["explain", str(run), str(test), "--index", "2", "--out", str(out), "--faithfulness-samples", "3",
                 "--n-steps", "16", "--draws", "4"]) == 0
    for name in FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    e = json.loads((out / "explanation.json").read_text())
    n = e["length"]
    assert e["index"] == 2 and len(e["integrated_gradients"]["per_step"]) == n
    assert len(e["attention"]) == n and abs(sum(e["attention"]) - 1) < 1e-4  # padding excluded: the sample alone
    ig = e["integrated_gradients"]
    assert abs(ig["sum"] - (ig["f_x"] - ig["f_baseline"])) < 1e-3
    assert e["target"]["class"] in e["target"]["probabilities"]
    f = e["faithfulness"]
    assert f["passed"] == (f["auc_top"] < f["auc_random"]) and f["dataset"]["samples"] == 3
    assert e["gates"]["replay_error"] < 1e-5 and set(e["gates"]["sample"]) == {"encoder layer 0",
                                                                                "encoder layer 0 backward"}
    assert len(e["gates"]["sample"]["encoder layer 0"]["forget"]) == n
    layers = e["units"]["layers"]
    assert len(layers) == 2 and len(layers[0]["horizon"]) == 8 and layers[0]["steps"] > 20 * 12
    printed = json.loads(capsys.readouterr().out)
    assert printed["faithfulness"]["passed"] == f["passed"]


def test_explain_an_ensemble_run_explains_member_0_and_says_so(tmp_path, capsys):
    """train.ensemble (and classify/auto) runs load as an ensemble, which has no single model: explain
    takes member 0, says so in explanation.json, and each other member is explainable at members/<i>."""
    run, test = _train(tmp_path, "--set", "train.ensemble=2")
    args = ["--faithfulness-samples", "2", "--n-steps", "8", "--draws", "2"]
    assert main(["explain", str(run), str(test), "--out", str(tmp_path / "e0"), *args]) == 0
    e = json.loads((tmp_path / "e0" / "explanation.json").read_text())
    assert "ensemble of 2 models" in e["ensemble"] and "explains member 0" in e["ensemble"]
    assert main(["explain", str(run / "members" / "1"), str(test), "--out", str(tmp_path / "e1"), *args]) == 0
    e1 = json.loads((tmp_path / "e1" / "explanation.json").read_text())
    assert "ensemble" not in e1  # a member alone is a plain run
    assert e1["target"]["probabilities"] != e["target"]["probabilities"]  # another member, another model


def test_explain_index_out_of_range_names_the_range(tmp_path):
    run, test = _train(tmp_path)
    from lstmkit.tasks.registry import task_of_run

    with pytest.raises(ValueError, match=r"--index must be in \[0, 19\]"):
        task_of_run(run).explainer()(run, str(test), {"index": 20, "out": str(tmp_path / "x")})


def test_registry_lists_explain_and_refuses_tasks_without_it():
    assert get_task("classify").supports()["explain"] and get_task("forecast").supports()["explain"]
    without = [t for t in list_tasks() if t.explain is None]
    assert without
    with pytest.raises(ValueError, match="does not explain"):
        without[0].explainer()


def test_explain_forecast_run_explains_the_first_step_forecast(tmp_path):
    run = tmp_path / "fc"
    assert main(["-q", "train", "forecast/airline", "--out", str(run), "--set", "train.epochs=1", "--set", "ensemble=1",
                 "--set", "evaluate.baselines=[naive]", "--set", "model.hidden_size=8", "--set", "train.progress=off"]) == 0
    out = tmp_path / "exp"
    assert main(["-q", "explain", str(run), "--out", str(out), "--n-steps", "8", "--draws", "3",
                 "--faithfulness-samples", "1"]) == 0
    e = json.loads((out / "explanation.json").read_text())
    assert e["task"] == "forecast" and "first-step forecast" in e["target"]["what"]
    assert e["integrated_gradients"]["convergence_delta"] < 1e-6  # float64 forecaster
    assert len(e["integrated_gradients"]["step_feature"][0]) == len(e["integrated_gradients"]["per_feature"])
    assert all((out / name).is_file() for name in FILES)


def test_a_model_without_an_lstm_gets_attributions_only(tmp_path):
    run, test = _train(tmp_path, model="{name: tcn_classifier}")
    out = tmp_path / "exp"
    assert main(["-q", "explain", str(run), str(test), "--out", str(out), "--faithfulness-samples", "2",
                 "--n-steps", "8", "--draws", "2"]) == 0
    e = json.loads((out / "explanation.json").read_text())
    assert e["gates"] is None and e["units"]["layers"] == [] and not (out / "gates.png").exists()
    assert e["files"] == ["explanation.json", "attributions.png", "deletion.png"]
