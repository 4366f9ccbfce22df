import json
import re
import pickle

import numpy as np
import pytest
import safetensors.torch
import torch

from lstmkit.checkpoint import save_checkpoint
from lstmkit.tasks.classify import ClassifyConfig, DataConfig, Preprocessor, load_classifier, train_classifier
from lstmkit.tasks.config import build, load_yaml
from lstmkit.tasks.trainer import TrainConfig

from .helpers import as_logged, reviews, tensorboard_rows, waves, write_npz, write_reviews

FAST = TrainConfig(epochs=25, lr=0.01, batch_size=32, progress="off", early_stopping=None)


def _config(train, test=None, model=None, **data):
    return ClassifyConfig(DataConfig(train=str(train), test=None if test is None else str(test), **data),
                          model or {"name": "rnn_classifier", "hidden_size": 16, "pooling": "mean"}, FAST)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    cfg = _config(write_npz(root / "train.npz", 240, seed=0), write_npz(root / "test.npz", 90, seed=1))
    metrics = train_classifier(cfg, root / "out")
    return root, cfg, metrics


def test_run_directory_contract(run):
    root, cfg, metrics = run
    out = root / "out"
    for name in ("config.yaml", "model.safetensors", "model.json", "metrics.json", "history.json", "report.md",
                 "confusion_matrix.png", "learning_curves.png"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert {"val", "test", "train_seconds", "epochs"} <= set(saved)
    assert {"accuracy", "macro_f1", "loss"} <= set(saved["test"]) and {"accuracy", "macro_f1"} <= set(saved["val"])
    assert saved["epochs"] == FAST.epochs and saved["n_test"] == 90
    assert saved["test"]["accuracy"] > 0.85  # 3 classes: chance is 1/3
    assert build(ClassifyConfig, load_yaml(out / "config.yaml")) == cfg
    report = (out / "report.md").read_text()
    for part in ("Per class", "| high |", "Confusion matrix", "learning_curves.png", "macro-F1"):
        assert part in report


def test_loaded_model_predicts_the_same_and_ignores_padding(run):
    root, _, metrics = run
    clf = load_classifier(root / "out")
    X, lengths, y = waves(40, seed=7)
    series = [x[:n] for x, n in zip(X, lengths)]
    proba = clf.predict_proba(series)
    assert proba.shape == (40, 3) and np.allclose(proba.sum(1), 1)
    # padding is ignored: the padded batch (lengths path: the fused kernel over sorted rows) and each
    # series alone (no padding: torch's LSTM) agree to float64 rounding. In float32 the two kernels
    # differ by float32 rounding amplified by the trained weights (~1e-5 in probability), which says
    # nothing about padding, so the check runs in float64, 1e5 times tighter than it was in float32.
    clf.model.double()
    clf.dtype = "float64"
    proba64 = clf.predict_proba(series)
    alone = np.concatenate([clf.predict_proba([s]) for s in series])
    np.testing.assert_allclose(proba64, alone, rtol=0, atol=1e-10)
    np.testing.assert_allclose(proba, proba64, rtol=0, atol=1e-4)  # float32 is float64 to float32 rounding
    clf.model.float()
    clf.dtype = "float32"
    assert set(clf.predict(series)) <= {"low", "mid", "high"}
    test = np.load(root / "test.npz")
    got, _, _ = clf.evaluate([x[:n] for x, n in zip(test["X"], test["lengths"])], test["y"])
    assert got["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def test_normalisation_is_fit_on_training_steps_only(run):
    from lstmkit.data import stratified_split

    root, _, _ = run
    clf = load_classifier(root / "out")
    d = np.load(root / "train.npz")
    tr, _ = stratified_split(d["y"], FAST.val_fraction, seed=FAST.seed)  # the split train_classifier carves
    steps = np.concatenate([d["X"][i, : d["lengths"][i]] for i in tr]).astype(np.float64)
    np.testing.assert_allclose(clf.pre.standardizer.mean, steps.mean(0), rtol=1e-6)
    np.testing.assert_allclose(clf.pre.standardizer.std, steps.std(0), rtol=1e-6)
    all_steps = np.concatenate([x[:n] for x, n in zip(d["X"], d["lengths"])])  # validation included: differs
    assert np.abs(clf.pre.standardizer.std - all_steps.std(0)).max() > 1e-6


def test_predict_time_errors(run):
    root, _, _ = run
    clf = load_classifier(root / "out")
    with pytest.raises(ValueError, match="sample 1 has 3 features per step but the model was trained on 2"):
        clf.predict([np.zeros((5, 2)), np.zeros((5, 3))])
    with pytest.raises(ValueError, match="sample 0 contains NaN or inf"):
        clf.predict([np.full((5, 2), np.nan)])
    with pytest.raises(ValueError, match="inputs is empty"):
        clf.predict([])
    with pytest.raises(ValueError, match="label 'huge' .* was not seen in training"):
        clf.evaluate([np.zeros((5, 2))], ["huge"])


def _save_again(directory, meta):
    """Write ``meta`` as a run's description with a matching hash (as a faulty writer would)."""
    save_checkpoint(directory, safetensors.torch.load_file(directory / "model.safetensors"), meta)


def test_tampered_and_foreign_model_files_are_refused(run, tmp_path):
    import shutil

    root, _, _ = run
    bad = tmp_path / "bad"
    shutil.copytree(root / "out", bad)
    meta = json.loads((bad / "model.json").read_text())
    meta["meta"]["preprocess"]["num_features"] = 3
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="model.json was edited: its contents do not match the SHA-256"):
        load_classifier(bad)
    _save_again(bad, meta["meta"])  # consistent with its hash, the description itself is checked
    with pytest.raises(ValueError, match="normalisation statistics do not match num_features"):
        load_classifier(bad)
    meta["meta"]["preprocess"]["num_features"] = 2
    meta["meta"]["model"]["hidden_size"] = 32
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="model.json was edited: its contents do not match the SHA-256"):
        load_classifier(bad)
    _save_again(bad, meta["meta"])
    with pytest.raises(ValueError, match="weights do not fit the described model"):
        load_classifier(bad)
    blob = (root / "out" / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="SHA-256"):
        load_classifier(bad)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (bad / "model.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match="pickle, refused without unpickling"):
        load_classifier(bad)
    assert not marker.exists()


def test_training_data_errors(tmp_path):
    X, lengths, y = waves(30)
    np.savez(tmp_path / "one.npz", X=X, lengths=lengths, y=np.full(30, "low"))
    with pytest.raises(ValueError, match="only one class"):
        train_classifier(_config(tmp_path / "one.npz"), tmp_path / "o1")
    X[3, 2, 1] = np.inf
    np.savez(tmp_path / "inf.npz", X=X, lengths=lengths, y=y)
    with pytest.raises(ValueError, match=r"X\[3\] within its length contains NaN or inf"):
        train_classifier(_config(tmp_path / "inf.npz"), tmp_path / "o2")
    np.savez(tmp_path / "empty.npz", X=np.zeros((0, 5, 2)), y=np.zeros(0))
    with pytest.raises(ValueError, match="X must be"):
        train_classifier(_config(tmp_path / "empty.npz"), tmp_path / "o3")
    from lstmkit.tasks.classify import fit_classifier

    with pytest.raises(ValueError, match="training data is empty"):
        fit_classifier([], np.array([]), {}, FAST)


def test_unknown_names_suggest_close_ones(tmp_path):
    path = write_npz(tmp_path / "d.npz", 30)
    with pytest.raises(ValueError, match="unknown model 'lstm_fnc'.*lstm_fcn"):
        train_classifier(_config(path, model={"name": "lstm_fnc"}), tmp_path / "o")
    with pytest.raises(ValueError, match="unknown dataset 'digit'.*digits"):
        train_classifier(ClassifyConfig(DataConfig(name="digit")), tmp_path / "o")


def test_lstm_fcn_needs_equal_lengths_for_dimension_shuffle(tmp_path):
    path = write_npz(tmp_path / "d.npz", 40)
    with pytest.raises(ValueError, match="dimension_shuffle needs equal-length series.*dimension_shuffle=false"):
        train_classifier(_config(path, model={"name": "lstm_fcn"}), tmp_path / "o")


@pytest.mark.parametrize("name", ["lstm_fcn", "mlstm_fcn"])
def test_fcn_models_train_on_equal_length_data(tmp_path, name):
    cfg = _config(write_npz(tmp_path / "d.npz", 120, equal=True, max_len=20), model={"name": name, "hidden_size": 8})
    cfg.train = TrainConfig(epochs=8, lr=0.01, batch_size=32, progress="off")
    metrics = train_classifier(cfg, tmp_path / "o")
    assert metrics["test"]["accuracy"] > 0.6
    clf = load_classifier(tmp_path / "o")
    with pytest.raises(ValueError, match="built for max_length=20"):
        clf.predict([np.zeros((15, 2))])


def test_tensorboard_logger_shows_the_run_history(tmp_path):
    pytest.importorskip("tensorboard")
    cfg = ClassifyConfig(DataConfig(train=str(write_npz(tmp_path / "train.npz", 90, seed=0)),
                                    test=str(write_npz(tmp_path / "test.npz", 30, seed=1))),
                         {"name": "rnn_classifier", "hidden_size": 8},
                         TrainConfig(epochs=3, batch_size=32, progress="off", logger="tensorboard"))
    train_classifier(cfg, tmp_path / "out")
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert tensorboard_rows(tmp_path / "out" / "tensorboard" / "model") == as_logged(history) and len(history) == 3
    assert not (tmp_path / "out" / "checkpoint").exists()  # the logs stay with the finished run, the checkpoint goes


def test_text_classification_end_to_end(tmp_path):
    train = write_reviews(tmp_path / "train.csv", 300, seed=0)
    test = write_reviews(tmp_path / "test.csv", 100, seed=1)
    cfg = _config(train, test, format="text", model={"name": "rnn_classifier", "hidden_size": 16, "input_size": 16,
                                                       "pooling": "max"})
    metrics = train_classifier(cfg, tmp_path / "o")
    assert metrics["test"]["accuracy"] > 0.9
    clf = load_classifier(tmp_path / "o")
    assert clf.pre.kind == "tokens" and clf.pre.vocab.encode("zzz unseenword")[0] == 1
    assert clf.predict(["What a wonderful, great movie!", "Boring and awful."]) == ["pos", "neg"]
    with pytest.raises(TypeError, match="pass a list of strings"):
        clf.predict([np.zeros((3, 2))])


def test_preprocessor_round_trip_and_tampering():
    texts, labels = reviews(20)
    pre = Preprocessor.fit(texts, np.array(labels))
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert again.vocab == pre.vocab and again.labels == pre.labels
    with pytest.raises(ValueError, match="malformed"):
        Preprocessor.from_dict({"kind": "pixels", "labels": {"classes": [0, 1]}})
    with pytest.raises(ValueError, match="malformed"):
        Preprocessor.from_dict({"kind": "series"})


def test_seeds_reproduce_and_differ(tmp_path):
    path = write_npz(tmp_path / "d.npz", 60)
    cfg = _config(path)
    cfg.train = TrainConfig(epochs=3, batch_size=16, progress="off", seed=5)
    a = train_classifier(cfg, tmp_path / "a")
    b = train_classifier(cfg, tmp_path / "b")
    assert a["test"] == b["test"] and a["val"] == b["val"]
    sa = load_classifier(tmp_path / "a").model.state_dict()
    sb = load_classifier(tmp_path / "b").model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _write_user_files(tmp_path, fmt):
    """Train/test files of one format holding the same kind of 3-class waves (univariate)."""
    from tests.data.test_files import _write_idx

    paths = {}
    for split, seed, n in (("train", 0, 90), ("test", 1, 30)):
        X, lengths, y = waves(n, seed, features=1, equal=fmt == "idx", max_len=28)
        if fmt == "csv":
            rows = [",".join([lab, *(f"{v:.5f}" for v in x[:L, 0])]) for x, L, lab in zip(X, lengths, y)]
            (tmp_path / f"{split}.csv").write_text("\n".join(rows) + "\n")
            paths[split] = tmp_path / f"{split}.csv"
        elif fmt == "ts":
            head = "@problemName waves\n@univariate true\n@equalLength false\n@classLabel true high low mid\n@data\n"
            rows = [",".join(f"{v:.5f}" for v in x[:L, 0]) + f":{lab}" for x, L, lab in zip(X, lengths, y)]
            (tmp_path / f"{split}.ts").write_text(head + "\n".join(rows) + "\n")
            paths[split] = tmp_path / f"{split}.ts"
        else:  # idx: 28 rows of 28 pixels, labels 0..2
            img = np.clip((X[:, :, :1] + 1.5) * 80, 0, 255).repeat(28, axis=2).astype(np.uint8)
            _write_idx(tmp_path / f"{split}-images-idx3-ubyte", img)
            _write_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.searchsorted(["high", "low", "mid"], y))
            paths[split] = tmp_path / f"{split}-images-idx3-ubyte"
            paths[f"{split}_labels"] = tmp_path / f"{split}-labels-idx1-ubyte"
    return paths


