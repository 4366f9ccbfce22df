"""ONNX export: onnxruntime against the PyTorch models on batches and lengths other than the
traced example (length 1 and full length included), the description file, the CLI and the
error cases. Run directories are written with ``save`` (the files ``lstmkit train`` writes) so
they take milliseconds; one classification and one forecasting run are trained for real."""

import copy
import json

import numpy as np
import pytest
import torch

from lstmkit.data.series import Series
from lstmkit.data.transforms import SeriesTransform
from lstmkit.cli_runs import add_export_parser
from lstmkit.export import ExportRecurrent, export_onnx, run_export_command
from lstmkit.models import create_model
from lstmkit.nn import LSTM
from lstmkit.tasks.classify import ClassifyConfig, Classifier, DataConfig, Preprocessor, train_classifier
from lstmkit.tasks.forecast import Forecaster, load_forecaster
from lstmkit.tasks.trainer import TrainConfig

from ..tasks.helpers import reviews, waves, write_npz

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOL = 1e-5
D = 3  # features of the classification series


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _lengths(batch, total, gen):
    """Random lengths in [1, T] with a length-1 row and a full row."""
    n = torch.randint(1, total + 1, (batch,), generator=gen)
    n[0] = total
    if batch > 1:
        n[1] = 1
    return n


def _max_diff(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


# ------------------------------------------------------------------------- the encoder


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_export_encoder_equals_the_encoder_with_lengths(cell):
    """Gathers and masks instead of packing: outputs and final states (the LSTM's cell state by the
    closed form, in both directions) equal the encoder's, float64, at rounding error."""
    kw = {"num_layers": 2, "bidirectional": True, "batch_first": True, "dtype": torch.float64}
    rnn = {"lstm": lambda: LSTM(3, 5, **kw), "gru": lambda: torch.nn.GRU(3, 5, **kw),
           "rnn": lambda: torch.nn.RNN(3, 5, nonlinearity="relu", **kw)}[cell]().eval()
    x, n = torch.randn(4, 9, 3, dtype=torch.float64), torch.tensor([9, 1, 5, 2])
    with torch.no_grad():
        out, state = ExportRecurrent(rnn, cell_state=cell == "lstm")(x, lengths=n)
        if cell == "lstm":
            want, (h, c) = rnn(x, lengths=n)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, n, batch_first=True, enforce_sorted=False)
            want, h = rnn(packed)
            want = torch.nn.utils.rnn.pad_packed_sequence(want, batch_first=True, total_length=9)[0]
    assert (out - want).abs().max() <= 1e-12 and (state.h - h).abs().max() <= 1e-12
    if cell == "lstm":
        assert (state.c - c).abs().max() <= 1e-12
    else:
        assert state.c is None


# ------------------------------------------------------------------------- classifiers


@pytest.fixture(scope="module")
def series_pre():
    rng = np.random.default_rng(0)
    series = [rng.standard_normal((rng.integers(3, 9), D)).astype(np.float32) for _ in range(20)]
    return Preprocessor.fit(series, np.array(["a", "b", "c", "d"] * 5))


def _classifier_run(path, pre, name="rnn_classifier", **spec):
    spec = {"num_classes": len(pre.labels), **spec}
    if pre.kind == "series":
        spec["input_size"] = pre.num_features
    model = create_model(name, **spec).eval()
    Classifier(model, pre, {"name": name, **spec}).save(path)
    return model


BI_STACKED = {"hidden_size": 5, "num_layers": 2, "bidirectional": True}
CLASSIFIERS = {
    **{f"lstm-bi-2-{p}": {**BI_STACKED, "pooling": p} for p in ("last", "mean", "max", "attention")},
    "lstm-uni-last": {"hidden_size": 5, "bidirectional": False, "pooling": "last"},
    "lstm-inference-neutral-variants": {**BI_STACKED, "variants": {"forget_bias": 1.0, "recurrent_dropout": 0.3,
                                                                   "input_dropout": 0.2}},
    "gru-bi-2-last": {**BI_STACKED, "cell": "gru"},
    "rnn-mean": {"cell": "rnn", "hidden_size": 5, "pooling": "mean"},
    "lstm_fcn": {"name": "lstm_fcn", "hidden_size": 4, "dimension_shuffle": False, "filters": (6, 8, 6)},
    "mlstm_fcn-variable-length": {"name": "mlstm_fcn", "hidden_size": 4, "dimension_shuffle": False,
                                  "filters": (6, 8, 6)},
}


