"""train.init_from / train.freeze (lstmkit.tasks.transfer) and the data subsets a transfer experiment uses."""

import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from lstmkit.cli import main
from lstmkit.data.subsets import check_subset, class_indices, fraction_indices
from lstmkit.tasks.trainer import TrainConfig, fit
from lstmkit.tasks.transfer import TransferReport, apply_transfer, freeze_parameters, load_matching, source_hash
from tests.tasks.helpers import write_npz


class Net(nn.Module):
    def __init__(self, hidden=4, out=3):
        super().__init__()
        self.body = nn.Linear(2, hidden)
        self.head = nn.Linear(hidden, out)

    def forward(self, x):
        return self.head(torch.tanh(self.body(x)))


def test_load_matching_lists_loaded_skipped_new_and_unused():
    src, dst = Net(out=3), Net(out=5)
    state = {**src.state_dict(), "extra.weight": torch.zeros(1)}
    del state["head.bias"]
    r = load_matching(dst, state, TransferReport())
    assert r.loaded == ["body.weight", "body.bias"] and r.new == ["head.bias"] and r.unused == ["extra.weight"]
    assert r.skipped == [{"name": "head.weight", "source_shape": [3, 4], "shape": [5, 4]}]
    assert torch.equal(dst.body.weight, src.body.weight) and not torch.equal(dst.head.weight[:3], src.head.weight)


def test_freeze_really_freezes_under_fit():
    torch.manual_seed(0)
    net = Net()
    assert freeze_parameters(net, ["body.*"]) == ["body.weight", "body.bias"]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(32, 2), torch.randint(0, 3, (32,))
    fit(net, lambda e: [(x, y)], [(x, y)], lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]),
        lambda m, bs: {"loss": sum(nn.functional.cross_entropy(m(a), b).item() for a, b in bs)},
        TrainConfig(epochs=3, progress="off", weight_decay=0.1, early_stopping=None))
    assert torch.equal(net.body.weight, before["body.weight"]) and torch.equal(net.body.bias, before["body.bias"])
    assert net.body.weight.grad is None
    assert not torch.equal(net.head.weight, before["head.weight"])


def test_freeze_pattern_matching_nothing_names_it():
    with pytest.raises(ValueError, match=r"pattern 'encoder\.\*' matches no parameter.*body\.weight"):
        freeze_parameters(Net(), ["encoder.*"])
    with pytest.raises(ValueError, match="freezes every parameter"):
        apply_transfer(Net(), TrainConfig(freeze=["*"]))


def test_train_config_validates_transfer_and_curriculum_fields():
    with pytest.raises(ValueError, match="freeze must be a list"):
        TrainConfig(freeze="body.*")
    with pytest.raises(ValueError, match="init_sha256 names the weights of train.init_from"):
        TrainConfig(init_sha256="ab")
    with pytest.raises(ValueError, match="curriculum must be 'none' or 'length'"):
        TrainConfig(curriculum="easy")
    with pytest.raises(ValueError, match=r"curriculum_start must be a quantile in \(0, 1\]"):
        TrainConfig(curriculum_start=0)


def test_subsets_are_validated_stratified_and_seeded():
    labels = np.array([0] * 40 + [1] * 20 + [2] * 10)
    assert list(class_indices(labels, [1, 2])) == list(range(40, 70))
    assert list(class_indices(labels.astype(str), [2, "1"])) == list(range(40, 70))
    with pytest.raises(ValueError, match=r"data.classes: \[7\] not among the data's classes"):
        class_indices(labels, [1, 7])
    keep = fraction_indices(labels, 0.1, seed=3)
    assert [int((labels[keep] == c).sum()) for c in range(3)] == [4, 2, 1]
    assert list(keep) == list(fraction_indices(labels, 0.1, seed=3)) and list(keep) != list(fraction_indices(labels, 0.1, 4))
    with pytest.raises(ValueError, match="train_fraction must be a number in"):
        check_subset(None, 0)
    with pytest.raises(ValueError, match="lists a class twice"):
        check_subset([1, "1"], None)


