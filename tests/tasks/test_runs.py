import json

import pytest
import torch

from lstmkit import __version__
from lstmkit.models import create_model
from lstmkit.tasks.config import dump_yaml
from lstmkit.tasks.registry import get_task, list_tasks
from lstmkit.tasks.runs import (RoleResult, checkpointing, common_metrics, load_model, model_spec, rescoring,
                                save_model, start_run, write_metrics)
from lstmkit.tasks.trainer import TrainConfig
from lstmkit.tasks.video import VideoConfig


def test_save_load_round_trip(tmp_path):
    name, kwargs = model_spec({"name": "rnn_classifier", "hidden_size": 8}, input_size=3, num_classes=4)
    model = create_model(name, **kwargs)
    save_model(tmp_path, model, {"name": name, **kwargs}, task="segment", extra={"classes": 4})
    back, meta = load_model(tmp_path, ("segment", "generate"))
    assert meta["classes"] == 4 and not back.training
    for (k, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="holds a 'segment' model"):
        load_model(tmp_path, "caption")


def test_model_spec_refuses_what_the_data_fixes():
    with pytest.raises(ValueError, match="model.num_classes=3 but the data sets it to 4"):
        model_spec({"name": "x", "num_classes": 3}, num_classes=4)
    with pytest.raises(ValueError, match="needs a 'name'"):
        model_spec({"hidden_size": 3})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_rescoring_a_cuda_run_here_scores_on_the_cpu(tmp_path, caplog):
    (tmp_path / "config.yaml").write_text(dump_yaml({"task": "video", "train": {"device": "cuda"}}))
    config, device = rescoring(tmp_path, VideoConfig, None)
    assert device.type == "cpu" and config.train.device == "cpu" and "'cuda', which is not available" in caplog.text
    with pytest.raises(ValueError, match="evaluate --data applies to classification runs; a 'video' run is re-scored"):
        rescoring(tmp_path, VideoConfig, "x.npz")


def test_write_metrics(tmp_path):
    start_run(tmp_path / "r", {"train": TrainConfig(epochs=2)})  # config.yaml: written once, when the run starts
    written = write_metrics(tmp_path / "r", {"test": {"acc": 1.0}}, [{"epoch": 1}])
    assert json.loads((tmp_path / "r" / "metrics.json").read_text()) == written
    assert json.loads((tmp_path / "r" / "history.json").read_text()) == [{"epoch": 1}]
    assert written["test"] == {"acc": 1.0} and written["threads"] >= 1
    assert "epochs: 2" in (tmp_path / "r" / "config.yaml").read_text()
    with pytest.raises(ValueError):
        write_metrics(tmp_path / "r", {"test": float("nan")}, [])


def test_each_model_logs_to_its_role_under_the_run_tensorboard_folder(tmp_path):
    root = start_run(tmp_path / "r", {"train": TrainConfig(epochs=2)})
    assert checkpointing(root) == {"checkpoint_dir": root, "resume": False,
                                   "log_dir": tmp_path / "r" / "tensorboard" / "model"}
    for role in ("model", "baseline", "baselines/pixel_cnn"):
        assert checkpointing(root / role)["log_dir"] == tmp_path / "r" / "tensorboard" / role
    with pytest.raises(ValueError, match="is not inside a run's checkpoint/ folder"):
        checkpointing(tmp_path / "elsewhere")
    (tmp_path / "r" / "tensorboard" / "model").mkdir(parents=True)  # an earlier run's logs go with its checkpoints
    start_run(tmp_path / "r", {"train": TrainConfig(epochs=3)})
    assert not (tmp_path / "r" / "tensorboard").exists()


# ------------------------------------------------------------------ the fields every metrics.json has