@pytest.mark.parametrize("case", list(CLASSIFIERS))
def test_classifier_matches_pytorch_on_other_shapes(case, series_pre, tmp_path):
    """The network alone: without preprocessing the graph takes standardised series."""
    model = _classifier_run(tmp_path, series_pre, **CLASSIFIERS[case])
    export_onnx(tmp_path, preprocessing=False)
    session = _session(tmp_path / "model.onnx")
    gen = torch.Generator().manual_seed(1)
    for batch, total in ((5, 13), (1, 1), (4, 3), (2, 30)):  # traced on (2, 6)
        x, n = torch.randn(batch, total, D, generator=gen), _lengths(batch, total, gen)
        with torch.no_grad():
            want = model(x, n).numpy()
        (got,) = session.run(None, {"x": x.numpy(), "lengths": n.numpy()})
        assert got.shape == want.shape
        assert _max_diff(got, want) <= TOL, (case, batch, total)


@pytest.fixture(scope="module")
def raw_pre():
    """Statistics far from (0, 1): a feature around 1000 with std 0.01 (float32 steps of 6e-5 there)."""
    rng = np.random.default_rng(5)
    scale, shift = np.array([0.01, 3.0, 0.5]), np.array([1000.0, -5.0, 0.0])
    series = [(rng.standard_normal((rng.integers(3, 9), D)) * scale + shift).astype(np.float32) for _ in range(20)]
    return Preprocessor.fit(series, np.array(["a", "b", "c", "d"] * 5))


def _raw_batch(pre, batch, total, gen):
    """Raw rows on pre's scale and the batch onnxruntime gets: padded with NaN past each length."""
    n = _lengths(batch, total, gen)
    std = pre.standardizer
    rows = [(torch.randn(int(k), D, generator=gen).double().numpy() * std.std + std.mean).astype(np.float32)
            for k in n]
    x = np.full((batch, total, D), np.nan, np.float32)
    for i, r in enumerate(rows):
        x[i, : len(r)] = r
    return rows, x, n.numpy()


@pytest.mark.parametrize("case", list(CLASSIFIERS))
def test_classifier_on_raw_series_equals_the_classifier(case, raw_pre, tmp_path):
    """By default the graph standardises: raw series, padded with NaN, give Classifier.logits
    (what `lstmkit predict` computes from the same series, batched its own way)."""
    model = _classifier_run(tmp_path, raw_pre, **CLASSIFIERS[case])
    clf = Classifier(model, raw_pre, {})
    desc = export_onnx(tmp_path)
    assert desc["preprocessing"] == {"inputs": "raw", "in_graph": True, "standardize": raw_pre.standardizer.to_dict(),
                                     "description": desc["preprocessing"]["description"]}
    assert desc["inputs"][0]["standardize"] == raw_pre.standardizer.to_dict()
    session = _session(tmp_path / "model.onnx")
    gen = torch.Generator().manual_seed(1)
    for batch, total in ((5, 13), (1, 1), (4, 3)):
        rows, x, n = _raw_batch(raw_pre, batch, total, gen)
        (got,) = session.run(None, {"x": x, "lengths": n})
        assert np.isfinite(got).all()
        assert _max_diff(got, clf.logits(rows).numpy()) <= TOL, (case, batch, total)


def test_one_fused_operator_per_layer_and_direction(series_pre, tmp_path):
    _classifier_run(tmp_path / "lstm", series_pre, **BI_STACKED)
    _classifier_run(tmp_path / "gru", series_pre, **BI_STACKED, cell="gru")
    for cell, op in (("lstm", "LSTM"), ("gru", "GRU")):
        export_onnx(tmp_path / cell)
        ops = [node.op_type for node in onnx.load(tmp_path / cell / "model.onnx").graph.node]
        assert ops.count(op) == 4  # 2 layers x 2 directions
        assert not {"Loop", "Scan", "If"} & set(ops)


