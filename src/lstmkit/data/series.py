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
- ``co2-monthly``: the same observations as monthly means, 1958-03 .. 2001-12 (526 months; the
  mean of each month's observed weeks). 5 months have no observed week (1958-06, 1958-10,
  1964-02 .. 1964-04) and follow ``gaps=`` as above.

Missing values anywhere else follow the same ``gaps`` argument; nothing is dropped silently.

Files: ``load_series_csv`` (one series per CSV, "wide"), ``load_series_long`` (many series in one
"long" CSV, one row per (series id, time)) and ``load_tsf`` (Monash forecasting-repository ``.tsf``
files, via aeon), all with the same strict time checks and ``gaps`` policy.

Known-in-the-future inputs: ``future_times`` continues a time axis on its own grid (same day of
month or month ends for monthly/yearly steps), and ``calendar_features`` turns timestamps into
sin/cos covariates (month, quarter, ISO week, day of week, day of year) for the past and the future.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from ..checks import check_int
from .files import _text_lines

__all__ = ["Series", "load_series", "list_series", "load_series_csv", "load_series_long", "load_tsf", "fill_gaps",
           "future_times", "calendar_features", "sliding_windows"]

log = logging.getLogger(__name__)

Gaps = Literal["interpolate", "error"]
GAPS_HINT = "pass gaps='interpolate'"  # how a gap error advises interpolation to a Python caller