def _tiny(task: str, tmp_path) -> tuple[str, list[str]]:
    """(config file or preset, overrides) of a tiny run of ``task``, from the tiny configs of its own tests."""
    from tests.tasks.test_resume import TINY as CLASSIFY, _vision_configs
    from tests.tasks.test_segment import TINY as SEGMENT

    if task == "forecast":
        return "forecast/airline", ["ensemble=2", "train.epochs=2", "model.hidden_size=4", "evaluate.samples=20",
                                    "train.progress=off"]
    path = tmp_path / f"{task}.yaml"
    if task == "classify":
        path.write_text(CLASSIFY)
        return str(path), ["train.epochs=2"]
    path.write_text(dump_yaml({**_vision_configs(), "segment": SEGMENT}[task]))
    return str(path), []


@pytest.mark.parametrize("task", [t.name for t in list_tasks()])
def test_every_task_writes_the_common_metrics_and_report_ending(tmp_path, task):
    from lstmkit.cli import resolve_config

    config, name = resolve_config(*_tiny(task, tmp_path))
    assert name == task
    metrics = get_task(task).train(config, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert isinstance(saved["test"], dict) and isinstance(saved["val"], dict)
    assert isinstance(saved["baselines"], dict) and all(isinstance(b, dict) for b in saved["baselines"].values())
    roles = ["model", *saved["baselines"]]
    for key in ("params", "epochs_by_role"):
        assert list(saved[key]) == roles, key
        assert all(type(v) is int and v >= 0 for v in saved[key].values()), saved[key]
    assert type(saved["train_seconds"]) is float and saved["train_seconds"] > 0
    # the common fields agree with what each task wrote before them
    members = saved.get("ensemble", 1)
    assert saved["params"]["model"] == saved["parameters"] * members > 0
    assert saved["epochs_by_role"]["model"] == (sum(saved["epochs"]) if task == "forecast" else saved["epochs"]) > 0
    for role, b in saved["baselines"].items():
        assert saved["params"][role] == b.get("parameters", 0) and saved["epochs_by_role"][role] == b.get("epochs", 0)
    lines = (tmp_path / "run" / "report.md").read_text().splitlines()
    assert lines[0].startswith("# ") and "## Reproduce" in lines
    assert lines[lines.index("## Reproduce") - 2].startswith(f"Environment: lstmkit {__version__}, torch ")


def test_common_metrics_checks_its_roles():
    model = RoleResult(10, 2, 1.23456)
    out = common_metrics({"model": model, "naive": RoleResult()}, {"a": 1}, None, {"naive": {"a": 2}})
    assert out == {"test": {"a": 1}, "val": None, "baselines": {"naive": {"a": 2}}, "params": {"model": 10, "naive": 0},
                   "epochs_by_role": {"model": 2, "naive": 0}, "train_seconds": 1.235}
    with pytest.raises(ValueError, match="roles must include 'model'"):
        common_metrics({"naive": model}, {}, {}, {"naive": {}})
    with pytest.raises(ValueError, match=r"the baseline roles \['naive'\] differ from the baselines \['drift'\]"):
        common_metrics({"model": model, "naive": model}, {}, {}, {"drift": {}})
    with pytest.raises(ValueError, match=r"roles\['model'\].epochs must be an int >= 0, got 2.0"):
        common_metrics({"model": RoleResult(1, 2.0)}, {}, {}, {})


def test_report_builder_ends_every_report_alike(tmp_path):
    from lstmkit.eval.report import Report

    path = (Report("Run").text("One line.").section("Scores").table(["a", "b"], [(1, "x")])
            .figure("curve.png", "curve").write(tmp_path, "env here"))
    assert path.read_text().split("## Reproduce")[0] == (
        "# Run\n\nOne line.\n\n## Scores\n\n| a | b |\n|---|---|\n| 1 | x |\n\n![curve](curve.png)\n\n"
        "Environment: env here.\n\n")
    assert f"lstmkit train {tmp_path.resolve() / 'config.yaml'} --out NEW_RUN_DIR" in path.read_text()