def _config(tmp_path, classes=None):
    data = write_npz(tmp_path / "train.npz", 60, seed=0)
    test = write_npz(tmp_path / "test.npz", 30, seed=1)
    cfg = tmp_path / ("c.yaml" if classes is None else "c2.yaml")
    subset = "" if classes is None else f", classes: {classes}"
    cfg.write_text(f"task: classify\ndata: {{train: {data}, test: {test}{subset}}}\n"
                   "model: {name: rnn_classifier, hidden_size: 8}\ntrain: {epochs: 2, batch_size: 16, progress: 'off'}\n")
    return cfg


def test_cli_init_from_and_freeze_end_to_end(tmp_path, capsys):
    src = tmp_path / "src"
    assert main(["-q", "train", str(_config(tmp_path)), "--out", str(src)]) == 0
    ft = tmp_path / "ft"
    assert main(["train", str(_config(tmp_path, "[low, high]")), "--out", str(ft), "--init-from", str(src),
                 "--freeze", "encoder.*"]) == 0
    saved = yaml.safe_load((ft / "config.yaml").read_text())["train"]
    assert saved["init_from"] == str(src.resolve()) and saved["init_sha256"] == source_hash(src)
    assert saved["freeze"] == ["encoder.*"]
    t = json.loads((ft / "transfer.json").read_text())
    assert {s["name"] for s in t["skipped"]} == {"head.weight", "head.bias"}  # 3 classes there, 2 here
    assert "encoder.weight_ih_l0" in t["loaded"] and t["new"] == [] and "encoder.weight_hh_l0" in t["frozen"]
    from safetensors.torch import load_file

    a, b = load_file(str(src / "model.safetensors")), load_file(str(ft / "model.safetensors"))
    assert torch.equal(a["encoder.weight_hh_l0"], b["encoder.weight_hh_l0"])  # loaded and frozen
    assert not torch.equal(a["head.weight"][:2], b["head.weight"])
    report = (ft / "report.md").read_text()
    assert "## Transfer" in report and source_hash(src) in report and "skipped `head.weight`" in report
    # the saved config re-runs from the same weights, and refuses changed ones
    again = tmp_path / "again"
    assert main(["-q", "train", str(ft / "config.yaml"), "--out", str(again)]) == 0
    (src / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes() + b" ")
    capsys.readouterr()
    assert main(["-q", "train", str(ft / "config.yaml"), "--out", str(tmp_path / "changed")]) == 2
    assert "the source run changed" in capsys.readouterr().err


def test_init_from_a_missing_run_and_resume_with_init_are_refused(tmp_path, capsys):
    assert main(["-q", "train", str(_config(tmp_path)), "--out", str(tmp_path / "x"), "--init-from",
                 str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["-q", "train", "--resume", str(tmp_path / "x"), "--init-from", str(tmp_path)]) == 2
    assert "--init-from" in capsys.readouterr().err


def test_baselines_train_from_scratch():
    from lstmkit.tasks.transfer import _is_baseline

    assert _is_baseline("/r/checkpoint/baselines/pixel_cnn") and _is_baseline("/r/checkpoint/baseline")
    assert not _is_baseline("/r/checkpoint/model") and not _is_baseline("/r/checkpoint") and not _is_baseline(None)
    assert not _is_baseline("/r/checkpoint/member-2")


def test_a_checkpoint_written_before_the_new_fields_still_resumes(tmp_path):
    from lstmkit.tasks.trainer import load_train_state

    torch.manual_seed(0)
    x, y = torch.randn(16, 2), torch.randint(0, 3, (16,))
    args = (lambda e: [(x, y)], [(x, y)], lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]),
            lambda m, bs: {"loss": sum(nn.functional.cross_entropy(m(a), b).item() for a, b in bs)})
    fit(Net(), *args, TrainConfig(epochs=1, progress="off"), checkpoint_dir=tmp_path)
    state = load_train_state(tmp_path)
    for key in ("init_from", "init_sha256", "freeze", "curriculum", "curriculum_start", "curriculum_epochs"):
        del state.config[key]
    result = fit(Net(), *args, TrainConfig(epochs=2, progress="off"), checkpoint_dir=tmp_path, resume=state)
    assert result.epochs == 2
    state.config["freeze"] = ["body.*"]  # a real difference is still refused
    with pytest.raises(ValueError, match="freeze"):
        fit(Net(), *args, TrainConfig(epochs=2, progress="off"), checkpoint_dir=tmp_path, resume=state)