def _regular_step(times: np.ndarray, where: str, rows: np.ndarray | None = None) -> str:
    """The step of evenly spaced, strictly increasing times, or ValueError naming the first bad one:
    by its index in ``times``, or by ``rows[index]`` when given (e.g. the row in a file)."""
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
    rows = np.arange(len(times)) if rows is None else np.asarray(rows)
    order = np.flatnonzero(kind <= 0)
    if order.size:
        i = int(order[0]) + 1
        what = "duplicate" if kind[i - 1] == 0 else "out of order"
        raise ValueError(f"{where}: time {times[i]} (row {rows[i]}) is {what} after {times[i - 1]}; times must be "
                         "strictly increasing (sort the rows and remove duplicates first)")
    values, counts = np.unique(kind, return_counts=True)
    if len(values) > 1:
        common = values[np.argmax(counts)]
        i = int(np.flatnonzero(kind != common)[0]) + 1
        raise ValueError(f"{where}: irregular spacing: most steps are {common}{unit}, but {times[i - 1]} -> "
                         f"{times[i]} (row {rows[i]}) is {kind[i - 1]}{unit}; resample to a regular grid first "
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

    def head(self, n: int) -> "Series":
        """The first ``n`` steps (a history cut at an origin)."""
        return Series(self.values[:n], self.times[:n], self.names, self.name)

    def column(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise ValueError(f"{self.name or 'series'} has no column {name!r}; columns: {list(self.names)}")
        return self.values[:, self.names.index(name)]


def fill_gaps(values: np.ndarray, gaps: Gaps, where: str, rows: np.ndarray | None = None, *,
              gaps_hint: str = GAPS_HINT) -> np.ndarray:
    """Apply the gap policy to NaNs in (T, C) ``values``: interpolate linearly between observed
    neighbours (never extrapolate: a gap at either end is an error), or refuse. Errors name a row
    by its index, or by ``rows[index]`` (T,) when given (e.g. the row in a file), and advise
    ``gaps_hint``: how the caller's user asks for interpolation (the keyword by default; a config
    or a command line passes its own wording, e.g. "set data.gaps: interpolate")."""
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
        row = row if rows is None else int(rows[row])
        raise ValueError(f"{where}: {int(missing.sum())} missing values (first at row {row}); {gaps_hint} "
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


def _parse_step(step: str, times: np.ndarray) -> tuple[int, str]:
    """``step`` as (count, unit): unit "D" (days), "M" (months; "kY" is 12k months) or "" (integer
    steps). ValueError unless it suits ``times`` (T,): the dtype, and the spacing when T >= 2."""
    if times.ndim != 1 or len(times) == 0 or times.dtype.kind not in "iuM":
        raise ValueError(f"times must be a non-empty 1-D datetime64 or integer array, got shape {times.shape} "
                         f"dtype {times.dtype}")
    match = re.fullmatch(r"([1-9][0-9]*)([DMY]?)", str(step))
    integer = times.dtype.kind in "iu"
    if match is None or (match.group(2) == "") != integer:
        valid = '"k" (k integer steps)' if integer else '"kD" (k days), "kM" (k months) or "kY" (k years)'
        raise ValueError(f"step {step!r} does not suit {times.dtype} times; valid: {valid}, k >= 1")
    count, unit = int(match.group(1)), match.group(2)
    count, unit = (12 * count, "M") if unit == "Y" else (count, unit)
    if len(times) >= 2:
        actual = _regular_step(times, "times")
        if _parse_step(actual, times[:1]) != (count, unit):
            raise ValueError(f"step {step!r} does not match the times, which step by {actual!r}")
    return count, unit


def _times_after(times: np.ndarray, step: str, n: int, where: str) -> np.ndarray:
    """The ``n`` times after ``times[-1]`` on the grid of ``times`` (T,) with ``step``: int64, or
    datetime64 in days or the finer unit of ``times``."""
    count, unit = _parse_step(step, times)
    k = np.arange(1, n + 1)
    if unit == "":
        return (times[-1] + count * k).astype(np.int64)
    dtype = np.promote_types(times.dtype, "datetime64[D]")  # days, or the finer unit of times
    if unit == "D":
        return times[-1].astype(dtype) + np.timedelta64(count, "D") * k
    days = times.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    offset = (days - months.astype("datetime64[D]")).astype(np.int64)  # day of month - 1
    target = months[-1] + count * k  # (n,) datetime64[M]
    same_day = target.astype("datetime64[D]") + offset[-1]
    if (offset == offset[-1]).all() and (same_day.astype("datetime64[M]") == target).all():
        return same_day.astype(dtype)
    if ((days + 1).astype("datetime64[M]") != months).all():  # month ends: 01-31, 02-29, 03-31 ...
        return ((target + 1).astype("datetime64[D]") - 1).astype(dtype)
    bad = target[int(np.flatnonzero(same_day.astype("datetime64[M]") != target)[0])]
    raise ValueError(f"{where}: day {offset[-1] + 1} of the month does not exist in {bad}; a monthly grid keeps "
                     "one day of the month (1 to 28 exist in every month) or month ends")


def future_times(times: np.ndarray, step: str, horizon: int) -> np.ndarray:
    """The ``horizon`` timestamps after the last of ``times`` (T,) on the same grid, (horizon,):
    ``times[-1] + step, + 2·step, ...``. Day steps ("kD") and integer steps ("k") add; month and
    year steps ("kM", "kY") move by whole calendar months, keeping the day of month the times
    share, or month ends (as :class:`Series` accepts them). int64 for integer times, else
    datetime64[D] (or the finer unit of ``times``, e.g. datetime64[s]). ``step`` is
    a :class:`Series` ``step`` and must match the spacing of ``times`` when T >= 2, so
    ``Series(v, np.concatenate([times, future_times(times, step, h)]))`` keeps that step."""
    return _times_after(np.asarray(times), step, check_int("horizon", horizon), "future_times")


# Calendar features: name -> period, in units of the 0-based index below. An ISO year has 52 or
# 53 weeks; we use the mean, 52.1775 (= 20871 weeks / 400 years), so week 53 sits just before week 1.
_CALENDAR = {"month": 12.0, "quarter": 4.0, "week": 52.1775, "dayofweek": 7.0, "dayofyear": 365.25}


def _calendar_index(days: np.ndarray, name: str) -> np.ndarray:
    """0-based month (Jan = 0), quarter, ISO week - 1, day of week (Monday = 0) or day of year."""
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    if name == "month":
        return month
    if name == "quarter":
        return month // 3
    if name == "week":  # an ISO week belongs to the year of its Thursday
        thursday = days - weekday + 3
        return (thursday - thursday.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) // 7
    if name == "dayofweek":
        return weekday
    return (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)


def _constant_reason(name: str, count: int, unit: str) -> str | None:
    """Why calendar feature ``name`` is constant on a grid of ``count`` ``unit`` steps, or None."""
    if unit == "":
        return "integer times carry no calendar"
    if unit == "M" and count % 12 == 0 and name in ("month", "quarter"):
        return f"a step of {count // 12}Y lands on the same {name} every time"
    if unit == "M" and count % 12 == 0 and name in ("week", "dayofyear"):
        return f"a step of {count // 12}Y lands on the same day of the year every time (up to leap days)"
    if unit == "D" and count % 7 == 0 and name == "dayofweek":
        return f"a step of {count}D lands on the same day of the week every time"
    return None


def calendar_features(times: np.ndarray, step: str, names: Sequence[str] | None = None
                      ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Covariates known in the future, from timestamps: features (T, 2F) float64 in [-1, 1] and
    their names (``"<name>_sin"``, ``"<name>_cos"`` per feature), from ``times`` (T,) with ``step``.

    Each feature is a 0-based position in its cycle, written as sin/cos of 2π·position/period:
    "month" (Jan = 0, period 12), "quarter" (period 4), "week" (ISO week - 1, period 52.1775, the
    mean ISO year), "dayofweek" (Monday = 0, period 7), "dayofyear" (Jan 1 = 0, period 365.25).
    ``names=None`` picks by step: months ("kM") -> ("month",); multiples of 7 days -> ("week",);
    other day steps -> ("dayofweek", "dayofyear"); years and integer steps -> () (a (T, 0) array).
    A feature that is constant on the step (month, quarter, week or day of year on a yearly
    grid, day of week on a weekly one, anything on integer times) raises ``ValueError``."""
    from ..nn.names import unknown_name

    times = np.asarray(times)
    count, unit = _parse_step(step, times)
    if names is None:
        names = (() if unit == "" or (unit == "M" and count % 12 == 0) else ("month",) if unit == "M"
                 else ("week",) if count % 7 == 0 else ("dayofweek", "dayofyear"))
    names = (names,) if isinstance(names, str) else tuple(names)
    for nm in names:
        if nm not in _CALENDAR:
            raise unknown_name("calendar feature", nm, _CALENDAR)
        reason = _constant_reason(nm, count, unit)
        if reason is not None:
            raise ValueError(f"calendar feature {nm!r} is constant on step {step!r}: {reason}")
    if len(set(names)) != len(names):
        raise ValueError(f"calendar features named twice: {list(names)}")
    columns, out_names = [], []
    days = times.astype("datetime64[D]") if unit else None
    for nm in names:
        angle = 2 * np.pi * _calendar_index(days, nm) / _CALENDAR[nm]
        columns += [np.sin(angle), np.cos(angle)]
        out_names += [f"{nm}_sin", f"{nm}_cos"]
    features = np.stack(columns, axis=1) if columns else np.empty((len(times), 0))
    return features.astype(np.float64), tuple(out_names)


_SERIES = ("airline", "co2", "co2-monthly", "sunspots")


def list_series() -> list[str]:
    return list(_SERIES)


def load_series(name: str, gaps: Gaps = "interpolate", *, gaps_hint: str = GAPS_HINT) -> Series:
    """A named series (see the module docstring); unknown names suggest close ones. ``gaps_hint``:
    as in :func:`fill_gaps` (also for the other loaders)."""
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
        values = fill_gaps(data["co2"].to_numpy()[:, None], gaps, "co2", gaps_hint=gaps_hint)
        return Series(values, data.index.to_numpy().astype("datetime64[D]"), ("co2",), "co2")
    if key == "co2-monthly":
        co2 = _require("statsmodels.api").datasets.co2.load_pandas().data["co2"]
        monthly = co2.resample("MS").mean()  # the mean of each month's observed weeks (NaN: none observed)
        values = fill_gaps(monthly.to_numpy()[:, None], gaps, "co2-monthly", gaps_hint=gaps_hint)
        return Series(values, monthly.index.to_numpy().astype("datetime64[D]"), ("co2",), "co2-monthly")
    raise unknown_name("series", name, _SERIES)


def _read_csv(path: str, time_column: str, targets: Sequence[str], covariates: Sequence[str],
              id_column: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Times (N,), values (N, len(targets) + len(covariates)) with NaN for empty cells, and the
    series id of each row (N strings; all "" without ``id_column``) from a CSV with a header.
    Blank lines are skipped; errors name the data row, counted from 1."""
    for what, names in (("targets", targets), ("covariates", covariates)):
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"{what} must be a list of column names (str), got {names!r}")
    for what, name in (("time_column", time_column), ("id_column", id_column)):
        if not isinstance(name, str) and not (what == "id_column" and name is None):
            raise TypeError(f"{what} must be a column name (str), got {name!r}")
    reader = csv.reader(io.StringIO(_text_lines(path), newline=""))
    try:
        rows = list(reader)
    except csv.Error as e:
        raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({e})") from None
    if not rows:
        raise ValueError(f"{path}: empty file")
    header = [h.strip() for h in rows[0]]
    wanted = [time_column, *targets, *covariates]
    if not targets:
        raise ValueError(f"{path}: name at least one target column")
    for col in wanted + ([] if id_column is None else [id_column]):
        if col not in header:
            raise ValueError(f"{path}: no column {col!r}; columns: {header}")
    if len(set(wanted)) != len(wanted) or id_column in wanted:
        raise ValueError(f"{path}: a column is named twice among time, {'id, ' if id_column else ''}targets and "
                         f"covariates: {wanted if id_column is None else [id_column, *wanted]}")
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not body:
        raise ValueError(f"{path}: a header but no data rows")
    cols = [header.index(c) for c in wanted]
    id_col = None if id_column is None else header.index(id_column)
    raw_times, ids, values = [], [], np.empty((len(body), len(cols) - 1))
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ValueError(f"{path}, row {i + 1}: {len(r)} fields, the header has {len(header)}")
        raw_times.append(r[cols[0]].strip())
        if not raw_times[-1]:
            raise ValueError(f"{path}, row {i + 1}: empty {time_column!r} cell; every row needs a time")
        ids.append("" if id_col is None else r[id_col].strip())
        if id_col is not None and not ids[-1]:
            raise ValueError(f"{path}, row {i + 1}: empty {id_column!r} cell; every row needs a series id")
        for j, c in enumerate(cols[1:]):
            cell = r[c].strip()
            try:
                values[i, j] = float(cell) if cell else np.nan
            except ValueError:
                raise ValueError(f"{path}, row {i + 1}, column {wanted[j + 1]!r}: {cell!r} is not a number") from None
    try:
        ints = [int(t) for t in raw_times]
    except ValueError:
        ints = None
    if ints is not None:
        big = next((i for i, t in enumerate(ints) if not -(2**63) <= t < 2**63), None)
        if big is not None:
            raise ValueError(f"{path}, row {big + 1}: time {raw_times[big]} is beyond the int64 range")
        times = np.array(ints, dtype=np.int64)
    else:
        try:
            times = np.array(raw_times, dtype="datetime64")
        except (ValueError, OverflowError) as e:
            raise ValueError(f"{path}: column {time_column!r} holds neither integers nor ISO dates ({e})") from None
        if np.isnat(times).any():
            i = int(np.flatnonzero(np.isnat(times))[0])
            raise ValueError(f"{path}, row {i + 1}: time {raw_times[i]!r} is not a date (NaT)")
    return times, values, ids


def load_series_csv(path: str | os.PathLike, time_column: str, targets: Sequence[str],
                    covariates: Sequence[str] = (), gaps: Gaps = "error", *, gaps_hint: str = GAPS_HINT) -> Series:
    """A CSV with a header: a time column (ISO dates/datetimes, or integers), target columns and
    optional covariate columns (targets first in the result). Empty cells are missing values
    (handled by ``gaps``); unsorted, duplicate or irregular times raise with the row."""
    path = str(path)
    times, values, _ = _read_csv(path, time_column, targets, covariates)
    values = fill_gaps(values, gaps, path, gaps_hint=gaps_hint)
    return Series(values, times, tuple(targets) + tuple(covariates), os.path.basename(path))


def load_series_long(path: str | os.PathLike, time_column: str, id_column: str, targets: Sequence[str],
                     covariates: Sequence[str] = (), gaps: Gaps = "error", *, gaps_hint: str = GAPS_HINT
                     ) -> list[Series]:
    """Many series from one "long" CSV: one row per (series id, time), the columns of
    :func:`load_series_csv` plus ``id_column``. Rows are grouped by id, in the order ids first
    appear (rows of different series may interleave); each group gets the same strict checks,
    whose errors name the series id and the data row (counted from 1, as the other row errors).
    Each :class:`Series` (values (T_i, C)) is named by its id. A series with a single row is
    allowed (its ``step`` is then the default "1D" or "1", not read from the data). All series
    share one time type: integers or ISO dates."""
    path = str(path)
    times, values, ids = _read_csv(path, time_column, targets, covariates, id_column)
    keys, first, inverse = np.unique(np.array(ids), return_index=True, return_inverse=True)
    out = []
    for k in np.argsort(first):
        idx = np.flatnonzero(inverse == k)
        name = str(keys[k])
        where = f"{path}, series {name!r}"
        _regular_step(times[idx], where, rows=idx + 1)  # name the file's row, not the index in the series
        values_k = fill_gaps(values[idx], gaps, where, rows=idx + 1, gaps_hint=gaps_hint)
        out.append(Series(values_k, times[idx], tuple(targets) + tuple(covariates), name))
    return out


# Monash ``@frequency`` -> our step. Quarters are 3 calendar months. Sub-daily frequencies get
# integer steps: Series keeps day resolution, so their start timestamps are not used.
_TSF_STEPS = {"yearly": "1Y", "quarterly": "3M", "monthly": "1M", "weekly": "7D", "daily": "1D"}
_TSF_SUBDAILY = ("hourly", "half_hourly", "10_minutes", "minutely", "4_seconds")


def load_tsf(path: str | os.PathLike, gaps: Gaps = "error", *, gaps_hint: str = GAPS_HINT) -> list[Series]:
    """The series of a Monash forecasting-repository ``.tsf`` file (read by aeon), each a
    :class:`Series` with values (T_i, 1) in a column named "value", named by the file's
    ``series_name`` attribute (else by its position, "0", "1", ...).

    Times: with a ``start_timestamp`` attribute and a daily-or-coarser ``@frequency`` (yearly,
    quarterly = "3M", monthly, weekly = "7D", daily), dates from the start's date on that grid
    (monthly grids keep the start's day of month, or month ends; a time of day is dropped, and
    logged). Otherwise (no timestamps, no ``@frequency``, or a sub-daily one: hourly, half_hourly,
    10_minutes, minutely, 4_seconds) integer steps 0..T_i-1. Missing values ("?") follow ``gaps``.
    A file aeon cannot parse raises ``ValueError`` naming the path and aeon's reason."""
    from ..nn.names import unknown_name
    from .datasets import _require

    path = str(path)
    datasets = _require("aeon.datasets")
    try:
        frame, meta = datasets.load_from_tsf_file(path)
    except OSError:
        raise
    except Exception as e:  # aeon raises bare Exception (and ValueError from float()) for format errors
        raise ValueError(f"{path}: not a valid .tsf file: {e}") from None
    freq = meta["frequency"]
    if freq is not None and freq not in _TSF_STEPS and freq not in _TSF_SUBDAILY:
        raise unknown_name("tsf @frequency", freq, (*_TSF_STEPS, *_TSF_SUBDAILY), extra=f" (in {path})")
    starts = frame["start_timestamp"].to_numpy() if "start_timestamp" in frame.columns else None
    if starts is not None and freq not in _TSF_STEPS:
        why = "no @frequency" if freq is None else f"@frequency {freq} is finer than a day"
        log.info(f"{path}: {why}: integer time steps, start timestamps unused")
        starts = None
    if starts is not None and (starts != starts.astype("datetime64[D]")).any():
        log.info(f"{path}: start timestamps have a time of day; a {freq} series keeps only the date")
    out = []
    for i, raw in enumerate(frame["series_value"]):
        name = str(frame["series_name"].iloc[i]) if "series_name" in frame.columns else str(i)
        where = f"{path}, series {name!r}"
        values = fill_gaps(np.asarray(raw, dtype=np.float64)[:, None], gaps, where, gaps_hint=gaps_hint)
        if starts is None:
            times = np.arange(len(values), dtype=np.int64)
        else:
            first = starts[i : i + 1].astype("datetime64[D]")
            times = np.concatenate([first, _times_after(first, _TSF_STEPS[freq], len(values) - 1, where)])
        out.append(Series(values, times, ("value",), name))
    return out


def sliding_windows(values: np.ndarray, input_length: int, horizon: int, stride: int = 1
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, input_length, C) and targets (n, horizon, C) from a (T, C) array: window k reads
    steps [k·stride, k·stride + input_length) and predicts the ``horizon`` steps after them."""
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    input_length, horizon = check_int("input_length", input_length), check_int("horizon", horizon)
    stride = check_int("stride", stride)
    need = input_length + horizon
    if len(values) < need:
        raise ValueError(f"the series has {len(values)} steps, shorter than input_length + horizon = {need}")
    starts = np.arange(0, len(values) - need + 1, stride)
    x = np.stack([values[s : s + input_length] for s in starts])
    y = np.stack([values[s + input_length : s + need] for s in starts])
    return x, y
