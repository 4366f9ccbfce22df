"""Time series for forecasting: named series, a CSV loader with strict time checks, windows.

:class:`Series` holds ``values`` (T, C) float64, ``times`` (T,) ``datetime64`` (or int64 steps),
the column ``names`` and a ``step`` description (``"7D"``, ``"1M"``, ``"1Y"``, or ``"1"`` for
integer steps). Times are strictly increasing and evenly spaced, checked on construction: by a
fixed number of days, or by whole calendar months/years (so months of 28-31 days count as
regular, as are month ends).

Named series (``load_series``):

- ``airline``: monthly international airline passengers, 1949-01 .. 1960-12 (144), via aeon.
- ``sunspots``: yearly sunspot activity, 1700 .. 2008 (309), via statsmodels.
- ``co2``: weekly Mauna Loa CO2 (ppm), 1958-03-29 .. 2001-12-29 (2,284 weeks), via statsmodels.
  59 weeks are missing. Gap policy (explicit, ``gaps=``): ``"interpolate"`` (default) fills each
  gap linearly in time between its two observed neighbours and logs how many were filled (no gap
  touches either end of this series); ``"error"`` refuses the series.

Missing values anywhere else follow the same ``gaps`` argument; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

__all__ = ["Series", "load_series", "list_series", "load_series_csv", "fill_gaps", "sliding_windows"]

log = logging.getLogger(__name__)

Gaps = Literal["interpolate", "error"]


def _regular_step(times: np.ndarray, where: str) -> str:
    """The step of evenly spaced, strictly increasing times, or ValueError naming the first bad one."""
    if len(times) < 2:
        return "1" if times.dtype.kind in "iu" else "1D"
    if times.dtype.kind in "iu":
        diffs = np.diff(times)
        kind, unit = diffs, ""
    else:
        days = times.astype("datetime64[D]")
        months = times.astype("datetime64[M]")
        same_day = (days - months.astype("datetime64[D]")) == (days[0] - months[0].astype("datetime64[D]"))
        month_end = ((days + 1).astype("datetime64[M]") != months).all()  # e.g. 01-31, 02-29, 03-31
        month_diffs = np.diff(months).astype(np.int64)
        if (same_day.all() or month_end) and (times == days.astype(times.dtype)).all() and len(set(month_diffs)) == 1 \
                and month_diffs[0] > 0:
            step = int(month_diffs[0])
            return f"{step // 12}Y" if step % 12 == 0 else f"{step}M"
        kind, unit = np.diff(days).astype(np.int64), "D"
    order = np.flatnonzero(kind <= 0)
    if order.size:
        i = int(order[0]) + 1
        what = "duplicate" if kind[i - 1] == 0 else "out of order"
        raise ValueError(f"{where}: time {times[i]} (row {i}) is {what} after {times[i - 1]}; times must be "
                         "strictly increasing (sort the rows and remove duplicates first)")
    values, counts = np.unique(kind, return_counts=True)
    if len(values) > 1:
        common = values[np.argmax(counts)]
        i = int(np.flatnonzero(kind != common)[0]) + 1
        raise ValueError(f"{where}: irregular spacing: most steps are {common}{unit}, but {times[i - 1]} -> "
                         f"{times[i]} (row {i}) is {kind[i - 1]}{unit}; resample to a regular grid first "
                         "(missing steps can be rows with empty values, filled by the gaps policy)")
    return f"{int(values[0])}{unit}"


@dataclass(frozen=True)
class Series:
    """An evenly spaced (multivariate) series. values: (T, C); times: (T,); names: C column names."""

    values: np.ndarray
    times: np.ndarray
    names: tuple[str, ...]
    name: str = ""
    step: str = field(init=False)  # "7D", "1M", "1Y", "1" (integer steps): derived from times

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=np.float64)
        if v.ndim == 1:
            v = v[:, None]
        if v.ndim != 2 or v.shape[0] == 0:
            raise ValueError(f"{self.name or 'series'}: values must be (T, C) with T >= 1, got shape {v.shape}")
        t = np.asarray(self.times)
        if t.shape != (v.shape[0],) or t.dtype.kind not in "iuM":
            raise ValueError(f"{self.name or 'series'}: times must be {v.shape[0]} datetime64 or integer values, "
                             f"got shape {t.shape} dtype {t.dtype}")
        if len(self.names) != v.shape[1]:
            raise ValueError(f"{self.name or 'series'}: {v.shape[1]} columns but {len(self.names)} names")
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "step", _regular_step(t, self.name or "series"))

    def __len__(self) -> int:
        return self.values.shape[0]

    def column(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise ValueError(f"{self.name or 'series'} has no column {name!r}; columns: {list(self.names)}")
        return self.values[:, self.names.index(name)]


def fill_gaps(values: np.ndarray, gaps: Gaps, where: str) -> np.ndarray:
    """Apply the gap policy to NaNs in (T, C) ``values``: interpolate linearly between observed
    neighbours (never extrapolate: a gap at either end is an error), or refuse."""
    if gaps not in ("interpolate", "error"):
        raise ValueError(f"gaps must be 'interpolate' or 'error', got {gaps!r}")
    values = np.array(values, dtype=np.float64)
    if np.isinf(values).any():
        raise ValueError(f"{where}: values contain inf")
    missing = np.isnan(values)
    if not missing.any():
        return values
    if gaps == "error":
        row = int(np.flatnonzero(missing.any(axis=1))[0])
        raise ValueError(f"{where}: {int(missing.sum())} missing values (first at row {row}); pass gaps='interpolate' "
                         "to fill them linearly, or fill them yourself")
    idx = np.arange(len(values))
    for c in range(values.shape[1]):
        m = missing[:, c]
        if m.any():
            if m[0] or m[-1]:
                raise ValueError(f"{where}: column {c} is missing at the {'start' if m[0] else 'end'}; "
                                 "interpolation never extrapolates: trim the series")
            values[m, c] = np.interp(idx[m], idx[~m], values[~m, c])
    log.info(f"{where}: filled {int(missing.sum())} missing values by linear interpolation")
    return values


_SERIES = ("airline", "co2", "sunspots")


def list_series() -> list[str]:
    return list(_SERIES)


def load_series(name: str, gaps: Gaps = "interpolate") -> Series:
    """A named series (see the module docstring); unknown names suggest close ones."""
    from ..nn.names import unknown_name
    from .datasets import _require

    key = str(name).lower()
    if key == "airline":
        values = np.asarray(_require("aeon.datasets").load_airline(), dtype=np.float64)
        times = np.arange(np.datetime64("1949-01"), np.datetime64("1961-01")).astype("datetime64[D]")
        return Series(values, times, ("passengers",), "airline")
    if key == "sunspots":
        data = _require("statsmodels.api").datasets.sunspots.load_pandas().data
        years = data["YEAR"].to_numpy().astype(np.int64)
        times = (years - 1970).astype("datetime64[Y]").astype("datetime64[D]")
        return Series(data["SUNACTIVITY"].to_numpy(), times, ("sunactivity",), "sunspots")
    if key == "co2":
        data = _require("statsmodels.api").datasets.co2.load_pandas().data
        values = fill_gaps(data["co2"].to_numpy()[:, None], gaps, "co2")
        return Series(values, data.index.to_numpy().astype("datetime64[D]"), ("co2",), "co2")
    raise unknown_name("series", name, _SERIES)


def load_series_csv(path: str | os.PathLike, time_column: str, targets: Sequence[str],
                    covariates: Sequence[str] = (), gaps: Gaps = "error") -> Series:
    """A CSV with a header: a time column (ISO dates/datetimes, or integers), target columns and
    optional covariate columns (targets first in the result). Empty cells are missing values
    (handled by ``gaps``); unsorted, duplicate or irregular times raise with the row."""
    path = str(path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path}: empty file")
    header = [h.strip() for h in rows[0]]
    wanted = [time_column, *targets, *covariates]
    if not targets:
        raise ValueError(f"{path}: name at least one target column")
    for col in wanted:
        if col not in header:
            raise ValueError(f"{path}: no column {col!r}; columns: {header}")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"{path}: a column is named twice among time, targets and covariates: {wanted}")
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not body:
        raise ValueError(f"{path}: a header but no data rows")
    cols = [header.index(c) for c in wanted]
    raw_times, values = [], np.empty((len(body), len(cols) - 1))
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ValueError(f"{path}, row {i + 1}: {len(r)} fields, the header has {len(header)}")
        raw_times.append(r[cols[0]].strip())
        for j, c in enumerate(cols[1:]):
            cell = r[c].strip()
            try:
                values[i, j] = float(cell) if cell else np.nan
            except ValueError:
                raise ValueError(f"{path}, row {i + 1}, column {wanted[j + 1]!r}: {cell!r} is not a number") from None
    try:
        times = np.array([int(t) for t in raw_times], dtype=np.int64)
    except ValueError:
        try:
            times = np.array(raw_times, dtype="datetime64")
        except ValueError as e:
            raise ValueError(f"{path}: column {time_column!r} holds neither integers nor ISO dates ({e})") from None
    values = fill_gaps(values, gaps, path)
    return Series(values, times, tuple(targets) + tuple(covariates), os.path.basename(path))


def sliding_windows(values: np.ndarray, input_length: int, horizon: int, stride: int = 1
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, input_length, C) and targets (n, horizon, C) from a (T, C) array: window k reads
    steps [k·stride, k·stride + input_length) and predicts the ``horizon`` steps after them."""
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    for nm, v in (("input_length", input_length), ("horizon", horizon), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{nm} must be a positive int, got {v!r}")
    need = input_length + horizon
    if len(values) < need:
        raise ValueError(f"the series has {len(values)} steps, shorter than input_length + horizon = {need}")
    starts = np.arange(0, len(values) - need + 1, stride)
    x = np.stack([values[s : s + input_length] for s in starts])
    y = np.stack([values[s + input_length : s + need] for s in starts])
    return x, y