def test_dimension_shuffle_fcn_has_a_fixed_time_axis(series_pre, tmp_path):
    model = _classifier_run(tmp_path, series_pre, "mlstm_fcn", hidden_size=4, filters=(6, 8, 6), max_length=7)
    desc = export_onnx(tmp_path, preprocessing=False)
    assert desc["inputs"][0]["shape"] == ["batch", 7, D]
    session = _session(tmp_path / "model.onnx")
    for batch in (1, 5):
        x, n = torch.randn(batch, 7, D), torch.full((batch,), 7)
        with torch.no_grad():
            want = model(x, n).numpy()
        assert _max_diff(session.run(None, {"x": x.numpy(), "lengths": n.numpy()})[0], want) <= TOL


def test_token_input_classifier(tmp_path):
    texts, labels = reviews(30)
    pre = Preprocessor.fit(texts, np.array(labels))
    model = _classifier_run(tmp_path, pre, hidden_size=6, input_size=4, vocab_size=len(pre.vocab), pooling="max")
    desc = export_onnx(tmp_path)
    assert desc["inputs"][0]["dtype"] == "int64" and desc["inputs"][0]["shape"] == ["batch", "time"]
    session = _session(tmp_path / "model.onnx")
    ids = [torch.as_tensor(a) for a in pre.inputs(["a great movie", "boring", "i love this fun plot and acting"])]
    n = torch.tensor([len(a) for a in ids])
    x = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True)  # 0 = <pad>
    with torch.no_grad():
        want = model(x, n).numpy()
    assert _max_diff(session.run(None, {"x": x.numpy(), "lengths": n.numpy()})[0], want) <= TOL


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real `lstmkit train` run (normalised inputs, the default)."""
    tmp_path = tmp_path_factory.mktemp("trained")
    cfg = ClassifyConfig(DataConfig(train=str(write_npz(tmp_path / "train.npz", 60, max_len=14)),
                                    test=str(write_npz(tmp_path / "test.npz", 12, seed=1, max_len=14))),
                         {"name": "rnn_classifier", "hidden_size": 6, "num_layers": 2, "pooling": "attention"},
                         TrainConfig(epochs=2, batch_size=16, progress="off", early_stopping=None))
    train_classifier(cfg, tmp_path / "run")
    return tmp_path / "run"


def test_trained_run_end_to_end_through_the_description(trained_run, tmp_path):
    """Without preprocessing: standardise raw series with the description's statistics, pad, and
    onnxruntime gives Classifier.logits."""
    from lstmkit.tasks.classify import load_classifier

    clf = load_classifier(trained_run)
    desc = export_onnx(trained_run, tmp_path / "model.onnx", preprocessing=False)
    assert (desc["preprocessing"]["inputs"], desc["preprocessing"]["in_graph"]) == ("standardised", False)
    X, lengths, _ = waves(7, seed=3, max_len=20)  # longer than anything in training
    raw = [x[:n] for x, n in zip(X, lengths)]
    std = desc["inputs"][0]["standardize"]
    x = np.zeros((len(raw), max(lengths), X.shape[2]), np.float32)
    for i, r in enumerate(raw):
        x[i, : len(r)] = (r - np.array(std["mean"])) / np.array(std["std"])
    (got,) = _session(tmp_path / "model.onnx").run(None, {"x": x, "lengths": lengths.astype(np.int64)})
    assert _max_diff(got, clf.logits(raw).numpy()) <= TOL
    assert desc["classes"] == clf.classes


def test_trained_run_on_raw_series_equals_lstmkit_predict(trained_run, tmp_path, capsys):
    """The default export: the padded raw series that `lstmkit predict` reads from a file go
    straight into onnxruntime, and its softmax is predict_proba and the CLI's probabilities."""
    from lstmkit.cli import main
    from lstmkit.tasks.classify import load_classifier

    clf = load_classifier(trained_run)
    desc = export_onnx(trained_run, tmp_path / "model.onnx")
    assert desc["preprocessing"]["inputs"] == "raw" and desc["preprocessing"]["in_graph"] is True
    assert desc["preprocessing"]["standardize"] == clf.pre.standardizer.to_dict()
    X, lengths, _ = waves(7, seed=3, max_len=20)  # padded with zeros, longer than anything in training
    (logits,) = _session(tmp_path / "model.onnx").run(None, {"x": X, "lengths": lengths.astype(np.int64)})
    proba = torch.softmax(torch.from_numpy(logits).double(), 1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba([x[:n] for x, n in zip(X, lengths)]), rtol=0, atol=TOL)
    np.savez(tmp_path / "new.npz", X=X, lengths=lengths)
    out = tmp_path / "p.json"
    assert main(["-q", "predict", str(trained_run), str(tmp_path / "new.npz"), "--output", str(out)]) == 0
    rows = json.loads(out.read_text())
    cli = np.array([[r["probabilities"][str(c)] for c in desc["classes"]] for r in rows])
    np.testing.assert_allclose(proba, cli, rtol=0, atol=TOL)
    capsys.readouterr()


