import math

import numpy as np
import pytest
import torch

from lstmkit.data import augment as A
from lstmkit.data.augment import Augment, AugmentedBatches, epoch_generator, list_augmentations, register_augmentation
from lstmkit.data.collate import SequenceBatches
from lstmkit.tasks.classify import ClassifyConfig, DataConfig, prepare_training, train_classifier
from lstmkit.tasks.config import build, dump_yaml, load_yaml, to_plain
from lstmkit.tasks.trainer import TrainConfig

from ..tasks.helpers import waves, write_npz

# every series op with a non-trivial strength
SERIES = [
    ("jitter", {"sigma": 0.1}),
    ("scaling", {"sigma": 0.2}),
    ("magnitude_warp", {"sigma": 0.3, "knots": 3}),
    ("time_warp", {"sigma": 0.4, "knots": 4}),
    ("window_slice", {"ratio": 0.7}),
    ("window_slice", {"ratio": 0.6, "stretch": False}),
    ("window_warp", {"ratio": 0.3, "scales": [0.5, 2.0]}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(SERIES)]


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _batch(dtype=torch.float32, padding=0.0):
    """(B=5, T=20, D=3) with lengths 20, 13, 7, 2, 1 (padding filled with ``padding``)."""
    torch.manual_seed(1)
    lengths = torch.tensor([20, 13, 7, 2, 1])
    x = torch.randn(5, 20, 3, dtype=dtype)
    x[~(torch.arange(20)[None] < lengths[:, None])] = padding
    return x, lengths


def _ramp(lengths, T, D=2):
    """Strictly increasing values 0..len-1 in each series (channel k scaled by k+1), zero padding."""
    t = torch.arange(T, dtype=torch.float64)[None, :, None] * torch.arange(1, D + 1, dtype=torch.float64)
    return (t * (torch.arange(T)[None, :, None] < lengths[:, None, None])).expand(len(lengths), T, D).clone()


def _op(name):
    return getattr(A, name)


# ------------------------------------------------------------------------------ series ops


@pytest.mark.parametrize("name,kw", SERIES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_series_op_keeps_shape_dtype_lengths_and_zero_padding(name, kw, dtype):
    x, lengths = _batch(dtype)
    before = x.clone()
    y, n = _op(name)(x, lengths, generator=_g(), **kw)
    assert y.shape == x.shape and y.dtype == dtype and n.dtype == torch.int64 and n.shape == lengths.shape
    assert torch.equal(x, before)  # the input is not modified
    if kw.get("stretch", True):
        assert torch.equal(n, lengths)
    else:
        assert torch.equal(n, torch.ceil(lengths * kw["ratio"]).long().clamp(min=1))
    mask = torch.arange(20)[None] < n[:, None]
    assert (y[~mask] == 0).all() and torch.isfinite(y).all()
    assert not torch.allclose(y[0, : n[0]], x[0, : n[0]])  # it did something


@pytest.mark.parametrize("name,kw", SERIES, ids=IDS)
def test_series_valid_part_depends_only_on_itself(name, kw):
    x, lengths = _batch()
    y, n = _op(name)(x, lengths, generator=_g(3), **kw)
    z = x.clone()
    z[~(torch.arange(20)[None] < lengths[:, None])] = float("nan")  # garbage padding
    z[0] += 100.0  # another series changes
    y2, n2 = _op(name)(z, lengths, generator=_g(3), **kw)
    assert torch.equal(n, n2) and torch.isfinite(y2).all()
    torch.testing.assert_close(y2[1:], y[1:])
    assert (y2[~(torch.arange(20)[None] < n2[:, None])] == 0).all()


@pytest.mark.parametrize("name,kw", SERIES, ids=IDS)
def test_series_op_is_reproducible_for_a_generator(name, kw):
    x, lengths = _batch()
    a = _op(name)(x, lengths, generator=_g(7), **kw)
    b = _op(name)(x, lengths, generator=_g(7), **kw)
    c = _op(name)(x, lengths, generator=_g(8), **kw)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("name,kw", [("jitter", {"sigma": 0}), ("scaling", {"sigma": 0}),
                                     ("magnitude_warp", {"sigma": 0}), ("time_warp", {"sigma": 0}),
                                     ("window_slice", {"ratio": 1}), ("window_slice", {"ratio": 1, "stretch": False}),
                                     ("window_warp", {"ratio": 0}), ("window_warp", {"scales": [1]}),
                                     ("window_warp", {"ratio": 1, "scales": [0.5, 2]})])
def test_zero_strength_is_the_identity(name, kw):
    x, lengths = _batch(torch.float64)
    y, n = _op(name)(x, lengths, generator=_g(), **kw)
    assert torch.equal(n, lengths)
    torch.testing.assert_close(y, x, rtol=0, atol=1e-12)


def test_lengths_default_to_the_full_length_and_bad_input_is_refused():
    x = torch.randn(2, 5, 1)
    y, n = A.jitter(x, sigma=0.0)
    assert torch.equal(n, torch.tensor([5, 5])) and torch.equal(y, x)
    with pytest.raises(ValueError, match=r"lengths must be in 1\.\.5"):
        A.jitter(x, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"floating-point \(B, T, D\)"):
        A.jitter(torch.zeros(2, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"time_warp: sigma must be a number >= 0, got -1"):
        A.time_warp(x, sigma=-1)
    with pytest.raises(ValueError, match=r"window_slice: ratio must be a number in \(0, 1\], got 0"):
        A.window_slice(x, ratio=0)


def test_time_warp_is_monotone_keeps_endpoints_and_channels_aligned():
    lengths = torch.tensor([40, 25, 9, 2])
    x = _ramp(lengths, 40)
    for seed in range(5):
        y, _ = A.time_warp(x, lengths, sigma=0.5, knots=4, generator=_g(seed))
        for b, n in enumerate(lengths.tolist()):
            v = y[b, :n, 0]
            assert (v[1:] > v[:-1]).all()  # strictly increasing
            assert v[0] == 0 and v[-1] == pytest.approx(n - 1)
            torch.testing.assert_close(y[b, :n, 1], 2 * v)  # one warp shared by the channels
    assert not torch.allclose(y, x)


def test_window_slice_and_warp_keep_the_order_of_steps():
    lengths = torch.tensor([30, 17, 5, 1])
    x = _ramp(lengths, 30)
    for seed in range(5):
        y, n = A.window_warp(x, lengths, ratio=0.2, scales=[0.5, 2.0], generator=_g(seed))
        s, m = A.window_slice(x, lengths, ratio=0.5, generator=_g(seed))
        k, c = A.window_slice(x, lengths, ratio=0.5, stretch=False, generator=_g(seed))
        for b, L in enumerate(lengths.tolist()):
            w = y[b, :L, 0]
            assert (w[1:] >= w[:-1]).all() and w[0] == 0 and w[-1] == pytest.approx(L - 1)
            v = s[b, :L, 0]
            assert (v[1:] >= v[:-1]).all() and 0 <= v[0] and v[-1] <= L - 1
            assert v[-1] - v[0] == pytest.approx(max(math.ceil(0.5 * L) - 1, 0))  # the crop, stretched
            crop = k[b, : c[b], 0]  # kept short: consecutive original steps, moved to the start
            assert c[b] == math.ceil(0.5 * L) and torch.equal(crop, crop[0] + torch.arange(c[b], dtype=crop.dtype))
    assert torch.equal(m, lengths)


def test_magnitude_warp_spline_passes_through_its_knots():
    values = 1 + 0.3 * torch.randn(2, 6, 3, dtype=torch.float64)
    knots_u = torch.linspace(0, 1, 6, dtype=torch.float64)[None].expand(2, 6)
    torch.testing.assert_close(A._spline(values, knots_u), values)
    u = torch.linspace(0, 1, 201, dtype=torch.float64)[None].expand(2, 201)
    curve = A._spline(values, u)
    assert (curve[:, 2:] - 2 * curve[:, 1:-1] + curve[:, :-2]).abs().max() < 1e-2  # smooth: small 2nd differences


@pytest.mark.parametrize("knots", [2, 3, 4, 6, 10])
def test_spline_equals_scipy_natural_cubic_spline(knots):
    from scipy.interpolate import CubicSpline

    gen = torch.Generator().manual_seed(knots)
    values = 1 + 0.3 * torch.randn(3, knots, 2, dtype=torch.float64, generator=gen)
    u = torch.rand(3, 40, dtype=torch.float64, generator=gen)
    u[:, :2] = torch.tensor([0.0, 1.0], dtype=torch.float64)
    curve = A._spline(values, u)
    ref = [CubicSpline(np.linspace(0, 1, knots), values[b].numpy(), bc_type="natural")(u[b].numpy()) for b in range(3)]
    np.testing.assert_allclose(curve.numpy(), np.stack(ref), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------- image ops


def test_random_crop_shifts_with_zero_fill_and_is_reproducible():
    x = torch.arange(2 * 3 * 6 * 5, dtype=torch.float32).reshape(2, 3, 6, 5) + 1
    assert torch.equal(A.random_crop(x, 0), x)
    y = A.random_crop(x, 2, generator=_g(1))
    assert y.shape == x.shape and torch.equal(y, A.random_crop(x, 2, generator=_g(1)))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(2):  # each image is one window of the padded image, the same for all channels
        hits = [(i, j) for i in range(5) for j in range(5) if torch.equal(padded[b, :, i : i + 6, j : j + 5], y[b])]
        assert len(hits) == 1


def test_horizontal_flip_probability():
    x = torch.randn(6, 1, 4, 4)
    assert torch.equal(A.horizontal_flip(x, 0.0, _g()), x)
    assert torch.equal(A.horizontal_flip(x, 1.0, _g()), x.flip(-1))
    many = torch.randn(400, 1, 2, 2)
    y = A.horizontal_flip(many, 0.5, _g())
    flipped = (y == many.flip(-1)).flatten(1).all(1)
    assert ((y == many).flatten(1).all(1) | flipped).all() and 0.4 < flipped.float().mean() < 0.6
    with pytest.raises(ValueError, match=r"horizontal_flip: p must be a number in \[0, 1\]"):
        A.horizontal_flip(x, 1.5)


# ---------------------------------------------------------------------------- composition


def test_augment_config_resolves_defaults_and_round_trips():
    aug = Augment([{"name": "jitter", "sigma": 0.03}, {"name": "time_warp", "p": 0.5}])
    assert aug.config == [{"name": "jitter", "sigma": 0.03, "p": 1.0},
                          {"name": "time_warp", "sigma": 0.2, "knots": 4, "p": 0.5}]
    assert Augment(aug.config).config == aug.config and aug.kind == "series" and aug.keeps_lengths
    assert not Augment([{"name": "window_slice", "stretch": False}]).keeps_lengths
    assert Augment([{"name": "horizontal_flip"}]).config == [{"name": "horizontal_flip", "p": 0.5}]
    assert set(list_augmentations("series")) == {n for n, _ in SERIES}
    assert list_augmentations("image") == ["horizontal_flip", "random_crop"]


def test_augment_applies_each_op_per_sample_with_probability_p():
    x, lengths = torch.randn(200, 10, 2), torch.full((200,), 10)
    y, n = Augment([{"name": "jitter", "sigma": 1.0, "p": 0.0}])(x, lengths, _g())
    assert torch.equal(y, x)
    y, n = Augment([{"name": "jitter", "sigma": 1.0, "p": 0.3}])(x, lengths, _g())
    changed = (y != x).any(2).any(1).float().mean().item()
    assert 0.15 < changed < 0.45
    a = Augment([{"name": "window_slice", "ratio": 0.5, "stretch": False, "p": 0.5}])
    _, n = a(x, lengths, _g())
    assert set(n.tolist()) == {5, 10}
    y1, n1 = Augment([{"name": "scaling"}, {"name": "time_warp"}])(x, lengths, _g(4))
    y2, n2 = Augment([{"name": "scaling"}, {"name": "time_warp"}])(x, lengths, _g(4))
    assert torch.equal(y1, y2)
    images = torch.randn(8, 3, 5, 5)
    out = Augment([{"name": "random_crop", "padding": 1}, {"name": "horizontal_flip"}])(images, generator=_g())
    assert out.shape == images.shape


@pytest.mark.parametrize("specs,message", [
    ([{"name": "jiter"}], r"augment\[0\]: unknown augmentation 'jiter'; valid: horizontal_flip, jitter, "
                          r"magnitude_warp, random_crop, scaling, time_warp, window_slice, window_warp"),
    ([{"name": "jitter"}, {"name": "time_warp", "sigma": -0.2}], r"augment\[1\] \(time_warp\): sigma must be a number >= 0"),
    ([{"name": "jitter", "sgima": 1}], r"augment\[0\] \(jitter\): unknown parameter\(s\) sgima; valid: sigma, p"),
    ([{"name": "time_warp", "knots": 2.5}], r"knots must be an int >= 1, got 2.5"),
    ([{"name": "window_warp", "scales": []}], r"scales must be a non-empty list of positive numbers"),
    ([{"name": "window_slice", "stretch": "no"}], r"stretch must be true or false"),
    ([{"name": "jitter", "p": 1.5}], r"augment\[0\] \(jitter\): p must be a number in \[0, 1\], got 1.5"),
    ([{"sigma": 1}], r"augment\[0\] must be a mapping with a 'name'"),
    ({"name": "jitter"}, r"augment must be a list of mappings"),
    ([{"name": "jitter"}, {"name": "random_crop"}], r"mixes series ops and image ops"),
])
def test_augment_config_errors_name_the_problem(specs, message):
    with pytest.raises(ValueError, match=message):
        Augment(specs)


def test_register_refuses_a_duplicate_name():
    with pytest.raises(ValueError, match="'jitter' is already registered"):
        register_augmentation("jitter", "series")(lambda x, lengths, generator=None: (x, lengths))


# --------------------------------------------------------------------------- classification

FAST = TrainConfig(epochs=3, lr=0.01, batch_size=16, progress="off", early_stopping=None, seed=5)
MODEL = {"name": "rnn_classifier", "hidden_size": 8, "pooling": "mean"}


def _data(n=60, **kw):
    X, lengths, y = waves(n, seed=0, **kw)
    return [x[:k] for x, k in zip(X, lengths)], y


def test_data_config_validates_augment():
    cfg = DataConfig(name="digits", augment=[{"name": "jitter", "p": 0.5}])
    assert cfg.augment == [{"name": "jitter", "sigma": 0.03, "p": 0.5}]
    with pytest.raises(ValueError, match=r"data\.augment\[0\]: unknown augmentation 'mixup'; valid: "):
        DataConfig(name="digits", augment=[{"name": "mixup"}])
    with pytest.raises(ValueError, match=r"data\.augment\[0\] \(scaling\): sigma must be a number >= 0"):
        DataConfig(name="digits", augment=[{"name": "scaling", "sigma": "big"}])
    with pytest.raises(ValueError, match=r"data\.augment: random_crop are image ops .*series ops: jitter, "):
        DataConfig(name="digits", augment=[{"name": "random_crop"}])


def test_prepare_training_augments_training_batches_only():
    x, y = _data()
    spec = [{"name": "jitter", "sigma": 0.5}, {"name": "time_warp", "p": 0.5}]
    plain = prepare_training(x, y, MODEL, FAST)
    aug = prepare_training(x, y, MODEL, FAST, augment=spec)
    assert isinstance(aug.train_set, AugmentedBatches) and type(aug.val_set) is SequenceBatches
    for (xv, nv, yv), (xa, na, ya) in zip(plain.val_set, aug.val_set, strict=True):  # validation: untouched
        assert torch.equal(xv, xa) and torch.equal(nv, na) and torch.equal(yv, ya)
    for (xp, np_, yp), (xa, na, ya) in zip(plain.train_set.batches(2), aug.train_set.batches(2), strict=True):
        assert torch.equal(np_, na) and torch.equal(yp, ya) and not torch.equal(xp, xa)  # same rows, augmented
        assert (xa[~(torch.arange(xa.shape[1])[None] < na[:, None])] == 0).all()
    first = [b[0] for b in aug.train_set.batches(2)]
    assert all(torch.equal(a, b[0]) for a, b in zip(first, aug.train_set.batches(2)))  # reproducible per epoch
    assert not all(torch.equal(a[:1], b[0][:1]) for a, b in zip(first, aug.train_set.batches(3)))
    assert epoch_generator(5, 2).initial_seed() != epoch_generator(6, 2).initial_seed()


def test_prepare_training_refuses_what_cannot_be_augmented():
    x, y = _data(equal=True)
    fcn = {"name": "lstm_fcn", "hidden_size": 4, "dimension_shuffle": True}
    prepare_training(x, y, fcn, FAST, augment=[{"name": "window_slice"}])  # stretched: fine
    with pytest.raises(ValueError, match=r"shortens series .* lstm_fcn with dimension_shuffle needs equal lengths"):
        prepare_training(x, y, fcn, FAST, augment=[{"name": "window_slice", "stretch": False}])
    texts = ["good fun movie", "bad dull plot"] * 10
    with pytest.raises(ValueError, match="text input has nothing to augment"):
        prepare_training(texts, np.array(["pos", "neg"] * 10), {"name": "rnn_classifier"}, FAST,
                         augment=[{"name": "jitter"}])


@pytest.fixture
def spy():
    """A registered series op that records what it is applied to."""
    seen = []

    @register_augmentation("_spy", "series")
    def _spy(x, lengths, generator=None):
        seen.append(len(lengths))
        return x, lengths

    yield seen
    del A._AUGMENTATIONS["_spy"]


def test_yaml_config_with_augment_round_trips_and_trains(tmp_path, spy):
    train, test = write_npz(tmp_path / "train.npz", 80, seed=0), write_npz(tmp_path / "test.npz", 30, seed=1)
    text = f"""
task: classify
data:
  train: {train}
  test: {test}
  augment:
  - {{name: jitter, sigma: 0.05, p: 0.5}}
  - {{name: window_warp, ratio: 0.2, scales: [0.5, 2.0]}}
  - {{name: _spy}}
model: {{name: rnn_classifier, hidden_size: 8, pooling: mean}}
train: {{epochs: 3, batch_size: 16, lr: 0.01, early_stopping: null, progress: "off", val_fraction: 0.25}}
"""
    (tmp_path / "config.yaml").write_text(text)
    cfg = build(ClassifyConfig, load_yaml(tmp_path / "config.yaml"))
    (tmp_path / "dumped.yaml").write_text(dump_yaml(to_plain(cfg)))
    assert build(ClassifyConfig, load_yaml(tmp_path / "dumped.yaml")) == cfg
    metrics = train_classifier(cfg, tmp_path / "run")
    assert build(ClassifyConfig, load_yaml(tmp_path / "run" / "config.yaml")) == cfg
    assert metrics["epochs"] == 3 and 0 <= metrics["test"]["accuracy"] <= 1
    # the op saw exactly the training part every epoch: never validation (20 of 80) or test
    assert sum(spy) == 3 * 60 and max(spy) <= 16
