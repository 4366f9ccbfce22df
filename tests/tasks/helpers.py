"""Tiny generated datasets that the task tests write themselves."""

import numpy as np

CLASSES = np.array(["low", "mid", "high"])


def waves(n: int, seed: int = 0, features: int = 2, min_len: int = 12, max_len: int = 30, equal: bool = False):
    """(X padded (n, max_len, features), lengths (n,), labels (n,) strings): 3 frequency classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    lengths = np.full(n, max_len) if equal else rng.integers(min_len, max_len + 1, n)
    t = np.arange(max_len)[None, :, None]
    freq = np.array([0.15, 0.35, 0.6])[y][:, None, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, features))
    X = np.sin(freq * t * 2 + phase) + 0.2 * rng.standard_normal((n, max_len, features))
    X = X * (t < lengths[:, None, None])
    return X.astype(np.float32), lengths, CLASSES[y]


def write_npz(path, n, seed=0, **kw):
    X, lengths, y = waves(n, seed, **kw)
    np.savez(path, X=X, y=y, lengths=lengths)
    return path


POS = ["great", "good", "love", "excellent", "wonderful", "fun"]
NEG = ["bad", "awful", "hate", "boring", "terrible", "dull"]
FILL = ["the", "movie", "was", "really", "plot", "and", "acting", "i", "this", "it"]


def reviews(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        pos = rng.random() < 0.5
        words = list(rng.choice(FILL, rng.integers(3, 10))) + list(rng.choice(POS if pos else NEG, rng.integers(1, 3)))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + rng.choice([".", "!", ""]))
        labels.append("pos" if pos else "neg")
    return texts, labels


def write_reviews(path, n, seed=0):
    import csv

    texts, labels = reviews(n, seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, labels))
    return path


def write_long(path, n, seed=0, columns=("id", "time", "ch1", "ch2", "label"), label=True):
    """The waves of :func:`waves` as a long CSV: one row per (series, step), series ids ``s<i>``."""
    X, lengths, y = waves(n, seed)
    rows = [",".join(columns if label else [c for c in columns if c != "label"])]
    for i, (x, length, lab) in enumerate(zip(X, lengths, y)):
        for t in range(length):
            cell = {"id": f"s{i}", "time": str(t), "ch1": f"{x[t, 0]:.5f}", "ch2": f"{x[t, 1]:.5f}", "label": lab}
            rows.append(",".join(cell[c] for c in columns if label or c != "label"))
    path.write_text("\n".join(rows) + "\n")
    return path


def tensorboard_rows(log_dir) -> list[dict]:
    """The epochs TensorBoard shows for ``log_dir``, as history rows ({"epoch": step, tag: value},
    NaN as 'nan' like :func:`as_logged`); an epoch logged twice (not purged on a resume) is an error."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    rows: dict[int, dict] = {}
    for tag in acc.Tags()["scalars"]:
        steps = [e.step for e in acc.Scalars(tag)]
        assert steps == sorted(set(steps)), f"{tag}: epochs {steps} logged more than once or out of order"
        for e in acc.Scalars(tag):
            rows.setdefault(e.step, {"epoch": e.step})[tag] = "nan" if e.value != e.value else e.value
    return [rows[k] for k in sorted(rows)]


def as_logged(history: list[dict]) -> list[dict]:
    """``history``'s rows as TensorBoard stores them: numbers as float32 (NaN as the string 'nan',
    so that rows compare equal)."""
    def value(v):
        v = float(np.float32(v))
        return "nan" if v != v else v

    return [{k: v if k == "epoch" else value(v) for k, v in row.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)} for row in history]