# ------------------------------------------------------------------------- forecasters


def _forecaster_run(path, members=1, past=0, future=0, horizon=4, **model):
    spec = {"num_targets": 1, "horizon": horizon, "past_covariates": past, "future_covariates": future,
            "hidden_size": 6, **model}
    torch.manual_seed(len(path.name))
    models = [create_model("lstm_forecaster", **spec) for _ in range(members)]
    tf = SeriesTransform(log=True, seasonal_period=2).fit(np.random.default_rng(0).uniform(5, 9, 40))
    Forecaster(models, {"name": "lstm_forecaster", **spec}, targets=["y"], past=[f"p{i}" for i in range(past)],
               future=[f"f{i}" for i in range(future)], calendar=[], step="1", transforms={"s": tf},
               cov_mean=np.zeros(past + future), cov_std=np.ones(past + future)).save(path)


FORECASTERS = {
    "direct-mse-covariates": {"head": "direct", "past": 1, "future": 2},
    "direct-gaussian-ensemble": {"head": "direct", "likelihood": "gaussian", "members": 2, "num_layers": 2},
    "direct-quantile": {"head": "direct", "likelihood": "quantile", "quantiles": (0.05, 0.5, 0.95)},
    "recursive-quantile-2-layers": {"head": "recursive", "likelihood": "quantile", "future": 1, "num_layers": 2},
    "recursive-gaussian-ensemble": {"head": "recursive", "likelihood": "gaussian", "members": 2},
    "recursive-inference-neutral-variants": {"head": "recursive", "num_layers": 2, "dropout": 0.2, "variants": {
        "forget_bias": 1.0, "recurrent_dropout": 0.3, "input_dropout": 0.2}},
    "seq2seq-gaussian": {"head": "seq2seq", "likelihood": "gaussian", "future": 1},
    "seq2seq-quantile-ensemble": {"head": "seq2seq", "likelihood": "quantile", "members": 2, "num_layers": 2},
}


def _reference(members, x, n, known):
    """What Forecaster does, per series alone (no padding): encode, forecast from the last step,
    average the members' point forecasts. -> point (B, N, C), params (B, M, N, C, K)."""
    C = members[0].config.num_targets
    points, params = [], []
    with torch.no_grad():
        for b, L in enumerate(n.tolist()):
            xb, kb = x[b : b + 1, :L], None if known is None else known[b : b + 1]
            ps = []
            for m in members:
                out, state = m.encode(xb)
                ps.append(m.forecast(out[:, -1], state, xb[:, -1, :C], kb)[0])
            params.append(torch.stack(ps))
            points.append(torch.stack([m.point(p) for m, p in zip(members, ps)]).mean(0))
    return torch.stack(points).numpy(), torch.stack(params).numpy()