@pytest.mark.parametrize("fmt", ["csv", "ts", "idx"])
def test_user_file_formats_train_end_to_end(tmp_path, fmt):
    p = _write_user_files(tmp_path, fmt)
    extra = {"train_labels": str(p["train_labels"]), "test_labels": str(p["test_labels"])} if fmt == "idx" else {}
    cfg = _config(p["train"], p["test"], **extra)
    cfg.train = TrainConfig(epochs=3, batch_size=32, progress="off")
    metrics = train_classifier(cfg, tmp_path / "out")
    assert metrics["n_train"] == 90 and metrics["n_test"] == 30
    clf = load_classifier(tmp_path / "out")
    assert clf.pre.num_features == (28 if fmt == "idx" else 1)
    assert len(clf.classes) == 3


def test_user_file_without_test_split_carves_one(tmp_path, caplog):
    path = write_npz(tmp_path / "all.npz", 80)
    with caplog.at_level("INFO", logger="lstmkit"):
        metrics = train_classifier(_config(path, test_fraction=0.25), tmp_path / "out")
    assert metrics["n_train"] == 60 and metrics["n_test"] == 20
    assert any("carved a stratified 25% test split" in r.getMessage() for r in caplog.records)


def test_a_run_starts_with_one_summary_line(tmp_path, caplog):
    """Sizes of every split, steps (a range when lengths vary), features, classes, parameters."""
    cfg = _config(write_npz(tmp_path / "train.npz", 100, seed=0), write_npz(tmp_path / "test.npz", 30, seed=1))
    cfg.train = TrainConfig(epochs=1, progress="off")
    with caplog.at_level("INFO", logger="lstmkit"):
        metrics = train_classifier(cfg, tmp_path / "out")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data ")]
    assert len(lines) == 1, lines
    assert re.fullmatch(rf"data {re.escape(str(tmp_path / 'train.npz'))}: 80 train / 20 validation / 30 test "
                        rf"samples, 12-30 steps, 2 feature\(s\), 3 classes; rnn_classifier with "
                        rf"{metrics['parameters']:,} parameters", lines[0]), lines[0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(format="long"), "data.format: long needs data.id_column, the column naming each row's series"),
    (dict(id_column="id"), r"data.id_column applies to long CSV files \(data.format: long\), not format 'auto'"),
    (dict(format="csv", feature_columns=["a"]), "data.feature_columns applies to long CSV files"),
    (dict(format="long", id_column="id", label_column=0), "data.label_column must be a name"),
    (dict(format="long", id_column="id", header=False), "data.header cannot be false"),
    (dict(layout="nct"), r"data.layout must be ntd \(n, T, D\) or ndt"),
    (dict(header="yes"), "data.header must be true, false or null"),
])
def test_data_config_checks_the_csv_and_layout_keys(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(train="d.csv", **kwargs)


def test_a_csv_whose_label_column_holds_data_is_refused_before_training(tmp_path):
    X, lengths, _ = waves(30, features=1, equal=True)
    (tmp_path / "d.csv").write_text("\n".join(",".join(f"{v:.4f}" for v in x[:, 0]) for x in X) + "\n")
    with pytest.raises(ValueError, match=r"d.csv: the label column \(the first column\) holds 30 distinct non-integer "
                                         r"numbers in 30 rows .*data.label_column"):
        train_classifier(_config(tmp_path / "d.csv"), tmp_path / "o")
    assert not (tmp_path / "o" / "model.json").exists()


def test_pandas_written_csv_with_numbered_header_trains_on_its_classes(tmp_path):
    X, lengths, y = waves(60, features=1, equal=True, max_len=16)
    lines = ["label," + ",".join(map(str, range(16)))] + [",".join([c, *(f"{v:.4f}" for v in x[:, 0])])
                                                          for x, c in zip(X, y)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    cfg = _config(tmp_path / "d.csv")
    cfg.train = TrainConfig(epochs=1, batch_size=32, progress="off")
    metrics = train_classifier(cfg, tmp_path / "o")
    assert load_classifier(tmp_path / "o").classes == ["high", "low", "mid"]  # no class named "label"
    assert metrics["n_train"] + metrics["n_test"] == 60
