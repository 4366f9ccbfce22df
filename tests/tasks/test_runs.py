import json

import pytest
import torch

from lstmkit.models import create_model
from lstmkit.tasks.config import dump_yaml
from lstmkit.tasks.runs import checkpointing, load_model, model_spec, rescoring, save_model, start_run, write_run
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


def test_write_run(tmp_path):
    written = write_run(tmp_path / "r", {"train": TrainConfig(epochs=2)}, {"test": {"acc": 1.0}}, [{"epoch": 1}])
    assert json.loads((tmp_path / "r" / "metrics.json").read_text()) == written
    assert written["test"] == {"acc": 1.0} and written["threads"] >= 1
    assert "epochs: 2" in (tmp_path / "r" / "config.yaml").read_text()
    with pytest.raises(ValueError):
        write_run(tmp_path / "r", {}, {"test": float("nan")})


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