@pytest.mark.parametrize("case", list(FORECASTERS))
def test_forecaster_matches_pytorch_on_other_shapes(case, tmp_path):
    _forecaster_run(tmp_path, **FORECASTERS[case])
    members = [copy.deepcopy(m).float() for m in load_forecaster(tmp_path).models]
    desc = export_onnx(tmp_path)
    c = members[0].config
    session = _session(tmp_path / "model.onnx")
    gen = torch.Generator().manual_seed(2)
    for batch, total in ((5, 17), (1, 1), (3, 4)):
        x, n = torch.randn(batch, total, members[0].input_size, generator=gen), _lengths(batch, total, gen)
        feeds = {"x": x.numpy(), "lengths": n.numpy()}
        known = None
        if c.future_covariates:
            known = torch.randn(batch, c.horizon, c.future_covariates, generator=gen)
            feeds["known"] = known.numpy()
        point, params = session.run(None, feeds)
        want_point, want_params = _reference(members, x, n, known)
        assert point.shape == (batch, c.horizon, 1) and params.shape == (batch, len(members), c.horizon, 1, c.outputs)
        assert _max_diff(point, want_point) <= TOL and _max_diff(params, want_params) <= TOL, (case, batch, total)
    assert [i["name"] for i in desc["inputs"]] == ["x", "lengths"] + (["known"] if c.future_covariates else [])


def test_forecast_in_the_original_scale_equals_forecaster_predict(tmp_path):
    """Apply the transform the description names, run the graph, invert: Forecaster.predict's points
    (it runs in float64, the graph in float32)."""
    _forecaster_run(tmp_path, head="recursive", likelihood="gaussian", members=2, future=1, horizon=3)
    fc = load_forecaster(tmp_path)
    desc = export_onnx(tmp_path)
    assert desc["forecast"]["space"] == "transformed" and set(desc["forecast"]["transforms"]) == {"s"}
    rng = np.random.default_rng(4)
    values = np.stack([rng.uniform(5, 9, 25), rng.standard_normal(25)], 1)
    history = Series(values[:21], np.arange(21), ("y", "f0"), "s")
    tf = fc.transform_for("s")
    x = fc.inputs(history.values, history.times, tf).astype(np.float32)[None]
    point, _ = _session(tmp_path / "model.onnx").run(None, {"x": x, "lengths": np.array([x.shape[1]]),
                                                            "known": values[21:24, 1:].astype(np.float32)[None]})
    want = fc.predict(history, 3, values[21:24, 1:], intervals=False).point
    np.testing.assert_allclose(tf.inverse(point[0].astype(np.float64), history.values[:, :1]), want, rtol=1e-5)


def test_trained_forecasting_run_exports(tmp_path):
    from lstmkit.tasks.config import build
    from lstmkit.tasks.forecast import ForecastConfig, train_forecaster

    rng = np.random.default_rng(0)
    y = 20 + np.sin(np.arange(48) / 2) + 0.1 * rng.standard_normal(48)
    (tmp_path / "s.csv").write_text("t,y\n" + "".join(f"{t},{v:.4f}\n" for t, v in enumerate(y)))
    cfg = build(ForecastConfig, {"task": "forecast", "data": {"path": str(tmp_path / "s.csv"), "time_column": "t",
                                                             "targets": ["y"], "test_size": 6},
                                 "model": {"head": "direct", "hidden_size": 6, "likelihood": "quantile"},
                                 "train": {"epochs": 2, "progress": "off", "early_stopping": None}, "ensemble": 2,
                                 "evaluate": {"horizon": 3, "samples": 10, "baselines": ["naive"]}})
    train_forecaster(cfg, tmp_path / "run")
    desc = export_onnx(tmp_path / "run")
    assert desc["forecast"]["members"] == 2 and desc["forecast"]["quantiles"] == [0.1, 0.5, 0.9]
    assert desc["outputs"][1]["parameters"] == ["q0.1", "q0.5", "q0.9"]
    assert desc["check"]["max_abs_diff"] <= TOL


# ------------------------------------------------------------------------- the description


