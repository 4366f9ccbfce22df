"""Long-range synthetic tasks, generated in code from a seed (Hochreiter & Schmidhuber 1997).

- :func:`adding_problem` (the LSTM paper's experiment 4, in the form of Le et al. 2015): each step
  holds a value drawn from U(0, 1) and a marker; exactly two steps are marked, one in each half
  of the sequence; the target is the sum of the two marked values. Always answering 1 (the
  target's mean) scores MSE = Var(U1 + U2) = 1/6 ~= 0.1667: :data:`ADDING_BASELINE_MSE`.
  Solved: test MSE < 0.01 (:data:`ADDING_SOLVED_MSE`).
- :func:`copy_task` (the copy-memory task, Arjovsky et al. 2016, a delayed recall): K symbols
  from an alphabet of A, then blanks, then a recall marker K steps before the end; during the
  last K steps the model must emit the K symbols in order. Total length T. Chance: accuracy
  1/A, cross-entropy log A.

Every array is NumPy (float32 inputs); a seed gives the same data on every machine.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_int

__all__ = ["adding_problem", "copy_task", "ADDING_BASELINE_MSE", "ADDING_SOLVED_MSE", "copy_chance_loss"]

ADDING_BASELINE_MSE = 1.0 / 6.0
ADDING_SOLVED_MSE = 0.01


def adding_problem(n: int, T: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n sequences of length T -> x (n, T, 2) [value, marker], y (n,) the sum of the marked values."""
    n, T = check_int("n", n), check_int("T", T, minimum=2)
    rng = np.random.default_rng(seed)
    values = rng.random((n, T), dtype=np.float64)
    half = T // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, T, n)
    marker = np.zeros((n, T))
    rows = np.arange(n)
    marker[rows, first] = 1.0
    marker[rows, second] = 1.0
    x = np.stack([values, marker], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)
    return x, y


def copy_task(n: int, T: int, seed: int, symbols: int = 8, length: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """n sequences of total length T -> x (n, T, symbols + 2) one-hot [blank, symbols..., marker],
    y (n, length) the symbols (0..symbols-1) to emit at the last ``length`` steps."""
    n, symbols, length = check_int("n", n), check_int("symbols", symbols, 2), check_int("length", length)
    T = check_int("T", T, minimum=2 * length + 1)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, symbols, (n, length))
    tokens = np.zeros((n, T), dtype=np.int64)  # 0: blank
    tokens[:, :length] = y + 1
    tokens[:, T - length - 1] = symbols + 1  # recall marker
    x = np.eye(symbols + 2, dtype=np.float32)[tokens]
    return x, y


def copy_chance_loss(symbols: int = 8) -> float:
    """Cross-entropy of a uniform guess over the alphabet."""
    return math.log(symbols)