def test_description_file(series_pre, tmp_path):
    _classifier_run(tmp_path / "c", series_pre, **BI_STACKED)
    out = tmp_path / "elsewhere" / "clf.onnx"
    desc = export_onnx(tmp_path / "c", out, opset=14)
    assert json.loads((tmp_path / "elsewhere" / "clf.onnx.json").read_text()) == desc
    assert sorted(p.name for p in out.parent.iterdir()) == ["clf.onnx", "clf.onnx.json"]  # no temporary files left
    assert not (tmp_path / "c" / "model.onnx").exists()
    assert desc["format"] == "onnx" and desc["file"] == "clf.onnx" and desc["opset"] == 14 and desc["task"] == "classify"
    assert desc["classes"] == ["a", "b", "c", "d"] and desc["model"]["name"] == "rnn_classifier"
    assert [(i["name"], i["dtype"], i["shape"]) for i in desc["inputs"]] == [
        ("x", "float32", ["batch", "time", D]), ("lengths", "int64", ["batch"])]
    assert desc["inputs"][0]["standardize"] == series_pre.standardizer.to_dict()
    assert [(o["name"], o["dtype"], o["shape"]) for o in desc["outputs"]] == [("logits", "float32", ["batch", 4])]
    model = onnx.load(out)
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {14}

    def dims(values):
        return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    assert dims(model.graph.input) == {i["name"]: i["shape"] for i in desc["inputs"]}
    assert dims(model.graph.output) == {o["name"]: o["shape"] for o in desc["outputs"]}

    _forecaster_run(tmp_path / "f", head="seq2seq", likelihood="quantile", members=2, past=0, future=1, horizon=5)
    desc = export_onnx(tmp_path / "f")
    assert json.loads((tmp_path / "f" / "model.onnx.json").read_text()) == desc and desc["opset"] == 17
    f = desc["forecast"]
    assert (f["horizon"], f["head"], f["likelihood"], f["quantiles"], f["members"]) == (5, "seq2seq", "quantile",
                                                                                         [0.1, 0.5, 0.9], 2)
    assert (f["targets"], f["future_covariates"], f["space"]) == (["y"], ["f0"], "transformed")
    tf = f["transforms"]["s"]
    assert (tf["log"], tf["seasonal_period"], tf["difference"], tf["standardize"]) == (True, 2, False, True)
    assert "before" in f and "after" in f
    assert [(i["name"], i["shape"]) for i in desc["inputs"]] == [("x", ["batch", "time", 2]), ("lengths", ["batch"]),
                                                               ("known", ["batch", 5, 1])]
    assert desc["inputs"][0]["columns"] == ["y", "f0"]
    assert [(o["name"], o["shape"]) for o in desc["outputs"]] == [("point", ["batch", 5, 1]),
                                                                ("params", ["batch", 2, 5, 1, 3])]
    assert dims(onnx.load(tmp_path / "f" / "model.onnx").graph.output) == {"point": ["batch", 5, 1],
                                                                          "params": ["batch", 2, 5, 1, 3]}


# ------------------------------------------------------------------------- errors and the CLI


@pytest.mark.parametrize("variant", [{"peephole": True}, {"layer_norm": True}, {"zoneout": 0.1}])
def test_variants_that_change_the_recurrence_are_refused(variant, series_pre, tmp_path):
    _classifier_run(tmp_path / "c", series_pre, hidden_size=4, variants=variant)
    name = next(iter(variant))
    with pytest.raises(ValueError, match=rf"supports the plain LSTM cell.*uses {name}"):
        export_onnx(tmp_path / "c")
    assert not (tmp_path / "c" / "model.onnx").exists()
    _forecaster_run(tmp_path / "f", variants=variant)
    with pytest.raises(ValueError, match=rf"supports the plain LSTM cell.*uses {name}"):
        export_onnx(tmp_path / "f")


def test_preprocessing_stays_out_of_forecaster_and_text_graphs(tmp_path):
    """A forecaster's graph takes transformed inputs and a text classifier's token ids: asked to
    put the preprocessing in, export refuses and writes nothing; otherwise it says so."""
    _forecaster_run(tmp_path / "f", head="direct", future=1)
    with pytest.raises(ValueError, match="a forecaster's graph takes transformed inputs"):
        export_onnx(tmp_path / "f", preprocessing=True)
    assert not (tmp_path / "f" / "model.onnx").exists()
    for preprocessing in (None, False):
        desc = export_onnx(tmp_path / "f", preprocessing=preprocessing)
        assert (desc["preprocessing"]["inputs"], desc["preprocessing"]["in_graph"]) == ("transformed", False)
    texts, labels = reviews(30)
    pre = Preprocessor.fit(texts, np.array(labels))
    _classifier_run(tmp_path / "t", pre, hidden_size=6, input_size=4, vocab_size=len(pre.vocab))
    with pytest.raises(ValueError, match="tokenising is no part of an ONNX graph"):
        export_onnx(tmp_path / "t", preprocessing=True)
    assert export_onnx(tmp_path / "t")["preprocessing"]["inputs"] == "token_ids"
    with pytest.raises(TypeError, match="preprocessing must be True, False or None, got 'yes'"):
        export_onnx(tmp_path / "t", preprocessing="yes")


def test_unnormalised_classifier_takes_raw_series_either_way(tmp_path):
    rng = np.random.default_rng(0)
    series = [rng.standard_normal((6, D)).astype(np.float32) for _ in range(8)]
    pre = Preprocessor.fit(series, np.array(["a", "b"] * 4), normalize=False)
    model = _classifier_run(tmp_path, pre, hidden_size=4)
    x, n = torch.randn(2, 5, D), torch.tensor([5, 2])
    with torch.no_grad():
        want = model(x, n).numpy()
    for preprocessing in (True, False):
        desc = export_onnx(tmp_path, preprocessing=preprocessing)
        assert desc["preprocessing"] == {"inputs": "raw", "in_graph": False, "standardize": None,
                                         "description": "none: the model was trained on raw series"}
        got = _session(tmp_path / "model.onnx").run(None, {"x": x.numpy(), "lengths": n.numpy()})[0]
        assert _max_diff(got, want) <= TOL


def test_not_a_run_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="is not an lstmkit run directory"):
        export_onnx(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_onnx(tmp_path / "missing")


def _parser():
    import argparse

    parser = argparse.ArgumentParser(prog="lstmkit")
    add_export_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_export(series_pre, tmp_path, capsys):
    _classifier_run(tmp_path, series_pre, hidden_size=4)
    args = _parser().parse_args(["export", str(tmp_path), "--format", "onnx", "--output", str(tmp_path / "m.onnx"),
                                 "--opset", "18"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "m.onnx")
    assert json.loads((tmp_path / "m.onnx.json").read_text())["opset"] == 18
    args = _parser().parse_args(["export", str(tmp_path)])  # --format onnx is the default
    assert run_export_command(args) == 0 and (tmp_path / "model.onnx").is_file()
    assert capsys.readouterr().out.strip() == str(tmp_path / "model.onnx")
    with pytest.raises(ValueError, match=r"opset must be an int in \[14, 20\], got 99"):
        run_export_command(_parser().parse_args(["export", str(tmp_path), "--opset", "99"]))


def test_cli_preprocessing_flags(series_pre, tmp_path, capsys):
    from lstmkit.cli import main

    _classifier_run(tmp_path / "c", series_pre, hidden_size=4)
    for flags, inputs in (([], "raw"), (["--preprocessing"], "raw"), (["--no-preprocessing"], "standardised")):
        assert main(["-q", "export", str(tmp_path / "c"), *flags]) == 0
        assert json.loads((tmp_path / "c" / "model.onnx.json").read_text())["preprocessing"]["inputs"] == inputs, flags
    _forecaster_run(tmp_path / "f")
    assert main(["-q", "export", str(tmp_path / "f"), "--no-preprocessing"]) == 0
    capsys.readouterr()
    assert main(["-q", "export", str(tmp_path / "f"), "--preprocessing"]) == 2
    assert "a forecaster's graph takes transformed inputs" in capsys.readouterr().err


def test_cli_unknown_format_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["export", "run", "--format", "tflite"])
    assert e.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


def test_missing_onnxruntime_names_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ImportError, match=r"pip install lstmkit\[export\]"):
        export_onnx(tmp_path)
